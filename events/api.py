"""`GET /api/v1/events`: the audit trail, and the outbox to stream from with `?since=ID`."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view

from config.api.filters import MAX_DB_ID, PredicateFilterSet
from config.api.pagination import query_int
from config.api.schema import whole_number_parameter
from config.api.serializers import ReferenceField, ResourceSerializer
from config.api.viewsets import ResourceViewSet

from .models import Event
from .visibility import readable_by


class EventSerializer(ResourceSerializer):
    actor = ReferenceField()

    class Meta:
        model = Event
        fields = ["id", "type", "actor", "object_type", "object_id", "payload", "occurred_at"]
        read_only_fields = fields
        default_fields = fields


class EventFilterSet(PredicateFilterSet):
    class Meta:
        model = Event
        fields = ["type", "object_type", "object_id", "occurred_at"]


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter(
                "since",
                whole_number_parameter(0, MAX_DB_ID),
                description="Only events after this id, oldest first: resume a stream from the last id seen.",
            )
        ]
    )
)
class EventViewSet(ResourceViewSet):
    """Every change, newest first; with `?since=ID`, the events after that id, oldest first."""

    queryset = Event.objects.select_related("actor")
    serializer_class = EventSerializer
    filterset_class = EventFilterSet
    sort_fields = {"id": "id", "occurred_at": "occurred_at", "type": "type"}
    default_sort = "-id"
    extra_query_params = ("since",)

    def since(self) -> int | None:
        if self.request.query_params.get("since") is None:
            return None
        return query_int(self.request, "since", 0, 0, MAX_DB_ID)

    def get_queryset(self):
        # The events of the resources the caller's role reads (events.visibility).
        queryset = readable_by(super().get_queryset(), self.request.auth.role)
        since = self.since()
        return queryset if since is None else queryset.filter(id__gt=since)

    def get_default_sort(self) -> str:
        # A reader following the stream reads forward from its cursor.
        return "id" if self.since() is not None else self.default_sort
