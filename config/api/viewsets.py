"""The base viewsets: one place for tenancy scoping, `?fields=`, sort, filters and writes.

A resource's viewset is declarative:

    class CounterpartyViewSet(CreateMixin, UpdateMixin, DestroyMixin, ResourceViewSet):
        queryset = Counterparty.objects.all()
        serializer_class = CounterpartySerializer
        filterset_class = CounterpartyFilterSet
        sort_fields = {"name": "name", "created_at": "created_at"}
        default_sort = "name"
        write_role = "manager"
        create_service = staticmethod(services.create_counterparty)
        ...

Reads and writes only ever see the caller's organization (`queryset.for_organization`), so
another organization's object is a 404. Writes go through the resource's services (which write
the events); views validate, call and serialize.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import QuerySet
from rest_framework import status, viewsets
from rest_framework.response import Response
from rest_framework.reverse import reverse

from .csv import CSVMixin, answers_json, wants_csv
from .exceptions import BadRequest
from .rows import RowPlan, row_plan
from .serializers import defer_unreferenced
from .sorting import is_collection


def field_names(raw: str, readable) -> list[str]:
    """`?fields=` parsed: names among `readable`, else a 400."""
    names = [name.strip() for name in raw.split(",") if name.strip()]
    if not names:
        raise BadRequest("fields names no field: give field names, or leave fields out.", {"fields": ["Blank."]})
    unknown = [name for name in names if name not in readable]
    if unknown:
        raise BadRequest(
            f"Unknown field: {', '.join(unknown)}", {"fields": [f"Unknown field: {name}" for name in unknown]}
        )
    return names


class ResourceViewSet(CSVMixin, viewsets.GenericViewSet):
    # List and retrieve, scoped to the caller's organization. (A comment, not a docstring:
    # the OpenAPI description of each resource comes from its own viewset's docstring.)

    sort_fields: dict[str, str] = {}
    default_sort: str = "name"
    read_role: str = "viewer"
    write_role: str = "manager"
    # An action may need its own role: @action(..., required_role="operator").
    required_role: str | None = None
    # A collection's parameters beyond the toolkit's and its filters (`/events?since=`).
    extra_query_params: tuple[str, ...] = ()
    # A single resource's GET takes `fields` (and `format`) only, and these (`/contracts/{id}?as_of=`).
    detail_query_params: tuple[str, ...] = ()
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    lookup_value_regex = "[0-9]+"
    # Lists load of these `select_related` references only the columns the serializer reads
    # (config.api.serializers.defer_unreferenced): {reference: (extra columns read, ...)}.
    list_references: dict[str, tuple[str, ...]] = {}

    @property
    def organization(self):
        return self.request.auth.organization

    def get_queryset(self):
        return self.queryset.for_organization(self.organization)

    def get_default_sort(self) -> str:
        return self.default_sort

    def query_params_taken(self) -> tuple[str, ...] | None:
        """Where the filter backend does not check them: on a single resource and on every write,
        what the OpenAPI document declares (a filter, `sort` or `page` there is a 400 "Unknown
        query parameter", never silently ignored nor a hidden filter)."""
        if is_collection(self):
            return None  # the filter backend's: the filters, the toolkit's and `extra_query_params`
        if self.request.method not in ("GET", "HEAD"):
            return ()  # a write answers with the whole resource (`fields` is refused, not ignored)
        return (*(("fields",) if answers_json(self) else ()), *self.detail_query_params)

    def query_param_hints(self) -> dict[str, str]:
        if self.request.method in ("GET", "HEAD"):
            return {}
        return {"fields": "A write answers with the whole resource: fields is for reads."}

    def filter_queryset(self, queryset):
        # Filters and sort are a collection's. DRF's get_object() ran them on a single resource
        # too, so `GET /counterparties/1?kind=vendor` (or a PATCH with it) answered 404.
        return super().filter_queryset(queryset) if is_collection(self) else queryset

    def selected_fields(self, serializer_class) -> list[str] | None:
        """`?fields=` on reads; a collection's default fields otherwise; None means all."""
        if self.request.method not in ("GET", "HEAD"):
            return None
        if getattr(self, "swagger_fake_view", False):
            # The OpenAPI document: `?fields=` may pick any readable field, on a collection too,
            # and drf-spectacular keeps the first component of a name (the list's) for the detail.
            return None
        raw = self.request.query_params.get("fields")
        if raw is not None:
            return field_names(raw, serializer_class.readable_field_names())
        if is_collection(self):  # `/contracts/active` too, not only `list` (its action is `active`)
            return list(getattr(serializer_class.Meta, "default_fields", [])) or None
        return None

    def get_serializer(self, *args, **kwargs):
        serializer_class = self.get_serializer_class()
        kwargs.setdefault("context", self.get_serializer_context())
        if "data" not in kwargs and hasattr(serializer_class, "readable_field_names"):
            kwargs.setdefault("fields", self.selected_fields(serializer_class))
        return serializer_class(*args, **kwargs)

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        # --- CSV (issue 11): the same fields, filters and sort, streamed without the page limit.
        if wants_csv(request):
            self.paginator.check_params(request)
            return self.stream_list(defer_unreferenced(queryset, self.list_references))
        # --- end CSV
        plan = self.row_plan() if isinstance(queryset, QuerySet) else None
        if plan is not None:
            rows = self.paginator.paginate_queryset(queryset, request, view=self, columns=plan.columns)
            return self.get_paginated_response(plan.render(rows))
        page = self.paginate_queryset(defer_unreferenced(queryset, self.list_references))
        serializer = self.get_serializer(page, many=True)
        return self.get_paginated_response(serializer.data)

    def row_plan(self) -> RowPlan | None:
        """How a page is written from `values()` rows when every shown field can be (config.api.rows);
        None: from instances. A view that reworks its instances before they are shown says None."""
        return row_plan(self.get_serializer(many=True).child)

    def retrieve(self, request, *args, **kwargs):
        return Response(self.get_serializer(self.get_object()).data)

    def respond(self, instance, status_code: int = status.HTTP_200_OK, headers=None) -> Response:
        """The full resource, re-read through the scoped queryset (so its joins apply).

        A service that recomputed SLA clocks says how many in `instance.recomputed_clocks`;
        the response carries it as `X-Recomputed-Clocks`."""
        fresh = self.get_queryset().get(pk=instance.pk)
        headers = dict(headers or {})
        if getattr(instance, "recomputed_clocks", None) is not None:
            headers["X-Recomputed-Clocks"] = str(instance.recomputed_clocks)
        return Response(self.get_serializer(fresh).data, status=status_code, headers=headers)

    def detail_url(self, instance) -> str:
        # Nested routes (contracts/{contract_pk}/line_items) keep their parent's keyword.
        kwargs = {**{k: v for k, v in self.kwargs.items() if k != self.lookup_field}, "pk": instance.pk}
        return reverse(f"{self.basename}-detail", kwargs=kwargs, request=self.request)


class NestedListMixin:
    # A list under its parent's route (`/contracts/{contract_pk}/line_items`) filters on the route's
    # id without loading the parent (issue 15: a query and a whole row per request): its rows are
    # the caller's organization's, and a child is always in its parent's. Only an empty page, or a
    # CSV export before it streams, loads the parent (the `parent_attribute` property, a 404 when
    # the parent is not the caller's).

    parent_attribute: str

    def parent_unread(self) -> bool:
        return self.action == "list"

    def list(self, request, *args, **kwargs):
        unread, csv = self.parent_unread(), wants_csv(request)
        if unread and csv:
            getattr(self, self.parent_attribute)  # a 404 before streaming
        response = super().list(request, *args, **kwargs)
        if unread and not csv and self.paginator.total == 0:
            getattr(self, self.parent_attribute)  # no rows: a 404 unless the parent is the caller's
        return response


class CreateMixin:
    # POST: 201 with a Location header and the full resource.

    create_service: Callable

    def create(self, request, *args, **kwargs):
        return self.create_from(self.validated_create(request))

    def validated_create(self, request) -> dict:
        """The body validated, and the caller allowed to ask for it (`check_create`)."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.check_create(serializer.validated_data)
        return serializer.validated_data

    def check_create(self, data: dict) -> None:
        """Raise Forbidden when the caller may not ask for this (beyond `write_role`). Kept out of
        `create_service` so an `Idempotency-Key` replay runs it too (ledger.idempotency)."""

    def create_from(self, data: dict) -> Response:
        instance = self.create_service(organization=self.organization, actor=self.request.user, data=data)
        return self.respond(instance, status.HTTP_201_CREATED, {"Location": self.detail_url(instance)})


class UpdateMixin:
    # PATCH: 200 with the full resource.

    update_service: Callable

    def partial_update(self, request, *args, **kwargs):
        instance = self.get_object()
        serializer = self.get_serializer(instance, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        instance = self.update_service(instance=instance, actor=request.user, data=serializer.validated_data)
        return self.respond(instance)


class DestroyMixin:
    # DELETE: 204.

    delete_service: Callable

    def destroy(self, request, *args, **kwargs):
        request.data  # noqa: B018 - a DELETE takes no body, but a malformed one is still a 400
        self.delete_service(instance=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
