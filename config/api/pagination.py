"""Page-number pagination in the 4me style: a bare array, totals and links in headers."""

import math
from collections.abc import Callable
from functools import cache
from weakref import WeakKeyDictionary

from django.conf import settings
from django.core.exceptions import FieldError
from django.db import connections
from django.db.models import F, QuerySet
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from ..lookups import InArray
from .exceptions import BadRequest

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
# Far beyond any real collection (100 million resources at 100 a page), and small enough that
# the offset always fits the database's integers.
MAX_PAGE = 1_000_000


def whole_number(raw: str, maximum: int) -> int | None:
    """`raw` as a whole number if it is ASCII digits only and at most `maximum`, else None.
    `str.isdigit` alone takes other scripts' digits (`int("٣")` is 3), and the length check comes
    before `int()`, which refuses more than 4,300 digits with a ValueError."""
    if not (raw.isascii() and raw.isdigit() and len(raw) <= len(str(maximum))):
        return None
    value = int(raw)
    return value if value <= maximum else None


def integer(raw: str, maximum: int) -> int | None:
    """`raw` as an integer by `whole_number`'s rule, with an optional leading minus (`-5`), its
    size at most `maximum`, else None: never `int()`'s `1_0`, `+1`, ` 1` or `١`."""
    digits = raw.removeprefix("-")
    value = whole_number(digits, maximum)
    return None if value is None else (-value if digits != raw else value)


def query_int(request, name: str, default: int, minimum: int, maximum: int) -> int:
    """A whole-number query parameter within [minimum, maximum]; anything else is a 400 naming it."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = whole_number(raw, maximum)
    if value is None or not minimum <= value <= maximum:
        bounds = f"{minimum} to {maximum}"
        raise BadRequest(f"{name} must be a whole number from {bounds}.", {name: [f"Must be {bounds}."]})
    return value


def page_count(queryset) -> int:
    """The collection's size: one COUNT over the filtered table, without the joins of
    `select_related` and without annotations the filters do not use (never a count over a join)."""
    if not isinstance(queryset, QuerySet):
        return len(queryset)  # a computed collection (a contract's planned visits)
    return queryset.order_by().select_related(None).prefetch_related(None).count()


def page_rows(queryset, start: int, stop: int, columns: list[str] | None = None) -> list:
    """The rows of one page, ids first (issue 15): model instances, or with `columns` dicts of
    those columns (`values()`, config.api.rows), the first column being the primary key.

    The ids of the page are selected alone, in the queryset's order: the database walks the
    index of the default sort per organization (e.g. `(organization, reported_at, id)`) and
    skips rows without reading them or joining them to anything. Then only those rows are
    loaded, with their `select_related` joins and prefetches, and put back in the ids' order;
    with `columns`, by the list's rows query compiled once (`RowsQuery`), the ids its only input.
    The order always ends on the id (the sort backend adds it), so ties page the same way as
    one query would.
    """
    if not isinstance(queryset, QuerySet):
        return list(queryset[start:stop])
    ids = list(queryset.values_list("pk", flat=True)[start:stop])
    if not ids:
        return []
    compiled = None if columns is None else rows_query(queryset.model, columns, queryset.db, len(ids))
    if compiled is not None:
        rows = _by_first_column(compiled.rows(ids))
    else:
        # The page's own ordering may repeat; `IN` loads each row once.
        page = queryset.order_by().filter(InArray(F("pk"), ids))
        rows = {row.pk: row for row in page} if columns is None else _by_first_column(page.values(*columns))
    return [rows[pk] for pk in ids if pk in rows]


def _by_first_column(rows) -> dict:
    return {row[next(iter(row))]: row for row in rows}


class IdsQuery:
    """A query whose one input is a list of ids, built and compiled once (issue 15): the ORM
    resolved every joined column and compiled the query anew per request, ~0.2 ms on the
    counterparty list and ~0.45 ms on breaches, growing with a query's joins and columns.

    `queryset_of(ids)` builds the query for some ids; it is called once, with sample ids, and the
    compiled SQL is reused with the real ones. What comes back is what the queryset gives: the
    same SQL, the same converters (`SQLCompiler.get_converters`, applied as `apply_converters`
    does), bound to the connection they were compiled on, hence the cache per connection object
    (per thread, `ids_query`). On PostgreSQL the ids are one array parameter (one query for any
    number of ids); elsewhere one parameter each (one query per number of ids)."""

    def __init__(self, queryset_of: Callable[[list], QuerySet], alias: str, size: int):
        sample = list(range(1, size + 1))  # distinct ids: `IN` keeps one of each
        query = queryset_of(sample).query
        compiler = query.get_compiler(alias)
        self.sql, params = compiler.as_sql()
        self.one_array = InArray.one_array(compiler.connection)
        if list(params) != ([sample] if self.one_array else sample):
            raise RuntimeError(f"{query.model.__name__} query: the ids are not its only parameters ({params!r})")
        fields = [select[0] for select in compiler.select[: compiler.col_count]]
        self.names = list(query.selected)
        self.connection = compiler.connection
        # Read in PostgreSQL's binary format when every column's binary loader gives what Django's
        # text one does: psycopg's C loaders build instants, numbers and dates from bytes, where
        # text is printed by the server and parsed again here (`_BINARY_READS_AS_TEXT`).
        self.binary = self.one_array and all(_binary_reads_as_text(field.output_field) for field in fields)
        self.converters = [(pos, *converters) for pos, converters in compiler.get_converters(fields).items()]

    def tuples(self, ids: list) -> list:
        """The rows for these ids, each a sequence of the columns' values, converted."""
        with self._cursor() as cursor:
            cursor.execute(self.sql, (ids,) if self.one_array else ids)
            fetched = cursor.fetchall()
        converters, connection = self.converters, self.connection
        if not converters:
            return fetched
        rows = []
        for values in map(list, fetched):
            for pos, convs, expression in converters:
                value = values[pos]
                for convert in convs:
                    value = convert(value, expression, connection)
                values[pos] = value
            rows.append(values)
        return rows

    def rows(self, ids: list) -> list[dict]:
        """The rows for these ids as dicts of the columns, as `values()` gives them."""
        names = self.names
        return [dict(zip(names, row, strict=True)) for row in self.tuples(ids)]

    def _cursor(self):
        """Django's cursor; on PostgreSQL one that prepares the statement (when `PREPARED_ROWS_QUERIES`,
        default True): the connection plans the query once and reuses its generic plan, whose
        planning grew with the joins (backend CPU per page: counterparties 0.16 → 0.12 ms, breaches
        0.75 → 0.40, the at-risk report 1.1 → 0.52; docs/performance.md)."""
        connection = self.connection
        if not (self.one_array and settings.PREPARED_ROWS_QUERIES):
            return connection.cursor()
        connection.ensure_connection()
        raw = connection.connection
        # Django turns psycopg's prepared statements off (None) so that a pooler in transaction
        # mode keeps working; a threshold no query reaches lets only those asked to be prepared
        # be (Django's cursors bind on the client and never are).
        if raw.prepare_threshold is None:
            raw.prepare_threshold = 2**31
        factory, raw.cursor_factory = raw.cursor_factory, _prepared_cursor(self.binary)  # Django's cursor set-up
        try:
            return connection.cursor()
        finally:
            raw.cursor_factory = factory


