"""Reports and evidence under `/api/v1/` (issue 11): thin views over `reports`' selectors.

- `GET reports/sla_compliance`: compliance per group (JSON or CSV);
- `GET reports/at_risk`: clocks due within a window (a collection: pagination, fields, sort,
  filters, CSV);
- `GET contracts/{id}/statement?month=YYYY-MM`: the monthly service-credit statement (JSON,
  CSV of its breach lines and posted penalties, PDF);
- `GET breaches/{id}/evidence`: the evidence pack (JSON, HTML with an SVG timeline, PDF);
- `POST backtests`: a what-if replay of proposed terms (read-only).
"""

from __future__ import annotations

import datetime as dt
import json
import re

from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from config import dates
from config.api.csv import (
    CSVRenderer,
    JSONErrorsMixin,
    columns_of,
    content_disposition,
    per_currency,
    stream_csv,
    wants_csv,
)
from config.api.exceptions import BadRequest, Unprocessable
from config.api.filters import MAX_DB_ID, PredicateFilter, PredicateFilterSet, invalid_choice, refuse_unknown
from config.api.pagination import whole_number
from config.api.schema import DATE_PARAMETER, time_zone_parameter, whole_number_parameter
from config.api.serializers import (
    ReferenceField,
    ReferenceIdField,
    ResourceSerializer,
    StrictInputMixin,
    in_service_range,
)
from config.api.viewsets import ResourceViewSet
from contracts.models import Contract
from slas import clock
from slas.api import CalendarHoursField, PenaltyClauseField, valid_hours
from slas.models import Calendar, SlaRule
from slas.schemas import validation_errors
from tenancy.models import validate_time_zone
from workorders.api import RemainingMinutesField
from workorders.models import SlaClock

from . import at_risk, backtest, charts, compliance, evidence, pdf, responses, statement

# --- renderers ----------------------------------------------------------------------------------


class PDFRenderer(BaseRenderer):
    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class HTMLPageRenderer(BaseRenderer):
    media_type = "text/html"
    format = "html"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data.encode() if isinstance(data, str) else data


def accepted_format(request) -> str:
    return getattr(getattr(request, "accepted_renderer", None), "format", "json")


# --- query parameters ---------------------------------------------------------------------------


class ReportView(JSONErrorsMixin, APIView):
    """A report: viewer and up; JSON or CSV; unknown parameters are a 400."""

    read_role = "viewer"
    renderer_classes = [JSONRenderer, CSVRenderer]
    params: tuple[str, ...] = ()

    def check_params(self) -> None:
        refuse_unknown(self.request.query_params, {*self.params, "format"})

    def param(self, name: str) -> str | None:
        value = self.request.query_params.get(name)
        return value if value not in (None, "") else None

    def date_param(self, name: str, default: dt.date | None = None) -> dt.date:
        raw = self.param(name)
        if raw is None:
            if default is None:
                raise BadRequest(f"{name} is required (a date YYYY-MM-DD).", {name: ["This parameter is required."]})
            return default
        # `dates.parse_day`, not `date.fromisoformat`, which also reads 20260301 and 2026-W09-7.
        day = dates.parse_day(raw)
        if day is None:
            raise BadRequest(f"{name} must be a date YYYY-MM-DD.", {name: [f"'{raw}' is not a date YYYY-MM-DD."]})
        return dates.check(day, name)

    def list_param(self, name: str, choices=None, integers: bool = False) -> list:
        raw = self.param(name)
        if raw is None:
            return []
        values = [value.strip() for value in raw.split(",")]
        for value in values:
            if integers and not whole_number(value, MAX_DB_ID):  # a length check before int(): no 500
                raise BadRequest(f"Invalid filter: {name}", {name: [f"'{value}' is not an id."]})
            if choices is not None and value not in choices:
                raise BadRequest(f"Invalid filter: {name}", {name: [invalid_choice(value, choices)]})
        return [int(value) for value in values] if integers else values

    def filter_param(self, name: str, choices=None, integers: bool = False) -> list | None:
        """A report's list filter: None when not given. Given empty (`?contract_id=`), it selects
        nothing, as an empty value ("is empty") does on a collection's filter of a field every row
        has; it read as "not given", so an empty selection reported the whole organization."""
        if self.request.query_params.get(name) == "":
            return []
        return self.list_param(name, choices, integers) if name in self.request.query_params else None

    def aliased(self, name: str, alias: str) -> str:
        """The parameter the request gives of `name` and its older `alias` (a 400 if both)."""
        if name in self.request.query_params and alias in self.request.query_params:
            raise BadRequest(
                f"{alias} is another name of {name}: give one of them.",
                {alias: [f"Give {name} or {alias}, not both ({alias} is {name}'s older name)."]},
            )
        return alias if alias in self.request.query_params else name

    def time_zone_param(self) -> str:
        raw = self.param("time_zone") or self.request.auth.organization.default_time_zone
        if not dates.is_time_zone(raw):
            raise BadRequest(
                "time_zone must be an IANA time zone.", {"time_zone": [f"'{raw}' is not an IANA time zone."]}
            )
        return raw


