"""The hour ledger: append-only entries per contract (DESIGN §1), never edited in place."""

from decimal import Decimal

from django.conf import settings
from django.db import models

from breaches.models import Breach
from contracts.models import Contract
from tenancy.models import TenantModel
from workorders.models import WorkOrder


class LedgerEntry(TenantModel):
    """One posting. Hours are signed by their effect on the balance: allocations (initial
    allocation, renewal, credit) add, work and expiry subtract, an adjustment may do either.
    Penalties are money (`amount`, `currency`) and move no hours; a waived breach's penalty is
    reversed by a second penalty entry with the negative amount (`reverses`)."""

    class Type(models.TextChoices):
        WORK = "work"
        ADJUSTMENT = "adjustment"
        CREDIT = "credit"
        INITIAL_ALLOCATION = "initial_allocation"
        RENEWAL = "renewal"
        PENALTY = "penalty"

    class Reason(models.TextChoices):
        MANUAL = "", "posted by hand"
        LOT_EXPIRED = "lot_expired", "unused hours of an expired lot"
        PENALTY_REVERSAL = "penalty_reversal", "penalty of a waived breach reversed"
        SYSTEM = "system", "posted by the system"
        # Lots and settlements of a billing plan (issue 12), posted by the `billing` app.
        INCLUDED_HOURS = "included_hours", "hours included in a billing period"
        ROLLOVER = "rollover", "unused included hours rolled over"
        PREPAY = "prepay", "recurring prepaid hours"
        TOP_UP = "top_up", "automatic top-up"
        OVERAGE_BILLED = "overage_billed", "overage billed at the period's close"
        # Issue 14: an amendment moved the contract's expiry; the lot's unused hours go on in a new
        # lot with the amended expiry (a pair of entries, linked to the old lot, netting to zero).
        LOT_MOVED = "lot_moved", "unused hours carried to the amended expiry"

    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="ledger_entries")
    entry_type = models.CharField(max_length=24, choices=Type.choices)
    reason_code = models.CharField(max_length=24, choices=Reason.choices, blank=True, default="")
    hours = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    # What the balance, lots and burn rate consume: work after the plan's minimum, rounding and
    # out-of-hours multiplier (`ledger.charging`); equal to `hours` for every other entry.
    charged_hours = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"), editable=False)
    amount = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    work_order = models.ForeignKey(WorkOrder, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    breach = models.ForeignKey(Breach, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries")
    # The allocation (lot) an expiry entry closes (or a rollover lot carries from), or the penalty a reversal undoes.
    lot = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="expiries")
    reverses = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversal")
    description = models.TextField(blank=True, default="")
    occurred_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    # What a system posting is about ("penalty:breach:12"): unique, so each posts exactly once.
    system_key = models.CharField(max_length=80, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "system_key"], condition=~models.Q(system_key=""), name="ledger_system_once"
            )
        ]
        indexes = [
            models.Index(fields=["contract", "occurred_at"], name="ledger_contract_occurred"),
            models.Index(fields=["contract", "entry_type"], name="ledger_contract_type"),
            models.Index(fields=["expires_at"], condition=models.Q(expires_at__isnull=False), name="ledger_lot_expiry"),
            # The "books closed up to" lookup that every posting makes under the contract's lock.
            models.Index(
                fields=["contract", "occurred_at"],
                condition=models.Q(reason_code="lot_expired"),
                name="ledger_contract_expiries",
            ),
            # The same lookup for lots moved to an amended expiry (issue 14), which close the books too.
            models.Index(
                fields=["contract", "occurred_at"],
                condition=models.Q(reason_code="lot_moved"),
                name="ledger_contract_moves",
            ),
            # Issue 15: the default sort's order, id last: a page's ids come straight off the index.
            models.Index(fields=["organization", "id"], name="ledger_org_id"),
        ]

    str_columns = ("entry_type", "hours", "contract")  # what __str__ reads (config.api.rows)

    def __str__(self) -> str:
        return f"{self.entry_type} {self.hours}h on contract {self.contract_id}"


class IdempotencyKey(TenantModel):
    """A client's `Idempotency-Key` on POST: the same key and body return the original object
    (a ledger entry, a billing export, ...: `resource` names the collection, `object_id` the row)."""

    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    resource = models.CharField(max_length=40, default="ledger_entries")
    object_id = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "key"], name="idempotency_key_once")]
