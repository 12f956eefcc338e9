"""Counterparties, contracts, their approvals, line items and lifecycle reminders."""

import datetime as dt
import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django_fsm import RETURN_VALUE, FSMField, transition

from tenancy.models import SourcedModel, TenantModel, validate_currency, validate_time_zone


class Counterparty(SourcedModel):
    """A customer or vendor that contracts are made with."""

    class Kind(models.TextChoices):
        CUSTOMER = "customer"
        VENDOR = "vendor"
        BOTH = "both"

    name = models.CharField(max_length=160)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CUSTOMER)
    reference = models.CharField(max_length=64, blank=True, default="")
    email = models.EmailField(max_length=254, blank=True, default="")
    phone = models.CharField(max_length=40, blank=True, default="")
    address = models.TextField(blank=True, default="")
    remarks = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "counterparties"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "source", "source_id"],
                condition=~models.Q(source_id=""),
                name="counterparty_unique_source_id",
            )
        ]
        indexes = [
            # Issue 15: the default sort's order, id last: a page's ids come straight off the index.
            models.Index(fields=["organization", "name", "id"], name="counterparty_org_name")
        ]

    str_columns = ("name",)  # what __str__ reads (config.api.rows)

    def __str__(self) -> str:
        return self.name


class Asset(SourcedModel):
    """A piece of equipment or a site of a counterparty that contracts can cover (issue 13)."""

    name = models.CharField(max_length=160)
    kind = models.CharField(max_length=64, blank=True, default="")
    serial_number = models.CharField(max_length=128, blank=True, default="")
    counterparty = models.ForeignKey(Counterparty, on_delete=models.PROTECT, related_name="assets")
    site = models.CharField(max_length=255, blank=True, default="")
    # A GeoJSON Point (contracts.geo.validate_point).
    location = models.JSONField(null=True, blank=True)
    remarks = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "source", "source_id"],
                condition=~models.Q(source_id=""),
                name="asset_unique_source_id",
            )
        ]
        indexes = [
            # Issue 15: the default sort's order, id last: a page's ids come straight off the index.
            models.Index(fields=["organization", "name", "id"], name="asset_org_name")
        ]

    str_columns = ("name",)  # what __str__ reads (config.api.rows)

    def __str__(self) -> str:
        return self.name