# --- SLA compliance -----------------------------------------------------------------------------

_PRIORITIES = [choice for choice, _ in SlaRule.Priority.choices]
_METRICS = [choice for choice, _ in SlaRule.Metric.choices]


# The compliance report's first names of its reference filters, kept as aliases of the names every
# collection and the at-risk report use (docs/decisions.md, sixth round).
COMPLIANCE_ALIASES = {"contract_id": "contract", "counterparty_id": "counterparty"}


class ComplianceView(ReportView):
    params = (
        "from", "to", "group_by", "contract_id", "counterparty_id", "metric", "priority", "time_zone",
        *COMPLIANCE_ALIASES.values(),
    )  # fmt: skip

    @extend_schema(
        operation_id="reports_sla_compliance",
        parameters=[
            OpenApiParameter("from", DATE_PARAMETER, required=True, description="First local date (YYYY-MM-DD)."),
            OpenApiParameter(
                "to", DATE_PARAMETER, required=True, description="Last local date, inclusive (YYYY-MM-DD)."
            ),
            OpenApiParameter("group_by", str, description=f"Comma-separated: {', '.join(compliance.GROUPS)}."),
            OpenApiParameter("contract_id", str, description="Contract ids, comma-separated; empty: none."),
            OpenApiParameter("counterparty_id", str, description="Counterparty ids, comma-separated; empty: none."),
            *(
                OpenApiParameter(alias, str, deprecated=True, description=f"The older name of `{name}`; not with it.")
                for name, alias in COMPLIANCE_ALIASES.items()
            ),
            OpenApiParameter("metric", str, description=f"Comma-separated: {', '.join(_METRICS)}; empty: none."),
            OpenApiParameter("priority", str, description=f"Comma-separated: {', '.join(_PRIORITIES)}; empty: none."),
            OpenApiParameter(
                "time_zone",
                time_zone_parameter(),
                description="IANA zone of the dates, months and weeks (default: the organization's).",
            ),
        ],
        responses={200: responses.ComplianceRowSerializer(many=True)},
    )
    def get(self, request):
        """SLA compliance per group: decided, met, breached, minutes to stop, overage, penalties."""
        self.check_params()
        group_by = tuple(self.list_param("group_by", compliance.GROUPS))
        if len(set(group_by)) != len(group_by):
            raise BadRequest("group_by lists a key twice.", {"group_by": ["A key is listed twice."]})
        if {"month", "week"} <= set(group_by):
            raise BadRequest("group_by takes month or week, not both.", {"group_by": ["Month or week, not both."]})
        query = compliance.ComplianceQuery(
            date_from=self.date_param("from"),
            date_to=self.date_param("to"),
            time_zone=self.time_zone_param(),
            group_by=group_by,
            filters={
                name: values
                for name, values in (
                    ("contract", self.filter_param(self.aliased("contract_id", "contract"), integers=True)),
                    ("counterparty", self.filter_param(self.aliased("counterparty_id", "counterparty"), integers=True)),
                    ("metric", self.filter_param("metric", _METRICS)),
                    ("priority", self.filter_param("priority", _PRIORITIES)),
                )
                if values is not None
            },
        )
        if query.date_to < query.date_from:
            raise BadRequest("to must not be before from.", {"to": ["Must not be before from."]})
        if (query.date_to - query.date_from).days > 3660:
            raise BadRequest("The period is at most ten years.", {"to": ["At most ten years after from."]})
        rows = compliance.compliance_report(organization=request.auth.organization, query=query, now=timezone.now())
        if wants_csv(request):
            references = [key for key in group_by if key in ("contract", "counterparty", "sla_rule")]
            columns = columns_of([*group_by, *COMPLIANCE_FIGURES], references)
            return stream_csv(request, columns, (_flat_minutes(row) for row in rows), "sla_compliance")
        return Response(rows)


