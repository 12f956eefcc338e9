"""`/api/v1/calendars`, `/api/v1/sla_rules` (with `amend`) and the JSON Schemas of rule configs."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from config import dates
from config.api.csv import JSONErrorsMixin, content_disposition
from config.api.exceptions import BadRequest, Unprocessable
from config.api.filters import PredicateFilter, PredicateFilterSet
from config.api.schema import openapi_shape
from config.api.serializers import (
    ReferenceField,
    ReferenceIdField,
    ResourceSerializer,
    in_service_range,
    shaped_json_field,
    single_line,
    unique_in_organization,
)
from config.api.viewsets import CreateMixin, DestroyMixin, ResourceViewSet, UpdateMixin
from contracts.models import Contract
from tenancy.currencies import MONEY_BOUNDS

from . import ical, services
from .clock import HoursError, parse_hours, supported_countries
from .models import Calendar, SlaRule
from .schemas import ESCALATION, PENALTY_CLAUSE, SCHEMAS, WORKING_HOURS, validation_errors

# JSON fields whose shape the OpenAPI document states (the serializers judge them as before).
CalendarHoursField = shaped_json_field({**openapi_shape(WORKING_HOURS), "minItems": 1})  # "At least one ..."
EscalationField = shaped_json_field(openapi_shape(ESCALATION), "Escalation")
PenaltyClauseField = shaped_json_field(openapi_shape(PENALTY_CLAUSE), "PenaltyClause")

# --- calendars ----------------------------------------------------------------------------------


class HolidaySerializer(serializers.Serializer):
    default_error_messages = {"invalid": 'Expected an object such as {{"date": "2026-12-25", "name": "..."}}.'}

    date = serializers.DateField(validators=[in_service_range])
    # One line, as every other name (an imported SUMMARY follows the same rule, `slas.ical`).
    name = serializers.CharField(max_length=120, allow_blank=True, required=False, default="", validators=[single_line])


def valid_time_zone(value: str) -> str:
    """A calendar's zone: an IANA zone a calendar can be in (`dates.is_time_zone`: not the server's
    "localtime" nor tzdata's "Factory" placeholder)."""
    if not dates.is_time_zone(value):
        raise serializers.ValidationError(f"{value!r} is not an IANA time zone.")
    return value


def valid_hours(value) -> list[dict]:
    """A calendar's working hours, checked (`clock.parse_hours`) and normalised: sorted by weekday
    and start, times as "HH:MM"; at least one interval."""
    try:
        hours = parse_hours(value)
    except HoursError as exc:
        raise serializers.ValidationError(exc.detail()) from None
    if not hours:
        # A calendar without working time would make every clock on it never due.
        raise serializers.ValidationError("At least one working interval is needed.")
    return [{"weekday": weekday, "start": start, "end": end} for weekday, start, end in hours]


def _listed_twice(days: list[dt.date]) -> list[str]:
    """The dates listed more than once (counted once each: `list.count` per date was quadratic)."""
    return sorted(day.isoformat() for day, times in Counter(days).items() if times > 1)


