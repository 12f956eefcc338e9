"""Billing on top of the hour ledger (DESIGN §10): periods of a contract's billing plan, the
billing lines finance exports, export batches, and contract templates.

Nothing here edits a ledger entry: the lots a plan grants (included hours, rollover, prepay,
top-up) and the settlement of billed overage are new ledger entries with a unique system key,
and every billing line is a new row with a unique `key`, so each is written exactly once.
"""

from django.conf import settings
from django.db import models

from breaches.models import Breach
from contracts.models import BillingPlanTerms, Contract
from ledger.models import LedgerEntry
from tenancy.models import TenantModel, validate_currency


class BillingPeriod(TenantModel):
    """One period of a contract's billing plan, as `run_lifecycle` opened and closed it.

    The figures of every period are computed from the ledger (`billing.periods`); this row
    records that the period's start postings (opened) and its close (closed) happened, once.
    """

    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"

    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="billing_periods")
    index = models.PositiveIntegerField(help_text="0 for the period that begins on the start date.")
    start_date = models.DateField()
    end_date = models.DateField(help_text="The period's last day (inclusive).")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # The period's figures as they were closed (the API recomputes them from the ledger; equal).
    figures = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["contract_id", "index"]
        constraints = [models.UniqueConstraint(fields=["contract", "index"], name="billing_period_once")]

    str_columns = ("contract", "index", "start_date", "end_date")  # what __str__ reads (config.api.rows)

    def __str__(self) -> str:
        return f"{self.contract_id} period {self.index + 1} ({self.start_date} to {self.end_date})"


class ExportBatch(TenantModel):
    """Pending billing lines taken out for the finance system in one go."""

    contract = models.ForeignKey(Contract, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    date_from = models.DateField(null=True, blank=True)
    date_to = models.DateField(null=True, blank=True)
    line_count = models.PositiveIntegerField(default=0)
    totals = models.JSONField(default=dict, help_text="Amount per currency.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "export batches"
        # Issue 15: the default sort (-id) per organization.
        indexes = [models.Index(fields=["organization", "id"], name="export_batch_org_id")]

    str_columns = ("line_count",)  # what __str__ reads (config.api.rows)

    def __str__(self) -> str:
        return f"export {self.pk} ({self.line_count} lines)"


class BillingLine(TenantModel):
    """One exact line for the finance system. Never changed once exported: a correction is a new line."""

    class Kind(models.TextChoices):
        PERIOD_CHARGE = "period_charge"
        OVERAGE = "overage"
        PREPAY_PURCHASE = "prepay_purchase"
        TOP_UP = "top_up"
        SERVICE_CREDIT = "service_credit"

    class Status(models.TextChoices):
        PENDING = "pending"
        EXPORTED = "exported"

    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="billing_lines")
    period = models.ForeignKey(BillingPeriod, null=True, blank=True, on_delete=models.PROTECT, related_name="lines")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    description = models.CharField(max_length=255)
    quantity = models.DecimalField(max_digits=14, decimal_places=2)
    unit_price = models.DecimalField(max_digits=18, decimal_places=4)
    amount = models.DecimalField(max_digits=18, decimal_places=4)
    currency = models.CharField(max_length=3, validators=[validate_currency])
    date = models.DateField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    batch = models.ForeignKey(ExportBatch, null=True, blank=True, on_delete=models.PROTECT, related_name="lines")
    # What the line is about ("overage:period:12"): unique, so each line is written exactly once.
    key = models.CharField(max_length=80)
    entries = models.ManyToManyField(LedgerEntry, blank=True, related_name="billing_lines")
    breaches = models.ManyToManyField(Breach, blank=True, related_name="billing_lines")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "key"], name="billing_line_once")]
        indexes = [
            models.Index(fields=["organization", "status", "date"], name="billing_line_pending"),
            # Issue 15: the default sort's order, id last: a page's ids come straight off the index.
            models.Index(fields=["organization", "id"], name="billing_line_org_id"),
            models.Index(fields=["contract", "date"], name="billing_line_contract_date"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.currency} ({self.date})"


class ContractTemplate(BillingPlanTerms, TenantModel):
    """The terms a contract starts from: `instantiate` copies them into a new draft contract.

    The billing plan fields have the same names and meanings as on a contract.
    """

    name = models.CharField(max_length=160)
    contract_type = models.CharField(max_length=32, choices=Contract.Type.choices)
    term_months = models.PositiveIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, validators=[validate_currency])
    # [{"kind", "description", "sku", "quantity", "unit", "unit_price", "covered", "notes"}, ...]
    line_items = models.JSONField(default=list, blank=True)
    # [{"name", "metric", "priorities", "target_minutes", "calendar_id", "pause_on_hold", ...}, ...]
    sla_rules = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # Issue 15: the default sort's order, id last: a page's ids come straight off the index.
            models.Index(fields=["organization", "name", "id"], name="template_org_name")
        ]

    def __str__(self) -> str:
        return self.name


class TemplateUse(TenantModel):
    """Which template a contract was made from (the contract keeps its own copy of the terms)."""

    contract = models.OneToOneField(Contract, on_delete=models.CASCADE, related_name="template_use")
    template = models.ForeignKey(ContractTemplate, on_delete=models.PROTECT, related_name="uses")
    created_at = models.DateTimeField(auto_now_add=True)
