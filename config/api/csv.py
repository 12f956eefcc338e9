"""CSV for every collection and report (issue 11): `Accept: text/csv` or `?format=csv`.

The same fields (`?fields=` or the collection's defaults), filters and sort as the JSON answer,
streamed row by row without the page limit (a `StreamingHttpResponse` over
`queryset.iterator(chunk_size=...)`, each chunk serialized and written, so memory stays flat
whatever the number of rows), with a header row and ISO 8601 instants (UTC `Z`). References
(`{"id": .., "name": ..}`) become two columns, `<name>_id` and `<name>_name`, and so does every
object of a fixed shape a serializer declares in `Meta.csv_parts` (`{"event": ("id", "type")}`:
`event_id`, `event_type`); amounts per currency are one cell, `300.00 EUR; 12.50 USD`
(`per_currency`). Lists and free-form documents (an event's payload, GeoJSON, a job's clocks)
have no fixed width: they are compact JSON in one cell.

- `CSVRenderer`: lets content negotiation accept `text/csv` (and `?format=csv`); renders a
  single resource or a small, already computed list (a report) as CSV.
- `CSVMixin`: the base viewset's hook. `list()` streams when the accepted renderer is CSV;
  errors are always the JSON envelope, whatever the client accepted.
- `stream_csv(request, columns, rows, filename)`: the streamed response, for views that are not
  viewsets (reports). Under ASGI its body is an async iterator that pulls each chunk in the
  request's thread: Django buffers a sync iterator whole there (`sync_to_async(list)`), so an
  export under uvicorn or daphne held every row in memory before its first byte went out.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, StreamingHttpResponse
from django.utils.http import content_disposition_header
from rest_framework.fields import SerializerMethodField
from rest_framework.renderers import BaseRenderer, JSONRenderer

from .exceptions import BadRequest
from .filters import joined_lists, refuse_unknown, single_values
from .serializers import ReferenceField

CSV_MEDIA_TYPE = "text/csv"
CHUNK_SIZE = 2000  # rows read (and serialized) per batch while streaming
_LINES_PER_WRITE = 500  # rows joined into one piece of the streamed body


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): a job's
# summary `=HYPERLINK(...)`, pushed in by a dispatch system, would run in the manager's Excel.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")  # ASCII: a spreadsheet reads no other digits as a number


def spreadsheet_safe(text: str) -> str:
    """Text a spreadsheet shows as text: one that would start a formula gets a leading `'` (OWASP's
    advice); a number (`-12.50`, an amount) is left as it is. So does each part after a `;`: Excel
    in a locale whose list separator is `;` (German, French) splits a comma file's lines there, so
    `x;=HYPERLINK(..)` became a cell of its own that ran (quoting does not help: a quote only opens
    a cell at its start)."""
    if ";" in text:
        return ";".join(map(_safe_start, text.split(";")))
    return _safe_start(text)


def _safe_start(text: str) -> str:
    if text.startswith(_FORMULA_STARTS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def _json_default(value):
    """Instants inside a JSON cell as the JSON answer writes them (UTC `Z`), not `str()`'s form."""
    return cell(value) if isinstance(value, dt.datetime) else str(value)