class CalendarSerializer(ResourceSerializer):
    hours = CalendarHoursField(
        help_text='[{"weekday": 1-7 (ISO, Monday = 1), "start": "HH:MM", "end": "HH:MM" or "24:00"}, ...]'
    )
    holidays = HolidaySerializer(
        many=True,
        required=False,
        help_text=f"Additions to the public holidays (at most {services.MAX_CALENDAR_DATES}).",
    )
    time_zone = serializers.CharField(max_length=64)
    holiday_country = serializers.CharField(
        max_length=2, required=False, allow_blank=True, help_text="ISO 3166-1 alpha-2: its public holidays, every year."
    )
    holiday_subdivision = serializers.CharField(
        max_length=20,
        required=False,
        allow_blank=True,
        help_text='ISO 3166-2 ("GB-SCT") or the part after the dash ("SCT"); stored as the latter.',
    )
    working_days = serializers.ListField(
        child=serializers.DateField(validators=[in_service_range]),
        required=False,
        max_length=services.MAX_CALENDAR_DATES,
        help_text=f"Dates worked despite a public holiday (at most {services.MAX_CALENDAR_DATES}).",
    )

    class Meta:
        model = Calendar
        fields = [
            "id", "name", "time_zone", "hours", "holidays", "holiday_country", "holiday_subdivision",
            "working_days", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]
        default_fields = ["id", "name", "time_zone", "holiday_country", "created_at", "updated_at"]
        extra_kwargs = {"name": {"help_text": "Unique within the organization."}}

    def validate_name(self, value: str) -> str:
        # Unique per organization (the constraint calendar_unique_name), as a contract's reference.
        return unique_in_organization(self, "name", value, "calendar")

    def validate_time_zone(self, value: str) -> str:
        return valid_time_zone(value)

    def validate_hours(self, value):
        """Stored normalised: sorted by weekday and start, times as "HH:MM"."""
        return valid_hours(value)

    def validate_holidays(self, value):
        most = services.MAX_CALENDAR_DATES
        if len(value) > most:  # as working_days' max_length says it
            raise serializers.ValidationError(f"Ensure this field has no more than {most} elements.")
        duplicates = _listed_twice([h["date"] for h in value])
        if duplicates:
            raise serializers.ValidationError(f"Listed twice: {', '.join(duplicates)}.")
        return [
            {"date": h["date"].isoformat(), "name": h.get("name", "")} for h in sorted(value, key=lambda h: h["date"])
        ]

    def validate_working_days(self, value):
        duplicates = _listed_twice(value)
        if duplicates:
            raise serializers.ValidationError(f"Listed twice: {', '.join(duplicates)}.")
        return [day.isoformat() for day in sorted(value)]

    def validate_holiday_country(self, value: str) -> str:
        value = value.upper()
        if value and value not in supported_countries():
            raise serializers.ValidationError(
                f"{value!r} is not a country the holidays package supports (ISO 3166-1 alpha-2, e.g. GB, NL, US)."
            )
        return value

    def validate(self, attrs):
        attrs = super().validate(attrs)

        def value(name, default):
            return attrs.get(name, getattr(self.instance, name, default))

        country = value("holiday_country", "")
        subdivision = value("holiday_subdivision", "")
        if subdivision:
            if not country:
                raise serializers.ValidationError({"holiday_subdivision": ["Needs a holiday_country."]})
            code = subdivision.upper().removeprefix(f"{country}-")
            known = supported_countries()[country]
            match = next((s for s in known if s.upper() == code), None)
            if match is None:
                raise serializers.ValidationError(
                    {"holiday_subdivision": [f"Not one of {country}'s: {', '.join(known) or 'it has none'}."]}
                )
            if "holiday_subdivision" in attrs or "holiday_country" in attrs:
                attrs["holiday_subdivision"] = match
        clash = {h["date"] for h in value("holidays", [])} & set(value("working_days", []))
        if clash:
            raise serializers.ValidationError(
                {"working_days": [f"Also listed as holidays: {', '.join(sorted(clash))}."]}
            )
        return attrs


class CalendarFilterSet(PredicateFilterSet):
    class Meta:
        model = Calendar
        fields = ["name", "time_zone", "holiday_country", "holiday_subdivision", "created_at", "updated_at"]


ICS_MAX_BYTES = 1_000_000


class ICalendarParser(BaseParser):
    """A `text/calendar` body, as bytes."""

    media_type = "text/calendar"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read(ICS_MAX_BYTES + 1) if stream is not None else b""


class ICalendarRenderer(BaseRenderer):
    """Names the `ical` action's one format (`?format=ics`; `json` and `csv` are not what it
    answers): the action writes its own response, and errors are the JSON envelope."""

    media_type = "text/calendar"
    format = "ics"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class ImportHolidaysSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="An iCalendar (.ics) file.")


def _years(raw: str | None) -> range:
    this_year = timezone.now().year
    if not raw:
        return range(this_year, this_year + 2)
    match = re.fullmatch(r"([0-9]{4})(?:-([0-9]{4}))?", raw)  # ASCII: `\d` takes any script's digits
    first, last = (int(match[1]), int(match[2] or match[1])) if match else (0, -1)
    if not match or not 1900 <= first <= last <= 2399 or last - first > 20:
        raise BadRequest(
            "years must be YEAR or FIRST-LAST (1900-2399, at most 21 years).", {"years": ["Malformed or out of range."]}
        )
    return range(first, last + 1)