COMPLIANCE_FIGURES = [
    "decided", "met", "breached", "achieved_percent", "minutes_mean", "minutes_p50", "minutes_p90", "minutes_max",
    "overage_minutes", "penalties", "waived", "open_at_end",
]  # fmt: skip


def _flat_minutes(row: dict) -> dict:
    """A compliance row for a spreadsheet: minutes and penalties as their own columns."""
    flat = {key: value for key, value in row.items() if key not in ("minutes", "penalties")}
    flat.update({f"minutes_{key}": value for key, value in row["minutes"].items()})
    flat["penalties"] = per_currency(row["penalties"])
    return flat


# --- clocks at risk -----------------------------------------------------------------------------


_FIGURES = ("remaining_minutes", "percent_used", "next_escalation")


class FigureMixin:
    """One of a listed clock's figures (`at_risk.figures`): for a page written from rows, computed
    once for the page's rows (`AtRiskSerializer.prepare_rows`, from the columns these fields read);
    for a clock read as an instance (read alone, CSV), from the clock with its rule, calendar, job
    and holds (`at_risk.risk_figures`)."""

    row_columns = ("id", *at_risk.FIGURE_COLUMNS)

    def get_attribute(self, clock_row):
        return self.parent.figures_of(clock_row)[self.field_name]

    def from_row(self, row):
        return self.parent.page_figures[row["id"]][self.field_name]


class RemainingMinutesFigure(FigureMixin, RemainingMinutesField):
    pass


class PercentUsedFigure(FigureMixin, serializers.FloatField):
    pass


class NextEscalationFigure(FigureMixin, serializers.DictField):
    pass


class AtRiskSerializer(ResourceSerializer):
    # A page is written from `values()` rows (config.api.rows): the references and columns from
    # the clock's joins, the figures once per page from its rules, calendars and holds.
    work_order = ReferenceField()
    contract = ReferenceField(source="rule.contract")
    sla_rule = ReferenceField(source="rule")
    priority = serializers.CharField(source="work_order.priority")
    remaining_minutes = RemainingMinutesFigure()
    percent_used = PercentUsedFigure(read_only=True)
    next_escalation = NextEscalationFigure(read_only=True, allow_null=True)

    class Meta:
        model = SlaClock
        fields = [
            "id", "work_order", "contract", "sla_rule", "metric", "priority", "target_minutes", "started_at",
            "due_at", "remaining_minutes", "percent_used", "next_escalation",
        ]  # fmt: skip
        read_only_fields = fields
        default_fields = fields
        csv_parts = {"next_escalation": ("name", "at_percent", "at")}  # next_escalation_name, ... in CSV

    def now(self):
        """One instant for the whole response."""
        return self.context.setdefault("now", timezone.now())

    def prepare_rows(self, rows) -> None:
        """The page's figures, by clock id (none when `?fields=` shows none)."""
        shown = not self.fields.keys().isdisjoint(_FIGURES)
        self.page_figures = at_risk.page_figures(rows, self.now()) if shown else {}

    def figures_of(self, clock_row) -> dict:
        """The figures of a clock instance (read with `at_risk.at_risk_clocks`' joins and holds),
        computed once for its three fields."""
        computed = self.context.setdefault("at_risk_instance_figures", {})
        if clock_row.pk not in computed:
            computed[clock_row.pk] = at_risk.risk_figures(clock_row, self.now())
        return computed[clock_row.pk]


class AtRiskFilterSet(PredicateFilterSet):
    contract_id = PredicateFilter(field_name="rule__contract")
    counterparty_id = PredicateFilter(field_name="rule__contract__counterparty")
    sla_rule_id = PredicateFilter(field_name="rule")
    work_order_id = PredicateFilter(field_name="work_order")
    priority = PredicateFilter(field_name="work_order__priority")

    class Meta:
        model = SlaClock
        fields = ["metric"]


