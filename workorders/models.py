"""Work orders pushed in by dispatch systems, their holds, and their SLA clocks."""

from django.db import models
from django.db.models.functions import Coalesce, Least

from contracts.models import Asset, Contract, Counterparty
from slas.models import SlaRule
from tenancy.models import SourcedModel, TenantModel


class ContractRule(TenantModel):
    """An explicit rule for which contract covers a job (HaloPSA's contract rules, issue 13).

    The enabled rule with the lowest `sequence` (then id) whose criteria all hold decides: its
    contract, or "not covered". `criteria` is a list of `{field, operator, value}`; see
    `workorders.matching` for the fields and operators.
    """

    class Outcome(models.TextChoices):
        CONTRACT = "contract"
        NOT_COVERED = "not_covered"

    name = models.CharField(max_length=160)
    sequence = models.PositiveIntegerField(default=100)
    enabled = models.BooleanField(default=True)
    criteria = models.JSONField(default=list)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.CONTRACT)
    contract = models.ForeignKey(Contract, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "enabled", "sequence"], name="contract_rule_org_seq"),
            # Issue 15: the default sort's order, id last: a page's ids come straight off the index.
            models.Index(fields=["organization", "sequence", "id"], name="contract_rule_org_sort"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(outcome="contract", contract__isnull=False)
                | models.Q(outcome="not_covered", contract__isnull=True),
                name="contract_rule_outcome",
            )
        ]

    str_columns = ("name",)  # what __str__ reads (config.api.rows)

    def __str__(self) -> str:
        return self.name


class VisitPlan(TenantModel):
    """Planned visits of a contract: an RFC 5545 RRULE in the contract's time zone whose
    occurrences become work orders `generate_days_in_advance` days ahead (issue 13).

    `generated_until` is the end of the last horizon generated: occurrences up to it are
    settled (an edit of the plan changes only later ones), and a resumed contract moves it to
    the instant of resumption, so only occurrences still ahead are caught up.
    """

    Priority = SlaRule.Priority

    class OnHoliday(models.TextChoices):
        """What becomes of an occurrence on a date that is no business day of the plan's `calendar`
        (a holiday, or a weekday without working hours)."""

        KEEP = "keep"  # visit anyway (the behaviour before the option existed)
        NEXT_BUSINESS_DAY = "next_business_day"  # the same wall time on the next business day
        SKIP = "skip"  # no visit for that occurrence

    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="visit_plans")
    summary = models.CharField(max_length=255)
    recurrence = models.CharField(max_length=500)
    duration_minutes = models.PositiveIntegerField(default=60)
    hours_allocated = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    priority = models.CharField(max_length=16, choices=Priority.choices, default=Priority.PLANNED)
    asset = models.ForeignKey(Asset, null=True, blank=True, on_delete=models.PROTECT, related_name="visit_plans")
    site = models.CharField(max_length=255, blank=True, default="")
    generate_days_in_advance = models.PositiveIntegerField(default=7)
    # A generated visit not resolved by the occurrence's end plus this tolerance is `missed`.
    tolerance_minutes = models.PositiveIntegerField(default=0)
    on_holiday = models.CharField(max_length=24, choices=OnHoliday.choices, default=OnHoliday.KEEP)
    # Whose business days `on_holiday` reads (needed unless it keeps every occurrence).
    calendar = models.ForeignKey(
        "slas.Calendar", null=True, blank=True, on_delete=models.PROTECT, related_name="visit_plans"
    )
    active_from = models.DateField()
    active_to = models.DateField(null=True, blank=True)
    generated_until = models.DateTimeField(editable=False)
    # When the plan next has an occurrence inside its horizon (that occurrence less
    # generate_days_in_advance); null: look at the next run. A run reads only the plans due.
    next_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "contract", "id"], name="visit_plan_org_contract"),
            models.Index(fields=["next_run_at"], name="visit_plan_next_run"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(active_to__isnull=True) | models.Q(active_to__gte=models.F("active_from")),
                name="visit_plan_active_period",
            )
        ]

    str_columns = ("summary",)  # what __str__ reads (config.api.rows)

    def __str__(self) -> str:
        return self.summary


