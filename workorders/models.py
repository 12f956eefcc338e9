"""Work orders pushed in by dispatch systems, their holds, and their SLA clocks."""

from django.db import models

from contracts.models import Contract
from slas.models import SlaRule
from tenancy.models import SourcedModel, TenantModel


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
            )
        ]
        indexes = [
            models.Index(fields=["organization", "reported_at"], name="workorder_org_reported"),
            models.Index(fields=["contract", "reported_at"], name="workorder_contract_reported"),
        ]

    def __str__(self) -> str:
        return self.reference or f"work order {self.pk}"


class Hold(TenantModel):
    """An on-hold interval of a job. `reopened` marks the time a job spent resolved before it
    was reopened: it pauses the resolution clock only, whatever the rule's `pause_on_hold`."""

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

    work_order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="sla_clocks")
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
            # Clocks at risk (issue 11): every clock still running, recorded as breached or not, by due time.
            models.Index(
                fields=["organization", "due_at"],
                condition=models.Q(stopped_at__isnull=True, state__in=["running", "breached"]),
                name="clock_open_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.metric} clock of {self.work_order_id} ({self.state})"
