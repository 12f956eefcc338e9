"""`/api/v1/counterparties` (and, with the contracts issue, contracts)."""

from config.api.filters import PredicateFilter, PredicateFilterSet
from config.api.serializers import ResourceSerializer, SourceFieldsMixin
from config.api.viewsets import CreateMixin, DestroyMixin, ResourceViewSet, UpdateMixin

from . import services
from .models import Counterparty


class CounterpartySerializer(SourceFieldsMixin, ResourceSerializer):
    class Meta:
        model = Counterparty
        fields = [
            "id", "name", "kind", "reference", "email", "phone", "address", "remarks",
            "source", "sourceID", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]
        default_fields = ["id", "name", "kind", "reference", "sourceID", "created_at", "updated_at"]


class CounterpartyFilterSet(PredicateFilterSet):
    sourceID = PredicateFilter(field_name="source_id")

    class Meta:
        model = Counterparty
        fields = ["name", "kind", "reference", "email", "source", "created_at", "updated_at"]


class CounterpartyViewSet(CreateMixin, UpdateMixin, DestroyMixin, ResourceViewSet):
    """The customers and vendors that contracts are made with. Managers write, everyone reads."""

    queryset = Counterparty.objects.all()
    serializer_class = CounterpartySerializer
    filterset_class = CounterpartyFilterSet
    sort_fields = {
        "name": "name",
        "kind": "kind",
        "reference": "reference",
        "created_at": "created_at",
        "updated_at": "updated_at",
    }
    default_sort = "name"
    write_role = "manager"
    create_service = staticmethod(services.create_counterparty)
    update_service = staticmethod(services.update_counterparty)
    delete_service = staticmethod(services.delete_counterparty)