class WorkOrder(SourcedModel):
    Priority = SlaRule.Priority  # the bands rules are written for

    class Status(models.TextChoices):
        OPEN = "open"
        IN_PROGRESS = "in_progress"
        ON_HOLD = "on_hold"
        RESOLVED = "resolved"
        CLOSED = "closed"
        CANCELLED = "cancelled"

    reference = models.CharField(max_length=64, blank=True, default="")
    summary = models.CharField(max_length=255, blank=True, default="")
    contract = models.ForeignKey(Contract, null=True, blank=True, on_delete=models.PROTECT, related_name="work_orders")
    priority = models.CharField(max_length=16, choices=Priority.choices, default=Priority.MEDIUM)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    reported_at = models.DateTimeField()
    responded_at = models.DateTimeField(null=True, blank=True)
    on_site_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # The instant of the last status change: a replayed change may not go back before it.
    status_changed_at = models.DateTimeField()
    location = models.JSONField(null=True, blank=True)
    counterparty = models.ForeignKey(
        Counterparty, null=True, blank=True, on_delete=models.PROTECT, related_name="work_orders"
    )
    asset = models.ForeignKey(Asset, null=True, blank=True, on_delete=models.PROTECT, related_name="work_orders")
    # How the contract was found: {"method": "manual" | "rule" | "entitlement" | "none", "rule", "score",
    # "explanation"} (workorders.matching).
    contract_match = models.JSONField(null=True, blank=True)
    # A planned visit's job: its plan and the occurrence's start (exactly one job per pair).
    visit_plan = models.ForeignKey(
        VisitPlan, null=True, blank=True, on_delete=models.PROTECT, related_name="work_orders"
    )
    occurrence = models.DateTimeField(null=True, blank=True)
    # Whether the job falls under its contract's SLA: set when it is reported (or moved) onto an
    # active contract. Only such jobs have clocks; a later activation does not backdate them.
    sla_tracked = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "source", "source_id"],
                condition=~models.Q(source_id=""),
                name="workorder_unique_source_id",
            ),
            # Cancelled jobs apart: a visit a suspension cancelled is made again at the resumption
            # when its occurrence is still ahead (workorders.visits), and both stay.
            models.UniqueConstraint(
                fields=["visit_plan", "occurrence"],
                condition=models.Q(visit_plan__isnull=False) & ~models.Q(status="cancelled"),
                name="workorder_once_per_occurrence",
            ),
        ]
        indexes = [
            # Issue 15: the default sort's order, id last: a page's ids come straight off the index.
            models.Index(fields=["organization", "reported_at", "id"], name="workorder_org_reported"),
            models.Index(fields=["contract", "reported_at"], name="workorder_contract_reported"),
        ]

    str_columns = ("reference",)  # what __str__ reads (config.api.rows: references from rows)

    def __str__(self) -> str:
        return self.reference or f"work order {self.pk}"


class Hold(TenantModel):
    """An on-hold interval of a job. `reopened` marks the time a job spent resolved before it
    was reopened: it pauses every clock of the job, whatever the rule's `pause_on_hold`."""

    class Kind(models.TextChoices):
        ON_HOLD = "on_hold"
        REOPENED = "reopened"

    work_order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="holds")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ON_HOLD)
    start = models.DateTimeField()
    end = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["start", "id"]


class SlaClock(TenantModel):
    """One rule's clock on one job. `due_at` is stored (and indexed) so that finding new
    breaches is one indexed query; it is recomputed whenever the job or its terms change."""

    class State(models.TextChoices):
        RUNNING = "running"
        PAUSED = "paused"
        MET = "met"
        BREACHED = "breached"
        CANCELLED = "cancelled"

    # No single-column indexes on the organization and the job: `clock_decided` (organization, ...)
    # and `clock_once_per_rule` (work_order, rule) serve those lookups, and every index is written
    # again by each update that moves an indexed column (the scan's `state` and escalation updates).
    organization = models.ForeignKey("tenancy.Organization", on_delete=models.PROTECT, related_name="+", db_index=False)
    work_order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="sla_clocks", db_index=False)
    rule = models.ForeignKey(SlaRule, on_delete=models.PROTECT, related_name="clocks")
    metric = models.CharField(max_length=16, choices=SlaRule.Metric.choices)
    target_minutes = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    due_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    # Business seconds from start to stop (or to the last computation while running).
    elapsed_seconds = models.PositiveIntegerField(default=0)
    escalations_sent = models.PositiveSmallIntegerField(default=0)
    next_escalation_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["work_order", "rule"], name="clock_once_per_rule")]
        indexes = [
            # The scan's queries: running clocks past due, and clocks past their next escalation level.
            models.Index(fields=["due_at"], condition=models.Q(state="running"), name="clock_running_due"),
            models.Index(
                fields=["next_escalation_at"],
                condition=models.Q(next_escalation_at__isnull=False),
                name="clock_next_escalation",
            ),
            # Clocks at risk (issue 11): every clock still running, recorded as breached or not, by due
            # time. The id ends the report's sort (due_at, id): a page's ids are read off the index,
            # without sorting the window's clocks (issue 15).
            models.Index(
                fields=["organization", "due_at", "id"],
                condition=models.Q(stopped_at__isnull=True, state__in=["running", "breached"]),
                name="clock_open_due_id",
            ),
            # SLA compliance (issue 11): a period's decided clocks by their decision instant
            # (`reports.compliance.decision_instant`, the same expression).
            models.Index(
                models.F("organization"),
                Coalesce(Least("stopped_at", "due_at"), "stopped_at", "due_at"),
                name="clock_decided",
            ),
            # Minutes to stop (issue 11): a period's stopped clocks by their stop, the time of a clock
            # decided long before it stopped (`reports.compliance._add_minutes`) included.
            models.Index(
                fields=["organization", "stopped_at"],
                condition=models.Q(stopped_at__isnull=False),
                name="clock_org_stopped",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.metric} clock of {self.work_order_id} ({self.state})"
