"""The JSON shapes of the reports' answers, for the OpenAPI document only (nothing is serialized
through them): the selectors build plain dicts (`compliance`, `statement`, `evidence`,
`backtest`), and these say what those dicts hold, nested objects and nulls included.
tests/reports/test_response_schemas.py compares them with real answers."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from breaches.models import Breach
from slas.api import PenaltyClauseField
from slas.models import SlaRule
from workorders.models import SlaClock, WorkOrder

from . import backtest


def _ref(**kwargs) -> serializers.Serializer:
    return ReportReferenceSerializer(**kwargs)


def _text(**kwargs) -> serializers.CharField:
    return serializers.CharField(**kwargs)


def _amount(**kwargs) -> serializers.CharField:
    # An amount in its currency's minor units, as text ("1200.00"), as resources write money.
    return serializers.CharField(**{"help_text": "A decimal string.", **kwargs})


def _instant(**kwargs) -> serializers.DateTimeField:
    return serializers.DateTimeField(**kwargs)


def _per_currency(child, help_text: str = "") -> serializers.DictField:
    return serializers.DictField(child=child, help_text=f"By ISO 4217 currency code. {help_text}".strip())


class ReportReferenceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


# --- SLA compliance -----------------------------------------------------------------------------


class ComplianceMinutesSerializer(serializers.Serializer):
    mean = serializers.FloatField(allow_null=True)
    p50 = serializers.FloatField(allow_null=True)
    p90 = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)


class ComplianceRowSerializer(serializers.Serializer):
    # The group keys are present only when `group_by` names them.
    contract = _ref(required=False)
    counterparty = _ref(required=False)
    sla_rule = _ref(required=False)
    metric = serializers.ChoiceField(choices=SlaRule.Metric.choices, required=False)
    priority = serializers.ChoiceField(choices=SlaRule.Priority.choices, required=False)
    month = _text(required=False, help_text="YYYY-MM")
    week = _text(required=False, help_text="YYYY-Www (ISO week)")
    decided = serializers.IntegerField()
    met = serializers.IntegerField()
    breached = serializers.IntegerField()
    achieved_percent = serializers.FloatField(allow_null=True)
    minutes = ComplianceMinutesSerializer(help_text="Minutes from start to stop of the decided clocks.")
    overage_minutes = serializers.IntegerField()
    penalties = _per_currency(
        _amount(),
        help_text="The penalties of the breaches settled in the period (a waiver by its end leaves one out), less "
        "those waived in it that an earlier period counted: may be negative.",
    )
    waived = serializers.IntegerField(help_text="The waivers made in the period.")
    open_at_end = serializers.IntegerField()


# --- monthly statement --------------------------------------------------------------------------


class StatementContractSerializer(ReportReferenceSerializer):
    reference = serializers.CharField()


class StatementRuleVersionSerializer(serializers.Serializer):
    effective_from = _instant()
    effective_to = _instant(allow_null=True)
    previous_version = serializers.IntegerField(allow_null=True)


class StatementBreachSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    work_order = _ref()
    sla_rule = _ref()
    rule_version = StatementRuleVersionSerializer()
    metric = serializers.ChoiceField(choices=SlaRule.Metric.choices)
    detected_at = _instant()
    due_at = _instant()
    target_minutes = serializers.IntegerField()
    actual_minutes = serializers.IntegerField()
    overage_minutes = serializers.IntegerField()
    penalty_before_caps = _amount()
    penalty_after_breach_cap = _amount()
    penalty_after_monthly_cap = _amount()
    penalty = _amount(
        help_text="What is owed: zero for a breach waived by the month's end (one waived later keeps its penalty "
        "here and is a correction of the month of the waiver)."
    )
    currency = _text()
    final = serializers.BooleanField()
    state = serializers.ChoiceField(choices=Breach.State.choices)
    waived_by = _ref(allow_null=True)
    waived_at = _instant(allow_null=True)
    waiver_reason = _text(allow_blank=True)


class StatementPostedPenaltySerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The ledger entry's id.")
    breach = _ref(
        allow_null=True, help_text="The breach it was posted for, if any: owed on top of the breach's penalty."
    )
    description = _text(allow_blank=True)
    amount = _amount()
    currency = _text()
    occurred_at = _instant(help_text="The instant it is dated at (it counts in that month and billing period).")
    posted_by = _ref(allow_null=True)
    posted_at = _instant()


class StatementWaiverCorrectionSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The breach's id.")
    work_order = _ref()
    month = _text(help_text="YYYY-MM: the month whose statement lists the breach with its penalty.")
    amount = _amount(help_text="The penalty taken off this month: negative.")
    currency = _text()
    waived_by = _ref(allow_null=True)
    waived_at = _instant()
    waiver_reason = _text(allow_blank=True)


class StatementCurrencyTotalsSerializer(serializers.Serializer):
    # One currency's totals. Not `StatementTotals`: generators name the inline `Statement.totals`
    # map so, and openapi-python-client dropped `Statement` over the clash.
    penalties = _amount(
        help_text="Owed: the breaches' penalties (those waived by the month's end at zero) and the posted "
        "penalties, less the waiver corrections."
    )
    posted = _amount(help_text="Of which penalties posted by hand (`posted_penalties`).")
    waived = _amount(help_text="Waived in the month: the month's breaches' and the corrected ones'.")
    corrections = _amount(help_text="Of `penalties`: the waiver corrections' sum (zero or negative).")


class StatementJobHoursSerializer(serializers.Serializer):
    work_order = _ref(allow_null=True)
    hours = _amount(help_text="Hours charged for the job's work this month.")
    worked = _amount(help_text="Hours worked on the job this month, before the billing plan's charging.")


class StatementHoursSerializer(serializers.Serializer):
    opening_balance = _amount()
    allocations = _amount()
    work = _amount(
        help_text="Hours charged for work (the billing plan's rounding, minimum and multipliers applied): "
        "what the balance moves by."
    )
    worked = _amount(help_text="Hours worked, before the billing plan's charging.")
    adjustments = _amount()
    expiries = _amount()
    closing_balance = _amount()
    work_by_job = StatementJobHoursSerializer(many=True)


class StatementSerializer(serializers.Serializer):
    contract = StatementContractSerializer()
    counterparty = _ref()
    month = _text(help_text="YYYY-MM")
    time_zone = _text()
    period = inline_serializer("StatementPeriod", {"from": _instant(), "to": _instant()})
    breaches = StatementBreachSerializer(many=True)
    posted_penalties = StatementPostedPenaltySerializer(
        many=True,
        help_text="Penalties posted by hand in the month (ledger `penalty` entries a person posted, with or without a "
        "breach), by date: "
        "in the billing period's service credit like the breaches' penalties.",
    )
    waiver_corrections = StatementWaiverCorrectionSerializer(
        many=True,
        help_text="Breaches of earlier months waived in this month, by the waiver's instant: their months keep "
        "the penalty, this month takes it off.",
    )
    totals = _per_currency(StatementCurrencyTotalsSerializer())
    hours = StatementHoursSerializer()


# --- breach evidence ----------------------------------------------------------------------------


class EvidenceBreachSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.ChoiceField(choices=Breach.State.choices)
    final = serializers.BooleanField()
    detected_at = _instant()
    measured_at = _instant(allow_null=True)
    waived_by = _text(allow_null=True, help_text="The username of who waived it.")
    waived_at = _instant(allow_null=True)
    waiver_reason = _text(allow_blank=True)
    stored_due_at = _instant()
    stored_actual_minutes = serializers.IntegerField()
    stored_overage_minutes = serializers.IntegerField()
    stored_penalty_amount = _amount()


class EvidenceStatusChangeSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=WorkOrder.Status.choices)
    recorded_at = _instant()


class EvidenceWorkOrderSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reference = _text(allow_blank=True)
    priority = serializers.ChoiceField(choices=SlaRule.Priority.choices)
    status = serializers.ChoiceField(choices=WorkOrder.Status.choices)
    reported_at = _instant()
    responded_at = _instant(allow_null=True)
    on_site_at = _instant(allow_null=True)
    resolved_at = _instant(allow_null=True)
    status_history = EvidenceStatusChangeSerializer(many=True)


class EvidenceHoldSerializer(serializers.Serializer):
    kind = _text()
    start = _instant()
    end = _instant(allow_null=True)
    reason = _text(allow_blank=True)
    pauses_this_rule = serializers.BooleanField()


@extend_schema_field(
    {
        "type": "array",
        "items": {
            "type": "array",
            "minItems": 3,
            "maxItems": 3,
            "items": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        },
        "description": 'Weekly working intervals as [iso_weekday, "HH:MM", "HH:MM"].',
    }
)
class _HoursField(serializers.JSONField):
    pass


class EvidenceCalendarSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = _text()
    time_zone = _text()
    hours = _HoursField()
    holidays = serializers.ListField(child=serializers.DateField())
    holiday_country = _text(allow_null=True)
    holiday_subdivision = _text(allow_null=True)
    working_days = serializers.ListField(child=serializers.DateField())


class EvidenceRuleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = _text()
    metric = serializers.ChoiceField(choices=SlaRule.Metric.choices)
    priorities = serializers.ListField(child=_text())
    target_minutes = serializers.IntegerField()
    effective_from = _instant()
    effective_to = _instant(allow_null=True)
    previous_version = serializers.IntegerField(allow_null=True)
    pause_on_hold = serializers.BooleanField()
    calendar = EvidenceCalendarSerializer(allow_null=True, help_text="None: 24x7.")
    penalty = PenaltyClauseField(allow_null=True, help_text="The rule's penalty clause.")
    monthly_penalty_cap = _amount(allow_null=True)


class EvidenceIntervalSerializer(serializers.Serializer):
    start = _instant()
    end = _instant()
    seconds = serializers.IntegerField()
    paused_seconds = serializers.IntegerField()
    business_seconds = serializers.IntegerField()


class EvidenceDstChangeSerializer(serializers.Serializer):
    at = _instant()
    offset_before = _text()
    offset_after = _text()


class EvidencePauseSerializer(serializers.Serializer):
    start = _instant()
    end = _instant()


class EvidenceClockSerializer(serializers.Serializer):
    metric = serializers.ChoiceField(choices=SlaRule.Metric.choices)
    state = serializers.ChoiceField(choices=SlaClock.State.choices)
    start = _instant()
    stop = _instant(allow_null=True)
    measured_until = _instant()
    clock_stopped_at_now = _instant(allow_null=True)
    rule_now = serializers.IntegerField(
        help_text="The rule version the job's clock follows now; differs from `rule.id` when a later, "
        "back-dated version came after the breach was settled (the pack keeps the version it was priced under)."
    )
    pauses = EvidencePauseSerializer(many=True)
    time_zone = _text()
    working_intervals = EvidenceIntervalSerializer(many=True)
    holidays_in_span = serializers.ListField(child=serializers.DateField())
    dst_changes = EvidenceDstChangeSerializer(many=True)
    due_at = _instant(allow_null=True)
    business_seconds = serializers.IntegerField()
    actual_minutes = serializers.IntegerField()
    overage_minutes = serializers.IntegerField()


class EvidenceOtherBreachSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    penalty = _amount()
    priced_at = _instant(allow_null=True)


class EvidencePenaltySerializer(serializers.Serializer):
    clause = PenaltyClauseField(allow_null=True)
    past_due = serializers.BooleanField()
    fixed_amount = _amount(help_text="The clause's, as it states it (finer places than the currency's kept).")
    per_unit_amount = _amount(help_text="The clause's, as it states it (finer places than the currency's kept).")
    unit_minutes = serializers.IntegerField(allow_null=True)
    started_units = serializers.IntegerField()
    before_caps = _amount()
    per_breach_cap = _amount(allow_null=True)
    after_breach_cap = _amount()
    month = _text(help_text="YYYY-MM")
    monthly_cap = _amount(allow_null=True)
    month_other_breaches = EvidenceOtherBreachSerializer(many=True)
    month_others_total = _amount()
    after_monthly_cap = _amount()
    waived = serializers.BooleanField()
    owed = _amount()
    currency = _text()


class EvidenceRecomputedSerializer(serializers.Serializer):
    due_at = _instant(allow_null=True)
    business_seconds = serializers.IntegerField()
    actual_minutes = serializers.IntegerField()
    overage_minutes = serializers.IntegerField()
    penalty_amount = _amount()


class EvidenceAgreementSerializer(serializers.Serializer):
    due_at = serializers.BooleanField()
    actual_minutes = serializers.BooleanField()
    overage_minutes = serializers.BooleanField()
    penalty_amount = serializers.BooleanField()


class EvidenceSerializer(serializers.Serializer):
    breach = EvidenceBreachSerializer()
    contract = StatementContractSerializer()
    work_order = EvidenceWorkOrderSerializer()
    holds = EvidenceHoldSerializer(many=True)
    rule = EvidenceRuleSerializer()
    clock = EvidenceClockSerializer()
    penalty = EvidencePenaltySerializer()
    recomputed = EvidenceRecomputedSerializer()
    agrees_with_stored = EvidenceAgreementSerializer()
    sha256 = _text(help_text="SHA-256 of the canonical JSON of the pack without this key.")


# --- backtests ----------------------------------------------------------------------------------


class BacktestSummarySerializer(serializers.Serializer):
    decided = serializers.IntegerField()
    met = serializers.IntegerField()
    breached = serializers.IntegerField()
    open = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    achieved_percent = serializers.FloatField(allow_null=True)
    penalties = _per_currency(_amount())


class BacktestChangeSerializer(serializers.Serializer):
    work_order = _ref()
    sla_rule = _ref()
    current = serializers.ChoiceField(choices=backtest.OUTCOMES)
    proposed = serializers.ChoiceField(choices=backtest.OUTCOMES)
    current_due_at = _instant(allow_null=True)
    proposed_due_at = _instant(allow_null=True)


class BacktestResultSerializer(serializers.Serializer):
    window = inline_serializer("BacktestWindow", {"from": _instant(), "to": _instant()})
    contract = _ref()
    sla_rules = ReportReferenceSerializer(many=True)
    jobs = serializers.IntegerField()
    current = BacktestSummarySerializer()
    proposed = BacktestSummarySerializer()
    changed = BacktestChangeSerializer(many=True)
    changed_counts = serializers.DictField(
        child=serializers.IntegerField(), help_text="By transition, `<current>_to_<proposed>`."
    )
    changed_total = serializers.IntegerField()