AT_RISK_MAX_MINUTES = 525600  # a year: `?within_minutes=` takes 0 to it
WITHIN_MINUTES = OpenApiParameter(
    "within_minutes",
    whole_number_parameter(0, AT_RISK_MAX_MINUTES),
    description=f"The window from now, in minutes (default 120, 0 to {AT_RISK_MAX_MINUTES}).",
)


# A clock is at risk within a window: its single GET looks in the same one.
@extend_schema_view(
    list=extend_schema(parameters=[WITHIN_MINUTES]), retrieve=extend_schema(parameters=[WITHIN_MINUTES])
)
class AtRiskViewSet(ResourceViewSet):
    """Clocks still running whose due time falls within `within_minutes` (default 120) from now,
    those already past due first (sorted by due time)."""

    queryset = SlaClock.objects.all()
    serializer_class = AtRiskSerializer
    filterset_class = AtRiskFilterSet
    sort_fields = {"due_at": "due_at", "started_at": "started_at", "target_minutes": "target_minutes"}
    default_sort = "due_at"
    extra_query_params = ("within_minutes",)
    detail_query_params = ("within_minutes",)

    def within_minutes(self) -> int:
        # Blank is a 400 naming it, as `within_days=` is (it was the default).
        minutes = whole_number(self.request.query_params.get("within_minutes", "120"), AT_RISK_MAX_MINUTES)
        if minutes is None:
            raise BadRequest(
                f"within_minutes must be a whole number from 0 to {AT_RISK_MAX_MINUTES}.",
                {"within_minutes": ["Out of range."]},
            )
        return minutes

    def get_queryset(self):
        self.now = getattr(self, "now", None) or timezone.now()
        window = self.within_minutes()
        # With the joins and holds a clock read as an instance shows (read alone, CSV); a page read
        # as `values()` rows joins what its columns read, and leaves the prefetch out.
        return at_risk.at_risk_clocks(organization=self.organization, now=self.now, within_minutes=window)

    def csv_queryset(self, queryset, serializer):
        # The jobs' holds are what the figures read: kept whatever `?fields=` shows.
        return queryset

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": getattr(self, "now", None) or timezone.now()}


# --- monthly statement --------------------------------------------------------------------------

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class StatementView(ReportView):
    params = ("month",)
    renderer_classes = [JSONRenderer, CSVRenderer, PDFRenderer]

    @extend_schema(
        operation_id="contracts_statement",
        parameters=[
            OpenApiParameter(
                "month",
                str,
                required=True,
                pattern=r"^2[0-9]{3}-(0[1-9]|1[0-2])$",  # in the service's range (config.dates)
                description="YYYY-MM, in the contract's time zone.",
            )
        ],
        responses={
            (200, "application/json"): responses.StatementSerializer,
            (200, "text/csv"): {"type": "string"},
            (200, "application/pdf"): {"type": "string", "format": "binary"},
        },
    )
    def get(self, request, contract_pk):
        """The contract's service-credit statement for a month: breaches, penalties, hours."""
        self.check_params()
        contract = get_object_or_404(
            Contract.objects.for_organization(request.auth.organization).select_related("counterparty"), pk=contract_pk
        )
        month = self.param("month")
        try:
            first = dt.date.fromisoformat(f"{month}-01") if month and _MONTH.match(month) else None
        except ValueError:  # year 0
            first = None
        if first is None:
            raise BadRequest("month must be YYYY-MM.", {"month": ["A month YYYY-MM is required."]})
        dates.check(first, "month")
        data = statement.monthly_statement(contract=contract, month=month)
        filename = f"statement-{contract.reference}-{month}"
        if accepted_format(request) == "pdf":
            response = Response(pdf.statement_pdf(_jsonable(data)))
            response["Content-Disposition"] = content_disposition(f"{filename}.pdf", inline=True)
            return response
        if wants_csv(request):
            columns = columns_of(statement.CSV_FIELDS, ["work_order", "sla_rule", "waived_by", "posted_by"])
            rows = [
                *map(_statement_row, data["breaches"]),
                *map(_posted_row, data["posted_penalties"]),
                *map(_correction_row, data["waiver_corrections"]),
            ]
            return stream_csv(request, columns, rows, filename)
        return Response(data)


