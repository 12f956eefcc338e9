"""Serializer pieces shared by every resource (DESIGN §5).

- `ResourceSerializer`: `?fields=` selection (with `Meta.default_fields` for collections),
  422 for read-only or unknown fields in the input, `source`/`sourceID` uniqueness per
  organization and source (409 naming the existing id).
- `ReferenceField` / `ReferenceIdField`: references come out as `{"id", "name"[, "sourceID"]}`
  and go in as `<name>_id`, looked up in the caller's organization only.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .exceptions import Conflict


def tenant_of(serializer_field) -> object | None:
    """The caller's organization, from the request in the serializer context."""
    request = serializer_field.context.get("request")
    auth = getattr(request, "auth", None)
    return getattr(auth, "organization", None)


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "readOnly": True,
        "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "sourceID": {"type": "string"}},
        "required": ["id", "name"],
    }
)
class ReferenceField(serializers.Field):
    """Read-only nested reference: `{"id": 1, "name": "Acme", "sourceID": "A-1"}`."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value):
        return reference_of(value)


def reference_of(obj) -> dict | None:
    if obj is None:
        return None
    data = {"id": obj.pk, "name": getattr(obj, "name", None) or str(obj)}
    if getattr(obj, "source_id", ""):
        data["sourceID"] = obj.source_id
    return data


class ReferenceIdField(serializers.PrimaryKeyRelatedField):
    """`<name>_id` input, resolved within the caller's organization: any other id is a 422."""

    default_error_messages = {
        "does_not_exist": "{model} {pk_value} does not exist.",
        "incorrect_type": "Expected an integer id, got {data_type}.",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("write_only", True)
        super().__init__(**kwargs)

    def get_queryset(self):
        return super().get_queryset().filter(organization=tenant_of(self))

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, str)):
            self.fail("incorrect_type", data_type=type(data).__name__)
        try:
            return self.get_queryset().get(pk=int(data))
        except (ValueError, TypeError):
            self.fail("incorrect_type", data_type=type(data).__name__)
        except self.get_queryset().model.DoesNotExist:
            model = self.get_queryset().model._meta.verbose_name.capitalize()
            self.fail("does_not_exist", model=model, pk_value=data)


class StrictInputMixin:
    """Input with a field that is read-only or does not exist is a 422, not silently ignored."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"base": ["Expected a JSON object."]})
        errors = {}
        for key in data:
            field = self.fields.get(key)
            if field is None:
                errors[key] = ["Unknown field."]
            elif field.read_only:
                errors[key] = ["This field is read-only."]
        if errors:
            raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class ActionSerializer(StrictInputMixin, serializers.Serializer):
    """The body of an action sub-path (`POST /contracts/{id}/approve`)."""


class ResourceSerializer(StrictInputMixin, serializers.ModelSerializer):
    """Base for every resource serializer.

    `Meta.default_fields` lists what a collection returns without `?fields=`; a single GET
    returns every readable field. Pass `fields=[...]` to pick.
    """

    def __init__(self, *args, fields=None, **kwargs):
        super().__init__(*args, **kwargs)
        if fields is not None:
            keep = set(fields) | {"id"}
            for name in list(self.fields):
                if name not in keep and not self.fields[name].write_only:
                    self.fields.pop(name)

    @classmethod
    def readable_field_names(cls) -> list[str]:
        return [name for name, field in cls().fields.items() if not field.write_only]

    def validate(self, attrs):
        attrs = super().validate(attrs)
        self._check_source_id(attrs)
        return attrs

    def _check_source_id(self, attrs) -> None:
        model = self.Meta.model
        if not any(f.name == "source_id" for f in model._meta.fields):
            return
        source = attrs.get("source", getattr(self.instance, "source", ""))
        source_id = attrs.get("source_id", getattr(self.instance, "source_id", ""))
        if not source_id:
            return
        organization = tenant_of(self)
        clash = model.objects.filter(organization=organization, source=source, source_id=source_id)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        existing = clash.values_list("pk", flat=True).first()
        if existing is not None:
            raise Conflict(
                f"sourceID {source_id!r} is already used in source {source!r} by id {existing}.",
                {"sourceID": [f"Already used by id {existing}."]},
            )


class SourceFieldsMixin(serializers.Serializer):
    """`source` (max 30) and `sourceID` (max 128) of resources integrators sync."""

    source = serializers.CharField(max_length=30, required=False, allow_blank=True)
    sourceID = serializers.CharField(source="source_id", max_length=128, required=False, allow_blank=True)
