"""The event log: audit trail and streaming outbox in one table (DESIGN §7)."""

from django.conf import settings
from django.db import models

from tenancy.models import TenantModel


class Event(TenantModel):
    """One change, written by the service that made it, in the same transaction.

    `id` is monotonic, so a reader resumes a stream with `?since=<last id seen>`.
    """

    # No single-column index on the organization: `event_org_id` (organization, id) serves it, one
    # index less to write per event (a scan writes ~20,000).
    organization = models.ForeignKey("tenancy.Organization", on_delete=models.PROTECT, related_name="+", db_index=False)
    type = models.CharField(max_length=64)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    object_type = models.CharField(max_length=64)
    object_id = models.BigIntegerField()
    payload = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["organization", "id"], name="event_org_id"),
            models.Index(fields=["organization", "object_type", "object_id"], name="event_org_object"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.type} {self.object_type}:{self.object_id}"