class BillingPlanTerms(models.Model):
    """The billing plan (issue 12): terms of a contract (draft only), and of a contract template,
    under the same names. The `billing` app turns them into periods, lots and billing lines."""

    class BillingPeriod(models.TextChoices):
        NONE = "none"
        MONTHLY = "monthly"
        QUARTERLY = "quarterly"
        YEARLY = "yearly"

    class InvoiceTiming(models.TextChoices):
        IN_ADVANCE = "in_advance"
        IN_ARREARS = "in_arrears"

    billing_period = models.CharField(max_length=16, choices=BillingPeriod.choices, default=BillingPeriod.NONE)
    period_charge = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    invoice_timing = models.CharField(max_length=16, choices=InvoiceTiming.choices, default=InvoiceTiming.IN_ADVANCE)
    hours_per_period = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    rollover_percent = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    overage_rate = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    rounding_minutes = models.PositiveIntegerField(default=0)
    minimum_charge_minutes = models.PositiveIntegerField(default=0)
    out_of_hours_multiplier = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    # A string reference (no import of the higher `slas` app): working time for the multiplier.
    billing_calendar = models.ForeignKey(
        "slas.Calendar", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    annual_increase_percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    prepay_hours_per_period = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    prepay_expiry_months = models.PositiveSmallIntegerField(null=True, blank=True)
    prepay_price_per_hour = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    # {"threshold_hours": "5", "mode": "to" | "by", "hours": "20", "price_per_hour": "80"}
    auto_top_up = models.JSONField(null=True, blank=True)

    class Meta:
        abstract = True


class Contract(BillingPlanTerms, SourcedModel):
    """The authoritative record of a contract, with its lifecycle (django-fsm-2).

    The transition methods only move the state; `contracts.services` checks the rules
    (dual approval, who may act, what is missing), locks the row and writes the events.
    """

    class Type(models.TextChoices):
        SERVICE_CONTRACT = "service_contract"
        MAINTENANCE_AGREEMENT = "maintenance_agreement"
        PARTS_SUPPLY = "parts_supply"
        MUTUAL_AID = "mutual_aid"
        MANAGED_SERVICE = "managed_service"
        PROJECT = "project"
        WARRANTY = "warranty"

    class Role(models.TextChoices):
        CUSTOMER = "customer", "customer (we deliver to them)"
        VENDOR = "vendor", "vendor (they deliver to us)"

    class Status(models.TextChoices):
        DRAFT = "draft"
        PENDING_APPROVAL = "pending_approval"
        SCHEDULED = "scheduled"
        ACTIVE = "active"
        SUSPENDED = "suspended"
        EXPIRED = "expired"
        TERMINATED = "terminated"
        RENEWED = "renewed"

    reference = models.CharField(max_length=64)
    name = models.CharField(max_length=160)
    description = models.TextField(blank=True, default="")
    remarks = models.TextField(blank=True, default="")
    contract_type = models.CharField(max_length=32, choices=Type.choices)
    counterparty = models.ForeignKey(Counterparty, on_delete=models.PROTECT, related_name="contracts")
    counterparty_role = models.CharField(max_length=16, choices=Role.choices)
    status = FSMField(max_length=24, choices=Status.choices, default=Status.DRAFT)
    start_date = models.DateField(null=True, blank=True)
    expiry_date = models.DateField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, validators=[validate_time_zone])
    notice_period_days = models.PositiveIntegerField(default=0)
    # The other side must accept by a signed link (signing app) before the contract activates.
    requires_counterparty_signature = models.BooleanField(default=False)
    notice_date = models.DateField(null=True, blank=True, editable=False)
    auto_renew = models.BooleanField(default=False)
    renewal_term_months = models.PositiveIntegerField(null=True, blank=True)
    renewed_from = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="renewed_by"
    )
    currency = models.CharField(max_length=3, validators=[validate_currency])
    contract_value = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    hours_budget = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    # The hour ledger's running balance, kept by `ledger.services` under this row's lock (so
    # postings on one contract are serialised); `verify_ledger` proves it against the entries.
    remaining_hours = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"), editable=False)
    low_balance_threshold_hours = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    allow_overrun = models.BooleanField(default=False)
    coverage_areas = models.JSONField(null=True, blank=True)
    # Assets of the contract's counterparty that it covers: a term (issue 13).
    covered_assets = models.ManyToManyField(Asset, blank=True, related_name="covering_contracts")
    # Bounding box of the coverage, so that `covers=` narrows the candidates in SQL.
    coverage_min_lon = models.FloatField(null=True, blank=True, editable=False)
    coverage_min_lat = models.FloatField(null=True, blank=True, editable=False)
    coverage_max_lon = models.FloatField(null=True, blank=True, editable=False)
    coverage_max_lat = models.FloatField(null=True, blank=True, editable=False)
    service_territory_id = models.CharField(max_length=128, blank=True, default="")
    dispatch_agreement_id = models.CharField(max_length=128, blank=True, default="")
    # Set by the billing close under this row's lock: nothing that moves hours may be posted before it.
    books_closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    # Each submission opens a new approval round; only approvals of the current round count.
    approval_round = models.PositiveIntegerField(default=0)
    notice_given_at = models.DateTimeField(null=True, blank=True)
    notice_reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "reference"], name="contract_unique_reference"),
            models.UniqueConstraint(
                fields=["organization", "source", "source_id"],
                condition=~models.Q(source_id=""),
                name="contract_unique_source_id",
            ),
            models.CheckConstraint(
                condition=models.Q(expiry_date__isnull=True)
                | models.Q(start_date__isnull=True)
                | models.Q(expiry_date__gte=models.F("start_date")),
                name="contract_expiry_after_start",
            ),
        ]
        indexes = [
            # Issue 15: the default sort's order, id last: a page's ids come straight off the index.
            models.Index(fields=["organization", "name", "id"], name="contract_org_name"),
            models.Index(fields=["status", "start_date"], name="contract_status_start"),
            models.Index(fields=["status", "expiry_date"], name="contract_status_expiry"),
        ]

    str_columns = ("reference", "name")  # what __str__ reads (config.api.rows: references from rows)

    def __str__(self) -> str:
        return f"{self.reference} {self.name}"

    # --- derived -------------------------------------------------------------------------------

    def compute_notice_date(self) -> dt.date | None:
        if self.expiry_date is None:
            return None
        return self.expiry_date - dt.timedelta(days=self.notice_period_days or 0)

    def local_today(self, now: dt.datetime) -> dt.date:
        return now.astimezone(zoneinfo.ZoneInfo(self.time_zone)).date()

    def start_of_day(self, day: dt.date) -> dt.datetime:
        """The instant a local calendar day begins in the contract's time zone."""
        return dt.datetime.combine(day, dt.time.min, tzinfo=zoneinfo.ZoneInfo(self.time_zone))

    # --- transitions (state only; see services) ------------------------------------------------

    @transition(field=status, source=Status.DRAFT, target=Status.PENDING_APPROVAL, custom={"admin": True})
    def submit(self):
        pass

    @transition(
        field=status,
        source=Status.PENDING_APPROVAL,
        target=RETURN_VALUE(Status.PENDING_APPROVAL, Status.SCHEDULED, Status.ACTIVE),
        custom={"admin": True},
    )
    def approve(self, target: str = Status.PENDING_APPROVAL):
        return target

    @transition(field=status, source=Status.PENDING_APPROVAL, target=Status.DRAFT, custom={"admin": True})
    def reject(self):
        pass

    @transition(field=status, source=Status.SCHEDULED, target=Status.ACTIVE)
    def activate(self):
        pass

    @transition(field=status, source=Status.ACTIVE, target=Status.SUSPENDED, custom={"admin": True})
    def suspend(self):
        pass

    @transition(field=status, source=Status.SUSPENDED, target=Status.ACTIVE, custom={"admin": True})
    def resume(self):
        pass

    # From scheduled too: an approved contract called off before its start (a renewal the customer
    # declined); it never runs, so nothing of it is billed, allocated or visited.
    @transition(
        field=status,
        source=[Status.SCHEDULED, Status.ACTIVE, Status.SUSPENDED],
        target=Status.TERMINATED,
        custom={"admin": True},
    )
    def terminate(self):
        pass

    @transition(field=status, source=[Status.ACTIVE, Status.SUSPENDED], target=Status.EXPIRED)
    def expire(self):
        pass

    @transition(field=status, source=[Status.ACTIVE, Status.SUSPENDED, Status.EXPIRED], target=Status.RENEWED)
    def mark_renewed(self):
        pass