class CalendarViewSet(CreateMixin, UpdateMixin, DestroyMixin, ResourceViewSet):
    """Business-hours calendars. Editing one recomputes the due times of the running clocks
    that use it; the response's `X-Recomputed-Clocks` header says how many."""

    queryset = Calendar.objects.all()
    serializer_class = CalendarSerializer
    filterset_class = CalendarFilterSet
    sort_fields = {"name": "name", "time_zone": "time_zone", "created_at": "created_at", "updated_at": "updated_at"}
    default_sort = "name"
    write_role = "manager"
    create_service = staticmethod(services.create_calendar)
    update_service = staticmethod(services.update_calendar)
    delete_service = staticmethod(services.delete_calendar)
    # What the services' `recomputed_clocks` and `imported_holidays` become (`respond`).
    sent_headers = {
        "partial_update": ("X-Recomputed-Clocks",),
        "import_holidays": ("X-Recomputed-Clocks", "X-Imported-Holidays"),
    }

    @extend_schema(
        parameters=[
            OpenApiParameter("years", str, description="YEAR or FIRST-LAST (default: this year and the next).")
        ],
        responses={(200, "text/calendar"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"], detail_query_params=("years",), renderer_classes=[ICalendarRenderer])
    def ical(self, request, pk=None):
        """The calendar as iCalendar (RFC 5545): weekly working hours as weekly recurring events and
        every holiday of the years asked for (public ones, additions, minus working days) as all-day events."""
        calendar = self.get_object()
        years = _years(request.query_params.get("years"))
        names = {dt.date.fromisoformat(h["date"]): h.get("name", "") for h in calendar.holidays}
        body = ical.export_calendar(
            name=calendar.name, uid_base=f"calendar-{calendar.pk}", spec=calendar.spec, names=names, years=years
        )
        response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
        response["Content-Disposition"] = content_disposition(f"calendar-{calendar.pk}.ics")
        return response

    @extend_schema(
        request={"text/calendar": OpenApiTypes.BINARY, "multipart/form-data": ImportHolidaysSerializer},
        responses={200: CalendarSerializer},
    )
    @action(detail=True, methods=["post"], parser_classes=[ICalendarParser, MultiPartParser])
    def import_holidays(self, request, pk=None):
        """Add the all-day events of an `.ics` file (the body as text/calendar, or the form field `file`)
        to the calendar's own holidays; dates already listed keep their name. DTEND or DURATION, RRULE,
        RDATE, EXDATE, RECURRENCE-ID overrides and STATUS are read as RFC 5545 says (a cancelled or
        tentative event is no holiday; BYHOUR, BYMINUTE, BYSECOND in an all-day RRULE are refused). A
        malformed file, or one with what would change an event's days but is not read (EXRULE,
        RECURRENCE-ID;RANGE, ...), is a 422 naming it. Recomputes the running clocks like any edit
        (`X-Recomputed-Clocks`)."""
        calendar = self.get_object()
        if isinstance(request.data, bytes) or request.content_type.startswith(ICalendarParser.media_type):
            data = request.data if isinstance(request.data, bytes) else b""
        else:
            upload = request.data.get("file")
            if upload is None or isinstance(upload, str):
                raise Unprocessable("Send the .ics file as the body (text/calendar) or as the form field file.",
                                    {"file": ["Required."]})  # fmt: skip
            data = upload.read(ICS_MAX_BYTES + 1)
        if len(data) > ICS_MAX_BYTES:
            raise Unprocessable("The file is too large.", {"file": [f"At most {ICS_MAX_BYTES} bytes."]})
        try:
            imported = ical.parse_holidays(data, time_zone=calendar.spec.time_zone)  # 409 if unknown
        except ical.IcsError as exc:
            raise Unprocessable(f"Cannot import the file: {exc.message}", {exc.field: [exc.message]}) from None
        updated = services.import_holidays(calendar=calendar, actor=request.user, holidays=imported)
        response = self.respond(updated)  # X-Recomputed-Clocks from the service, like every calendar edit
        response["X-Imported-Holidays"] = str(updated.imported_holidays)
        return response


# --- rules --------------------------------------------------------------------------------------


class SlaRuleSerializer(ResourceSerializer):
    contract = ReferenceField()
    contract_id = ReferenceIdField(source="contract", queryset=Contract.objects.all())
    calendar = ReferenceField()
    calendar_id = ReferenceIdField(source="calendar", queryset=Calendar.objects.all(), required=False, allow_null=True)
    previous_version = ReferenceField()
    next_version = ReferenceField()
    priorities = serializers.ListField(
        child=serializers.ChoiceField(choices=SlaRule.Priority.choices), allow_empty=False, max_length=5
    )
    pause_on_hold = serializers.BooleanField(required=False, help_text="Default: true for resolution, else false.")
    escalation = EscalationField(required=False, help_text="See /api/v1/schemas/escalation.")
    penalty = PenaltyClauseField(required=False, allow_null=True, help_text="See /api/v1/schemas/penalty_clause.")
    effective_from = serializers.DateTimeField(
        required=False, help_text="Default: the start of the contract's start date while a draft, else now."
    )

    class Meta:
        model = SlaRule
        fields = [
            "id", "contract", "contract_id", "name", "metric", "priorities", "target_minutes", "calendar",
            "calendar_id", "pause_on_hold", "escalation", "penalty", "monthly_penalty_cap", "active",
            "effective_from", "effective_to", "previous_version", "next_version", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]
        cap_fields = {"monthly_penalty_cap": "contract.currency"}  # as enforced: rounded down
        default_fields = [
            "id", "contract", "name", "metric", "priorities", "target_minutes", "calendar", "active",
            "effective_from", "effective_to", "created_at", "updated_at",
        ]  # fmt: skip
        extra_kwargs = {
            "target_minutes": {"min_value": 1, "max_value": 525600},
            "monthly_penalty_cap": MONEY_BOUNDS,
        }

    def validate_priorities(self, value):
        if len(set(value)) != len(value):
            raise serializers.ValidationError("A priority is listed twice.")
        return value

    def validate(self, attrs):
        attrs = super().validate(attrs)
        errors = {}
        if attrs.get("escalation") is not None:
            errors |= validation_errors("escalation", attrs["escalation"], "escalation")
        if attrs.get("penalty") is not None:
            errors |= validation_errors("penalty_clause", attrs["penalty"], "penalty")
        start, end = self.period(attrs)
        if start and end and end <= start:
            errors["effective_to"] = ["Must be after effective_from."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def period(self, attrs) -> tuple:
        """The effective period the input leaves the rule with (a defaulted start is checked by the service)."""
        start = attrs.get("effective_from", getattr(self.instance, "effective_from", None))
        end = attrs.get("effective_to", getattr(self.instance, "effective_to", None))
        return start, end


class AmendSerializer(SlaRuleSerializer):
    """The changed fields of an amendment; the rule's contract cannot change."""

    contract_id = None

    class Meta(SlaRuleSerializer.Meta):
        fields = [name for name in SlaRuleSerializer.Meta.fields if name != "contract_id"]

    def period(self, attrs) -> tuple:
        # The successor's period: the rule's own bounds are the service's to check (an amended
        # rule is a 409, an effective_from outside the rule's period a 422 naming effective_from).
        return attrs.get("effective_from"), attrs.get("effective_to")


class SlaRuleFilterSet(PredicateFilterSet):
    contract_id = PredicateFilter(field_name="contract")
    calendar_id = PredicateFilter(field_name="calendar")

    class Meta:
        model = SlaRule
        fields = ["name", "metric", "target_minutes", "active", "effective_from", "effective_to", "created_at"]


class SlaRuleViewSet(CreateMixin, UpdateMixin, ResourceViewSet):
    """SLA rules of contracts. Past draft, terms change only through `amend` (history is kept).

    A rule covers the jobs reported from its `effective_from` on. Created with an
    `effective_from` in the past, it attaches clocks to the open jobs in its band reported since
    then (a retroactive start); the response's `X-Recomputed-Clocks` header says how many.
    Without one it covers work reported from now on (from the contract's start while a draft)."""

    queryset = SlaRule.objects.select_related("contract", "calendar", "previous_version", "next_version")
    serializer_class = SlaRuleSerializer
    filterset_class = SlaRuleFilterSet
    sort_fields = {
        "name": "name",
        "metric": "metric",
        "target_minutes": "target_minutes",
        "effective_from": "effective_from",
        "created_at": "created_at",
    }
    default_sort = "name"
    write_role = "manager"
    # `{id, name}` references (+ the contract's currency for the cap); a rule's str() reads metric and target.
    list_references = {"contract": ("currency",), "calendar": (), "previous_version": (), "next_version": ()}
    create_service = staticmethod(services.create_rule)
    update_service = staticmethod(services.update_rule)
    sent_headers = {"create": ("X-Recomputed-Clocks",)}  # create_rule's `recomputed_clocks` (`respond`)

    @extend_schema(request=AmendSerializer(partial=True), responses={201: SlaRuleSerializer})
    @action(detail=True, methods=["post"])
    def amend(self, request, pk=None):
        """End this rule at `effective_from` (default now) and create its successor (201)."""
        rule = self.get_object()
        form = AmendSerializer(rule, data=request.data, partial=True, context=self.get_serializer_context())
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        effective_from = data.pop("effective_from", None)
        successor = services.amend_rule(rule=rule, actor=request.user, data=data, effective_from=effective_from)
        return self.respond(successor, status.HTTP_201_CREATED, {"Location": self.detail_url(successor)})


# --- schemas ------------------------------------------------------------------------------------


class SchemaView(JSONErrorsMixin, APIView):
    """The JSON Schema of a rule configuration (`escalation`, `penalty_clause`)."""

    authentication_classes: list = []
    taken_query_params = ()
    permission_classes = [AllowAny]

    @extend_schema(
        # The names, not the route's regex: `^escalation|penalty_clause$` matched `escalationfoo` (a 404).
        parameters=[OpenApiParameter("name", {"type": "string", "enum": list(SCHEMAS)}, OpenApiParameter.PATH)],
        responses={200: dict},
        auth=[],
    )
    def get(self, request, name: str):
        return Response(SCHEMAS[name])