# Every CSV row has every key (the CSV writer locates the columns in the first row).
_BLANK_ROW = dict.fromkeys(statement.CSV_FIELDS)


def _statement_row(line: dict) -> dict:
    row = {**_BLANK_ROW, **{key: value for key, value in line.items() if key != "rule_version"}}
    row["rule_effective_from"] = line["rule_version"]["effective_from"]
    row["kind"] = "breach"
    row["breach_id"] = line["id"]
    return row


def _posted_row(line: dict) -> dict:
    return {
        **_BLANK_ROW,
        **{key: line[key] for key in ("id", "currency", "description", "posted_by", "occurred_at")},
        "penalty": line["amount"],
        "kind": "posted_penalty",
        # `id` is the entry's; the breach a manager posted it for, as the JSON and the PDF name it.
        "breach_id": None if line["breach"] is None else line["breach"]["id"],
    }


def _correction_row(line: dict) -> dict:
    return {
        **_BLANK_ROW,
        **{key: line[key] for key in ("id", "work_order", "currency", "waived_by", "waived_at", "waiver_reason")},
        "penalty": line["amount"],
        "state": "waived",
        "kind": "waiver_correction",
        "breach_id": line["id"],
        "description": f"Waiver of the penalty of {line['month']}",
        "occurred_at": line["waived_at"],
    }