class ContractApproval(TenantModel):
    """One approver's decision in one approval round of a contract."""

    class Decision(models.TextChoices):
        APPROVED = "approved"
        REJECTED = "rejected"

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="approvals")
    # Set for a decision on an amendment (whose rounds are its own); None for the contract itself.
    amendment = models.ForeignKey(
        "Amendment", null=True, blank=True, on_delete=models.CASCADE, related_name="approvals"
    )
    approval_round = models.PositiveIntegerField()
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=16, choices=Decision.choices)
    comment = models.TextField(blank=True, default="")
    decided_at = models.DateTimeField()

    class Meta:
        ordering = ["decided_at", "id"]
        verbose_name = "approval"
        constraints = [
            # The database, not only the service, refuses a second approval by the same person.
            models.UniqueConstraint(
                fields=["contract", "approval_round", "approver"],
                condition=models.Q(decision="approved", amendment__isnull=True),
                name="approval_once_per_contract_round",
            ),
            models.UniqueConstraint(
                fields=["amendment", "approval_round", "approver"],
                condition=models.Q(decision="approved", amendment__isnull=False),
                name="approval_once_per_amendment_round",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_decision_display().capitalize()} by {self.approver} (round {self.approval_round})"


class LineItem(TenantModel):
    """A service or part a contract covers (or prices)."""

    class Kind(models.TextChoices):
        SERVICE = "service"
        PART = "part"

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="line_items")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SERVICE)
    description = models.CharField(max_length=255)
    sku = models.CharField(max_length=64, blank=True, default="")
    quantity = models.DecimalField(max_digits=12, decimal_places=3, default=1)
    unit = models.CharField(max_length=32, blank=True, default="")
    unit_price = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    covered = models.BooleanField(default=True)
    notes = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # Issue 15: the list's filter (organization and contract) and default sort, id last: its
            # count and a page's ids come off the index alone (no heap visit, no sort).
            models.Index(fields=["organization", "contract", "id"], name="line_item_org_contract")
        ]


