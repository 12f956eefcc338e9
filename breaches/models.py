"""Breaches: recorded exactly once per clock, with overage and penalty, acknowledged or waived."""

from django.conf import settings
from django.db import models

from contracts.models import Contract
from slas.models import SlaRule
from tenancy.models import TenantModel
from workorders.models import SlaClock, WorkOrder


class Breach(TenantModel):
    class State(models.TextChoices):
        OPEN = "open"
        ACKNOWLEDGED = "acknowledged"
        WAIVED = "waived"

    # One breach per clock, enforced by the database: concurrent detectors record it once.
    clock = models.OneToOneField(SlaClock, on_delete=models.PROTECT, related_name="breach")
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="breaches")
    sla_rule = models.ForeignKey(SlaRule, on_delete=models.PROTECT, related_name="breaches")
    work_order = models.ForeignKey(WorkOrder, on_delete=models.PROTECT, related_name="breaches")
    metric = models.CharField(max_length=16, choices=SlaRule.Metric.choices)
    target_minutes = models.PositiveIntegerField()
    actual_minutes = models.PositiveIntegerField()
    overage_minutes = models.PositiveIntegerField()
    penalty_amount = models.DecimalField(max_digits=18, decimal_places=4, default=0)
    currency = models.CharField(max_length=3)
    due_at = models.DateTimeField()
    detected_at = models.DateTimeField()
    # The month of detection in the contract's time zone ("YYYY-MM"): the monthly cap's bucket.
    penalty_month = models.CharField(max_length=7)
    clock_stopped_at = models.DateTimeField(null=True, blank=True)
    final = models.BooleanField(default=False)
    # The instant the figures were last measured at: a scan re-measures a running breach at most
    # once a minute (its figures are whole minutes), so a repeat scan writes nothing; it reads the
    # open breaches (index `breach_open_by_rule`), not the table. Not indexed: the refresh rewrites it.
    measured_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    waived_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    waived_at = models.DateTimeField(null=True, blank=True)
    waiver_reason = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "breaches"
        indexes = [
            models.Index(fields=["organization", "detected_at"], name="breach_org_detected"),
            # The collection's default sort (-id) per organization: a page's ids off an index-only scan.
            # Neither column is written by the refresh, so its updates stay HOT.
            models.Index(fields=["organization", "id"], name="breach_org_id"),
            # The month's penalties of a batch's rules (the monthly cap), read from the index alone.
            models.Index(
                fields=["sla_rule", "penalty_month"],
                include=["penalty_amount", "state"],
                name="breach_rule_month_total",
            ),
            # The refresh walks the open breaches in (rule, id) order (keyset batches: each batch one
            # index range, never a sort of every open breach; a rule's breaches together, so a batch
            # locks and totals few rules, each rule's in id order: the order of its monthly cap's
            # room); no column the refresh writes is indexed here, so its updates can stay on their
            # page (HOT) without touching any index.
            models.Index(fields=["sla_rule", "id"], condition=models.Q(final=False), name="breach_open_by_rule"),
        ]

    str_columns = ("metric", "work_order")  # what __str__ reads (config.api.rows)

    def __str__(self) -> str:
        return f"{self.metric} breach of work order {self.work_order_id}"
