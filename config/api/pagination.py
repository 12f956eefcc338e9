"""Page-number pagination in the 4me style: a bare array, totals and links in headers."""

import math

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


def query_int(request, name: str, default: int, minimum: int, maximum: int) -> int:
    """A whole-number query parameter within [minimum, maximum]; anything else is a 400 naming it."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= len(str(maximum)) else None
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
    loaded, with their `select_related` joins and prefetches, and put back in the ids' order.
    The order always ends on the id (the sort backend adds it), so ties page the same way as
    one query would.
    """
    if not isinstance(queryset, QuerySet):
        return list(queryset[start:stop])
    ids = list(queryset.values_list("pk", flat=True)[start:stop])
    if not ids:
        return []
    # The page's own ordering may repeat; `IN` loads each row once.
    page = queryset.order_by().filter(InArray(F("pk"), ids))
    rows = {row.pk: row for row in page} if columns is None else _by_first_column(page.values(*columns))
    return [rows[pk] for pk in ids if pk in rows]


def _by_first_column(rows) -> dict:
    return {row[next(iter(row))]: row for row in rows}


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