class ContractReminder(TenantModel):
    """A time-driven notice sent once: `expiring` at 90/60/30/7 days, `notice_due` at 30/7.

    The unique constraint makes sending exactly-once when several `run_lifecycle` run at once.
    """

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="reminders")
    kind = models.CharField(max_length=16)
    window_days = models.PositiveIntegerField()
    due_date = models.DateField()
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["contract", "kind", "window_days", "due_date"], name="reminder_once_per_window"
            )
        ]


# --- terms over time (issue 14) -----------------------------------------------------------------


class Amendment(TenantModel):
    """A change of an approved contract's terms from `effective_date` (in the contract's time
    zone), approved like a contract (two approvers, neither the submitter) before it applies."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        PENDING_APPROVAL = "pending_approval"
        APPROVED = "approved"
        REJECTED = "rejected"

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="amendments")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.DRAFT)
    effective_date = models.DateField()
    # {"term": value as JSON, ..., "line_items": [...]}: only what changes.
    changes = models.JSONField()
    reason = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    approval_round = models.PositiveIntegerField(default=0)
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["contract_id", "number"]
        constraints = [models.UniqueConstraint(fields=["contract", "number"], name="amendment_unique_number")]
        indexes = [
            # Issue 15: the list's filter and default sort, id last (the sort's tie-breaker): its count
            # and a page's ids come off the index alone, without an incremental sort on the id.
            models.Index(fields=["organization", "contract", "number", "id"], name="amendment_org_contract")
        ]

    def __str__(self) -> str:
        return f"Amendment {self.number} of contract {self.contract_id}"


class TermVersion(TenantModel):
    """The contract's terms (a JSON snapshot of `TERM_FIELDS` and the line items) in force from
    `effective_from` up to, not including, `effective_to` (local dates; None: open-ended), and
    what put them there: the creation (approval), a renewal, or an amendment."""

    class Origin(models.TextChoices):
        CREATION = "creation"
        RENEWAL = "renewal"
        AMENDMENT = "amendment"

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="term_versions")
    effective_from = models.DateField()
    effective_to = models.DateField(null=True, blank=True)
    terms = models.JSONField()
    origin = models.CharField(max_length=16, choices=Origin.choices)
    amendment = models.ForeignKey(
        Amendment, null=True, blank=True, on_delete=models.PROTECT, related_name="term_versions"
    )
    # When the contract row was brought to these terms (None: not yet in force, or superseded first).
    applied_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["contract_id", "effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["contract", "effective_from"], name="term_version_unique_start"),
            models.CheckConstraint(
                condition=models.Q(effective_to__isnull=True) | models.Q(effective_to__gt=models.F("effective_from")),
                name="term_version_period",
            ),
        ]
        indexes = [
            models.Index(fields=["applied_at", "effective_from"], name="term_version_pending"),
            # Issue 15: the list's filter and default sort, id last, as the amendments'.
            models.Index(fields=["organization", "contract", "effective_from", "id"], name="term_version_org_contract"),
        ]

    def __str__(self) -> str:
        return f"Terms of contract {self.contract_id} from {self.effective_from}"
