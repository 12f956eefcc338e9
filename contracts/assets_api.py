"""`/api/v1/assets`: equipment and sites of counterparties (issue 13). Operators read, managers write."""

from __future__ import annotations

from rest_framework import serializers

from config.api.filters import PredicateFilter, PredicateFilterSet
from config.api.serializers import (
    ReferenceField,
    ReferenceIdField,
    ResourceSerializer,
    SourceFieldsMixin,
    shaped_json_field,
)
from config.api.viewsets import CreateMixin, DestroyMixin, ResourceViewSet, UpdateMixin

from . import assets as services
from .geo import CoverageError, validate_point
from .models import Asset, Counterparty

# A GeoJSON Point (RFC 7946) as `validate_point` takes it; the ranges of longitude and latitude, which
# OpenAPI 3.0 cannot say per position, are in the description.
GeoPointField = shaped_json_field(
    {
        "type": "object",
        "description": "A GeoJSON Point: coordinates [longitude -180..180, latitude -90..90(, altitude)] in WGS 84.",
        "required": ["type", "coordinates"],
        "properties": {
            "type": {"type": "string", "enum": ["Point"]},
            "coordinates": {"type": "array", "minItems": 2, "maxItems": 3, "items": {"type": "number"}},
        },
    },
    "GeoJSONPoint",
)


def point_or_none(value, path: str):
    """A serializer's check of an optional GeoJSON Point field (422 naming the field)."""
    if value is None:
        return None
    try:
        validate_point(value, path=path)
    except CoverageError as exc:
        raise serializers.ValidationError([m for messages in exc.errors.values() for m in messages]) from None
    return value


class AssetSerializer(SourceFieldsMixin, ResourceSerializer):
    counterparty = ReferenceField()
    counterparty_id = ReferenceIdField(source="counterparty", queryset=Counterparty.objects.all())
    location = GeoPointField(required=False, allow_null=True, help_text="A GeoJSON Point (lon, lat).")
    covering_contracts = serializers.SerializerMethodField()

    class Meta:
        model = Asset
        fields = [
            "id", "name", "kind", "serial_number", "counterparty", "counterparty_id", "site", "location",
            "remarks", "covering_contracts", "source", "sourceID", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]
        default_fields = [
            "id", "name", "kind", "serial_number", "counterparty", "site", "sourceID", "created_at", "updated_at",
        ]  # fmt: skip

    def validate_location(self, value):
        return point_or_none(value, "location")

    def get_covering_contracts(self, asset) -> list[int]:
        """Ids of the contracts whose terms cover the asset (any state)."""
        return sorted(contract.pk for contract in asset.covering_contracts.all())


class AssetFilterSet(PredicateFilterSet):
    counterparty_id = PredicateFilter(field_name="counterparty")
    sourceID = PredicateFilter(field_name="source_id")

    class Meta:
        model = Asset
        fields = ["name", "kind", "serial_number", "site", "source", "created_at", "updated_at"]


class AssetViewSet(CreateMixin, UpdateMixin, DestroyMixin, ResourceViewSet):
    """Equipment and sites of counterparties, which contracts cover (`covered_asset_ids`) and work
    orders name (`asset_id`). Operators read; managers write."""

    queryset = Asset.objects.select_related("counterparty")
    serializer_class = AssetSerializer
    filterset_class = AssetFilterSet
    sort_fields = {
        "name": "name",
        "kind": "kind",
        "serial_number": "serial_number",
        "site": "site",
        "created_at": "created_at",
        "updated_at": "updated_at",
    }
    default_sort = "name"
    read_role = "operator"
    write_role = "manager"
    create_service = staticmethod(services.create_asset)
    update_service = staticmethod(services.update_asset)
    delete_service = staticmethod(services.delete_asset)

    def get_queryset(self):
        queryset = super().get_queryset()
        fields = self.selected_fields(self.get_serializer_class())
        if fields is None or "covering_contracts" in fields:
            queryset = queryset.prefetch_related("covering_contracts")
        return queryset