def _jsonable(data):
    """Instants as ISO 8601 text, as the JSON answer has them (for the PDF)."""
    if isinstance(data, dict):
        return {key: _jsonable(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_jsonable(value) for value in data]
    if isinstance(data, dt.datetime):
        return evidence.iso(data)
    return data


# --- breach evidence ----------------------------------------------------------------------------


class EvidenceView(ReportView):
    renderer_classes = [JSONRenderer, HTMLPageRenderer, PDFRenderer]

    @extend_schema(
        operation_id="breaches_evidence",
        responses={
            (200, "application/json"): responses.EvidenceSerializer,
            (200, "text/html"): {"type": "string"},
            (200, "application/pdf"): {"type": "string", "format": "binary"},
        },
    )
    def get(self, request, breach_pk):
        """The breach's whole derivation, recomputed with the pure clock, with its SHA-256."""
        self.check_params()
        breach = get_object_or_404(
            evidence.evidence_queryset().filter(organization=request.auth.organization), pk=breach_pk
        )
        pack = evidence.breach_evidence(breach)
        kind = accepted_format(request)
        if kind == "pdf":
            response = Response(pdf.evidence_pdf(pack))
            response["Content-Disposition"] = content_disposition(f"breach-{breach.pk}-evidence.pdf", inline=True)
            return response
        if kind == "html":
            return Response(
                render_to_string(
                    "reports/evidence.html",
                    {
                        "pack": pack,
                        "timeline": charts.timeline_svg(pack),
                        "penalty_clause": json.dumps(pack["rule"]["penalty"]) if pack["rule"]["penalty"] else None,
                    },
                )
            )
        return Response(pack)


# --- backtests ----------------------------------------------------------------------------------


class InlineCalendarSerializer(StrictInputMixin, serializers.Serializer):
    """A proposed calendar, judged as a stored one is (`slas.api`): a zone a calendar may be in (not
    "localtime", the server's, nor "Factory"), some working time, holidays in the service's range."""

    # The model's validator, not a `validate_time_zone` method: the document then states the zones.
    time_zone = serializers.CharField(max_length=64, validators=[validate_time_zone])
    hours = CalendarHoursField()
    holidays = serializers.ListField(
        child=serializers.DateField(validators=[in_service_range]), required=False, default=list
    )

    def validate_hours(self, value):
        return valid_hours(value)

    def validate(self, attrs):
        hours = tuple((h["weekday"], h["start"], h["end"]) for h in attrs["hours"])
        try:
            return clock.CalendarSpec(time_zone=attrs["time_zone"], hours=hours, holidays=frozenset(attrs["holidays"]))
        except ValueError as exc:
            raise serializers.ValidationError({"time_zone": [str(exc)]}) from None


class ProposedSerializer(StrictInputMixin, serializers.Serializer):
    target_minutes = serializers.IntegerField(min_value=1, max_value=525600, required=False)
    calendar_id = ReferenceIdField(queryset=Calendar.objects.all(), required=False, allow_null=True)
    calendar = InlineCalendarSerializer(required=False)
    pause_on_hold = serializers.BooleanField(required=False)
    priorities = serializers.ListField(
        child=serializers.ChoiceField(choices=SlaRule.Priority.choices), allow_empty=False, max_length=5, required=False
    )
    penalty = PenaltyClauseField(required=False, allow_null=True)
    monthly_penalty_cap = serializers.DecimalField(
        max_digits=18, decimal_places=4, min_value=0, required=False, allow_null=True
    )

    def validate(self, attrs):
        if "calendar_id" in attrs and "calendar" in attrs:
            raise serializers.ValidationError({"calendar": ["Give calendar_id or an inline calendar, not both."]})
        if attrs.get("penalty") is not None:
            errors = validation_errors("penalty_clause", attrs["penalty"], "penalty")
            if errors:
                raise serializers.ValidationError(errors)
        if "calendar_id" in attrs:
            chosen = attrs.pop("calendar_id")
            attrs["calendar"] = chosen.spec if chosen is not None else None
        if not attrs:
            raise serializers.ValidationError({"base": ["Propose at least one term."]})
        return attrs


class InstantField(serializers.DateTimeField):
    """An ISO 8601 instant that must carry its offset (`Z` or `+01:00`): a naive one is ambiguous."""

    def to_internal_value(self, value):
        try:
            parsed = parse_datetime(value) if isinstance(value, str) else None
        except ValueError:  # well formed but impossible (12:99, 2026-02-30): a 422, never a 500
            self.fail("invalid", format="an ISO 8601 instant with an offset (Z or +01:00)")
        if isinstance(value, str) and parsed is not None and parsed.tzinfo is None:
            self.fail("invalid", format="an ISO 8601 instant with an offset (Z or +01:00)")
        return super().to_internal_value(value)


class BacktestSerializer(StrictInputMixin, serializers.Serializer):
    sla_rule_id = ReferenceIdField(queryset=SlaRule.objects.select_related("contract", "calendar"), required=False)
    contract_id = ReferenceIdField(queryset=Contract.objects.all(), required=False)
    # `from` is a Python keyword: the field is declared below under its JSON name.
    to = InstantField()
    proposed = ProposedSerializer()

    def get_fields(self):
        fields = super().get_fields()
        # Held to the service's range as `to` is (added after StrictInputMixin bounded the others).
        fields["from"] = InstantField(validators=[in_service_range])
        return fields

    def validate(self, attrs):
        if ("sla_rule_id" in attrs) == ("contract_id" in attrs):
            raise serializers.ValidationError({"sla_rule_id": ["Give sla_rule_id or contract_id (exactly one)."]})
        if attrs["to"] <= attrs["from"]:
            raise serializers.ValidationError({"to": ["Must be after from."]})
        if attrs["to"] - attrs["from"] > dt.timedelta(days=3660):
            raise serializers.ValidationError({"to": ["The window is at most ten years."]})
        return attrs


class BacktestView(JSONErrorsMixin, APIView):
    read_role = "manager"
    write_role = "manager"
    renderer_classes = [JSONRenderer]
    taken_query_params = ()

    @extend_schema(
        operation_id="backtests_create",
        request=BacktestSerializer,
        responses={200: responses.BacktestResultSerializer},
    )
    def post(self, request):
        """Replay a window's jobs under the current and the proposed terms (nothing is stored)."""
        form = BacktestSerializer(data=request.data, context={"request": request})
        form.is_valid(raise_exception=True)
        data = form.validated_data
        if "sla_rule_id" in data:
            rules = [data["sla_rule_id"]]
        else:
            rules = list(
                SlaRule.objects.select_related("contract", "calendar")
                .filter(contract=data["contract_id"], active=True, effective_from__lt=data["to"])
                .exclude(effective_to__lte=data["from"])
                .order_by("pk")
            )
            if not rules:
                raise Unprocessable(
                    "The contract has no rules in force in the window.",
                    {"contract_id": ["No rules in force in the window."]},
                )
        result = backtest.run_backtest(
            rules=rules,
            window_from=data["from"],
            window_to=data["to"],
            proposed=data["proposed"],
            now=timezone.now(),
        )
        return Response(result)
