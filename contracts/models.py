"""Counterparties (and, with the contracts issue, contracts)."""

from django.db import models

from tenancy.models import SourcedModel


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
        indexes = [models.Index(fields=["organization", "name"], name="counterparty_org_name")]

    def __str__(self) -> str:
        return self.name