# Model fields whose column psycopg's binary loader reads as the same Python value as the text loader
# Django's connections use (`repr`-equal: tests/config/test_rows_query.py): integers, text, booleans,
# dates, UUIDs, and instants in the session's time zone (Django sets it to its own). JSON too, read
# as its text by `_JsonbText` as Django reads it. Not inet/cidr (Django reads them as text), nor
# decimals: their binary loader was slower than the text one (a page of billing lines +0.07 ms).
_BINARY_READS_AS_TEXT = frozenset(
    {
        "AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField", "SmallIntegerField",
        "PositiveIntegerField", "PositiveSmallIntegerField", "PositiveBigIntegerField", "ForeignKey",
        "OneToOneField", "CharField", "TextField", "SlugField", "EmailField", "URLField", "BooleanField",
        "DateField", "DateTimeField", "UUIDField", "JSONField",
    }
)  # fmt: skip


def _binary_reads_as_text(field) -> bool:
    return field.get_internal_type() in _BINARY_READS_AS_TEXT


@cache
def _prepared_cursor(binary: bool):
    from django.db.backends.postgresql.base import ServerBindingCursor
    from psycopg import ClientCursor, DataError
    from psycopg.adapt import Loader
    from psycopg.pq import Format

    class _JsonbText(Loader):
        # jsonb in binary is a version byte, then the JSON text: the text, as Django's `TextLoader`
        # gives it in text format (JSONField decodes it with the field's own decoder).
        format = Format.BINARY

        def load(self, data):
            data = bytes(data)
            if data[:1] != b"\x01":
                raise DataError(f"unknown jsonb binary format: {data[:1]!r}")
            return data[1:].decode()

    class LoggedQuery:
        # What Django's query log reads of a client-binding cursor (`cursor._query.query`; a
        # server-binding one keeps none): the statement with its ids, composed only when read.
        def __init__(self, cursor, sql, params):
            self.cursor, self.sql, self.params = cursor, sql, params

        @property
        def query(self) -> bytes:
            return ClientCursor(self.cursor.connection).mogrify(self.sql, self.params).encode()

    class PreparedCursor(ServerBindingCursor):
        """Binds on the server and prepares every statement it executes; with `binary`, reads
        the results in binary format."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if binary:
                self.adapters.register_loader("jsonb", _JsonbText)

        def execute(self, query, params=None, **kwargs):
            result = super().execute(query, params, prepare=True, binary=binary)
            self._query = LoggedQuery(self, query, params)
            return result

    return PreparedCursor


class RowsQuery(IdsQuery):
    """A list's rows: `Model._base_manager.filter(InArray(F("pk"), ids)).values(*columns)`.

    Only the ids vary, and they are the page's ids, selected on the tenant-scoped, filtered
    queryset: so the query needs neither the organization's filter nor the list's filters, and
    cannot reach a row the ids do not name."""

    def __init__(self, model, columns: tuple[str, ...], alias: str, size: int):
        manager = model._base_manager.using(alias)
        super().__init__(lambda ids: manager.filter(InArray(F("pk"), ids)).values(*columns), alias, size)


# connection → {(key, number of ids unless one array): IdsQuery, or None where the query could not
# be compiled alone (a list's column that is not the model's own, an annotation: those pages load
# through their queryset's `values()`)}.
_ROWS_QUERIES: WeakKeyDictionary = WeakKeyDictionary()
# Per connection: every list with its default fields and all its fields, with room for `?fields=`
# choices (psycopg keeps at most `prepared_max`, 100, statements prepared on the server).
MAX_ROWS_QUERIES = 256


def ids_query(key, make: Callable[[], IdsQuery], alias: str, size: int) -> IdsQuery | None:
    """The compiled query under `key` on this thread's connection to `alias`, `make()` on a miss."""
    connection = connections[alias]
    queries = _ROWS_QUERIES.get(connection)
    if queries is None:
        queries = _ROWS_QUERIES[connection] = {}
    key = (key, None if InArray.one_array(connection) else size)
    if key not in queries:
        if len(queries) >= MAX_ROWS_QUERIES:  # `?fields=` makes many column lists: stay bounded
            queries.clear()
        try:
            queries[key] = make()
        except FieldError:
            queries[key] = None
    return queries[key]