def cell(value) -> str:
    """One value as a CSV cell: ISO 8601 instants (UTC `Z`), decimals as written, JSON for nesting,
    text that would start a formula neutralised (`spreadsheet_safe`)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        text = value.astimezone(dt.UTC).isoformat() if value.tzinfo else value.isoformat()
        return text.replace("+00:00", "Z")
    if isinstance(value, (dt.date, Decimal)):
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), default=_json_default, ensure_ascii=False)
    return spreadsheet_safe(str(value))


def is_reference(value) -> bool:
    return isinstance(value, dict) and "id" in value and "name" in value and set(value) <= {"id", "name", "sourceID"}


def locate(columns: list[str], row: dict) -> list[tuple[str, str | None]]:
    """Where each column's value is in the rows (which share their keys): the row's own key, or a
    part of a nested object (`event_type`: `type` of `event`; the longest key that prefixes it)."""
    plan: list[tuple[str, str | None]] = []
    for column in columns:
        bases = [key for key in row if column.startswith(f"{key}_")] if column not in row else []
        base = max(bases, key=len, default=None)
        plan.append((base, column[len(base) + 1 :]) if base else (column, None))
    return plan


def flatten(row: dict, plan: list[tuple[str, str | None]]) -> list[str]:
    """A JSON row to its cells (`locate`'s plan): `x_id`/`x_name` read from a reference `x`."""
    cells = []
    for key, part in plan:
        value = row.get(key)
        if part is not None:
            value = value.get(part) if isinstance(value, dict) else None
        cells.append(cell(value))
    return cells


def columns_of(
    field_names: Iterable[str], references: Iterable[str] = (), parts: dict[str, Iterable[str]] | None = None
) -> list[str]:
    """Column names: each reference field becomes `<name>_id` and `<name>_name`; a field with
    declared `parts` (`Meta.csv_parts`) one `<name>_<part>` column per part."""
    parts = {**{name: ("id", "name") for name in references}, **(parts or {})}
    columns: list[str] = []
    for name in field_names:
        columns += [f"{name}_{part}" for part in parts[name]] if name in parts else [name]
    return columns


def columns_from_rows(rows: list[dict], references: Iterable[str] = (), parts=None) -> list[str]:
    """Columns of already computed rows (a report): keys in order, references split."""
    names: list[str] = []
    references = set(references)
    for row in rows:
        for key, value in row.items():
            if key not in names:
                names.append(key)
            if is_reference(value):
                references.add(key)
    return columns_of(names, references, parts)


def csv_parts(serializer) -> dict[str, tuple[str, ...]]:
    """A serializer's (class or instance) `Meta.csv_parts`: its nested objects of a fixed shape."""
    return dict(getattr(getattr(serializer, "Meta", None), "csv_parts", {}))


def per_currency(amounts: dict) -> str:
    """Amounts by currency in one cell, as every CSV writes them: `300.00 EUR; 12.50 USD`."""
    return "; ".join(f"{amount} {currency}" for currency, amount in amounts.items())


def _view_serializer_class(view):
    get_class = getattr(view, "get_serializer_class", None)
    try:
        return get_class() if get_class else None
    except AssertionError:  # a generic view without a serializer_class: references are seen in the rows
        return None


def reference_names(view) -> list[str]:
    """The reference fields of a view's serializer (so a null reference still gets its two columns)."""
    serializer_class = _view_serializer_class(view)
    fields = serializer_class().fields if serializer_class else {}
    return [name for name, field in fields.items() if isinstance(field, ReferenceField)]


class _Line:
    """A file-like object whose write returns what was written (csv.writer into a generator)."""

    def write(self, value: str) -> str:
        return value


def csv_lines(columns: list[str], rows: Iterable[dict]) -> Iterator[str]:
    """The header and then the rows as CSV text, several rows per piece."""
    writer = csv.writer(_Line())
    yield writer.writerow(columns)
    pending: list[str] = []
    plan = None
    for row in rows:
        plan = plan or locate(columns, row)
        pending.append(writer.writerow(flatten(row, plan)))
        if len(pending) >= _LINES_PER_WRITE:
            yield "".join(pending)
            pending = []
    if pending:
        yield "".join(pending)


def stream_csv(request, columns: list[str], rows: Iterable[dict], filename: str) -> StreamingHttpResponse:
    chunks = (piece.encode() for piece in csv_lines(columns, rows))
    served = getattr(request, "_request", request)  # DRF's request wraps Django's
    body = pulled(chunks) if isinstance(served, ASGIRequest) else chunks
    response = StreamingHttpResponse(body, content_type=f"{CSV_MEDIA_TYPE}; charset=utf-8")
    response["Content-Disposition"] = content_disposition(f"{filename}.csv")
    return response


_END = object()


async def pulled(chunks: Iterator[bytes]):
    """`chunks` as an async iterator, each `next` in the request's own thread (thread-sensitive:
    the view's, whose database connection the rows' cursor is on), so the server sends each chunk
    as it is written, as WSGI does."""
    pull = sync_to_async(next, thread_sensitive=True)
    try:
        while (chunk := await pull(chunks, _END)) is not _END:
            yield chunk
    finally:
        await sync_to_async(chunks.close, thread_sensitive=True)()  # the rows' cursor, in its thread


_UNSAFE_IN_FILENAME = re.compile(r"[\x00-\x1f\x7f/\\]+")


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """A Content-Disposition header for a download named after user text (a contract's
    reference): control characters and path separators replaced, and RFC 6266's `filename*` when
    the name is not plain ASCII. Found by an outside sweep: a newline in a reference made the
    statement's download a 500, and a quote or a non-ASCII letter made a header clients misread."""
    return content_disposition_header(not inline, _UNSAFE_IN_FILENAME.sub("_", filename))


def wants_csv(request) -> bool:
    renderer = getattr(request, "accepted_renderer", None)
    return getattr(renderer, "format", None) == "csv"


def answers_json(view) -> bool:
    """Whether a view's action answers JSON (and so takes `fields`): not a calendar's iCalendar."""
    return any(issubclass(renderer, JSONRenderer) for renderer in view.renderer_classes)


class CSVRenderer(BaseRenderer):
    """Renders a resource (one row) or a list of rows; collections are streamed by `CSVMixin`."""

    media_type = CSV_MEDIA_TYPE
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:  # a 204 (a delete) has no body in any format
            return b""
        rows = data if isinstance(data, list) else [data]
        view = (renderer_context or {}).get("view")
        response = (renderer_context or {}).get("response")
        if response is not None and response.status_code < 400 and "Content-Disposition" not in response:
            response["Content-Disposition"] = content_disposition(f"{getattr(view, 'basename', None) or 'export'}.csv")
        parts = csv_parts(_view_serializer_class(view))
        return "".join(csv_lines(columns_from_rows(rows, reference_names(view), parts), rows)).encode()


class JSONErrorsMixin:
    """Errors are always the JSON envelope, whatever renderer the client asked for; an unknown or
    blank `?format=` (or one this endpoint does not offer, such as `csv` on `/me`) is a 400 naming
    the formats there are (DRF's own answer would be a 404). Every API view has it, so that
    every endpoint answers `?format=` alike (tests/config/test_formats.py walks them all).

    The format's 400 is raised once the caller is authenticated, allowed and counted, like any
    other bad parameter: so it carries the caller's own X-RateLimit-* headers (raised during
    content negotiation, before authentication, it carried the anonymous limit) and a request
    without a token is a 401 first.

    A query parameter given more than once (`?status=active&status=draft`, which Django reads as
    its last value) is a 400 at the same point, on every endpoint (`filters.single_values`);
    `fields` and `sort` are joined into one list instead (`filters.joined_lists`)."""

    # The query parameters the view takes besides `format` (every view's), or None where the view
    # checks them itself (a collection's filter backend, a report's `check_params`).
    taken_query_params: tuple[str, ...] | None = None

    def query_params_taken(self) -> tuple[str, ...] | None:
        return self.taken_query_params

    def query_param_hints(self) -> dict[str, str]:
        """Why some parameters are refused here, when "unknown" would puzzle (`fields` on a write)."""
        return {}

    def formats(self) -> str:
        return ", ".join(dict.fromkeys(renderer.format for renderer in self.get_renderers()))

    def perform_content_negotiation(self, request, force=False):
        if force:
            return super().perform_content_negotiation(request, force)
        formats = self.formats()
        if "format" in request.query_params and not request.query_params["format"].strip():
            # A blank ?format= names no format (DRF would quietly ignore it): refused like an unknown one.
            error = BadRequest(f"Blank format; use one of: {formats}.", {"format": [f"Use one of: {formats}."]})
        else:
            try:
                return super().perform_content_negotiation(request, force)
            except Http404:
                error = BadRequest(f"Unknown format; use one of: {formats}.", {"format": [f"Use one of: {formats}."]})
        self._format_error = error  # raised by initial(), after authentication
        return JSONRenderer(), JSONRenderer.media_type

    def initial(self, request, *args, **kwargs):
        self._format_error = None
        super().initial(request, *args, **kwargs)
        # Before anything reads them: the view, its filters, sort and paginator see one value.
        request._request.GET = joined_lists(request._request.GET)
        single_values(request.query_params)
        if self._format_error is not None:
            raise self._format_error
        # A CORS preflight carries the query too; a method the view does not serve is its 405.
        if request.method == "OPTIONS" or not self._serves(request.method):
            return
        taken = self.query_params_taken()
        if taken is not None:
            refuse_unknown(request.query_params, {"format", *taken}, self.query_param_hints())

    def _serves(self, method: str) -> bool:
        """Whether `method` has a handler here (DRF's dispatch answers 405 otherwise, after `initial`)."""
        name = method.lower()
        return name in self.http_method_names and getattr(self, name, None) is not None

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


class CSVMixin(JSONErrorsMixin):
    """The base viewset's CSV hook: `list()` streams every row when CSV was asked for."""

    renderer_classes = [JSONRenderer, CSVRenderer]
    csv_chunk_size = CHUNK_SIZE

    def csv_columns(self, serializer, rows: list[dict]) -> list[str]:
        """The readable fields; references (declared, or seen as `{"id", "name"}` in `rows`) and the
        serializer's `Meta.csv_parts` split."""
        serializer = getattr(serializer, "child", serializer)
        fields = serializer.fields
        names = [name for name, field in fields.items() if not field.write_only]
        references = {name for name in names if isinstance(fields[name], ReferenceField)}
        references |= {name for row in rows for name, value in row.items() if is_reference(value)}
        return columns_of(names, references, csv_parts(serializer))

    def csv_rows(self, queryset) -> Iterator[dict]:
        """The serialized rows, one chunk of the queryset at a time (prefetches run per chunk)."""
        chunk: list = []
        for obj in queryset.iterator(chunk_size=self.csv_chunk_size):
            chunk.append(obj)
            if len(chunk) >= self.csv_chunk_size:
                yield from self.get_serializer(chunk, many=True).data
                chunk = []
        if chunk:
            yield from self.get_serializer(chunk, many=True).data

    def csv_queryset(self, queryset, serializer):
        """Drop the prefetches of nested fields that `?fields=` left out (a bulk export often
        picks a few flat columns); kept whenever a method field is selected, which may read them."""
        fields = serializer.child.fields
        if any(isinstance(field, SerializerMethodField) for field in fields.values()):
            return queryset
        declared = set(type(serializer.child)().fields)
        lookups = queryset._prefetch_related_lookups
        kept = [
            lookup
            for lookup in lookups
            if (getattr(lookup, "prefetch_to", lookup)).split("__")[0] in fields
            or (getattr(lookup, "prefetch_to", lookup)).split("__")[0] not in declared
        ]
        return queryset if len(kept) == len(lookups) else queryset.prefetch_related(None).prefetch_related(*kept)

    def stream_list(self, queryset) -> StreamingHttpResponse:
        queryset = self.csv_queryset(queryset, self.get_serializer([], many=True))
        rows = self.csv_rows(queryset)
        # The first chunk is serialized before the header is written, so that references a
        # method field returns (an event's actor) get their two columns too.
        first = list(itertools.islice(rows, self.csv_chunk_size))
        columns = self.csv_columns(self.get_serializer([], many=True), first)
        return stream_csv(self.request, columns, itertools.chain(first, rows), self.basename or "export")