def rows_query(model, columns, alias: str, size: int) -> RowsQuery | None:
    """The compiled rows query of (model, columns) on this thread's connection to `alias`."""
    columns = tuple(columns)
    return ids_query((model, columns), lambda: RowsQuery(model, columns, alias, size), alias, size)


class PagePagination(BasePagination):
    """`?page=` and `?per_page=` (default 20, max 100); headers X-Pagination-* and Link."""

    def check_params(self, request) -> None:
        """Read `?page=` and `?per_page=` (a 400 when out of bounds): also for a CSV export, which
        streams every row, so that a bad value is refused the same way in every format."""
        self.per_page = query_int(request, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
        self.page = query_int(request, "page", 1, 1, MAX_PAGE)

    def paginate_queryset(self, queryset, request, view=None, columns=None):
        self.request = request
        self.check_params(request)
        self.total = page_count(queryset)
        self.total_pages = max(1, math.ceil(self.total / self.per_page))
        start = (self.page - 1) * self.per_page
        return page_rows(queryset, start, start + self.per_page, columns)

    def _link(self, page: int) -> str:
        url = self.request.build_absolute_uri()
        url = replace_query_param(url, "per_page", self.per_page)
        return replace_query_param(url, "page", page)

    def get_headers(self) -> dict[str, str]:
        links = [f'<{self._link(1)}>; rel="first"']
        if self.page > 1:
            links.append(f'<{self._link(min(self.page - 1, self.total_pages))}>; rel="prev"')
        if self.page < self.total_pages:
            links.append(f'<{self._link(self.page + 1)}>; rel="next"')
        links.append(f'<{self._link(self.total_pages)}>; rel="last"')
        return {
            "X-Pagination-Per-Page": str(self.per_page),
            "X-Pagination-Current-Page": str(self.page),
            "X-Pagination-Total-Pages": str(self.total_pages),
            "X-Pagination-Total-Entries": str(self.total),
            "Link": ", ".join(links),
        }

    def get_paginated_response(self, data):
        return Response(data, headers=self.get_headers())

    def get_paginated_response_schema(self, schema):
        return schema

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "page",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1},
                "description": "Page number; a page past the last one is an empty array.",
            },
            {
                "name": "per_page",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": DEFAULT_PER_PAGE},
                "description": "Resources per page.",
            },
        ]
