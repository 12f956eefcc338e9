"""A request to the counterparty to accept (or reject) a contract by a signed link, and its outcome."""

from django.conf import settings
from django.db import models

from contracts.models import Contract
from tenancy.models import TenantModel


class SignatureRequest(TenantModel):
    """One e-mailed, single-use link for one contract's current approval round.

    Only the SHA-256 of the link's token is stored (and the nonce it is derived from with the
    server's key, see `token_nonce`). `terms_hash` is the SHA-256 of the terms the
    link shows (contract, line items, SLA targets, money): when the terms change, the link is void.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        ACCEPTED = "accepted"
        REJECTED = "rejected"
        EXPIRED = "expired"
        VOID = "void"

    # PROTECT: a request went to the counterparty (and may hold their signature): a draft sent for
    # signature and sent back is kept, not deleted with its requests (contracts.services.delete_contract).
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="signature_requests")
    approval_round = models.PositiveIntegerField()
    name = models.CharField(max_length=160)
    email = models.EmailField(max_length=254)
    token_hash = models.CharField(max_length=64, unique=True)
    # The link's token is HMAC(SECRET_KEY, nonce): the outbox re-derives it when the e-mail is sent
    # (`deliver_notifications`), and the database alone (without the key) cannot.
    token_nonce = models.CharField(max_length=64, blank=True, default="")
    terms_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    void_reason = models.CharField(max_length=200, blank=True, default="")
    expires_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # The decision, as the signer gave it on the page.
    decided_at = models.DateTimeField(null=True, blank=True)
    signer_name = models.CharField(max_length=160, blank=True, default="")
    signer_email = models.EmailField(max_length=254, blank=True, default="")
    signature = models.CharField(max_length=160, blank=True, default="")
    reason = models.TextField(blank=True, default="")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.TextField(blank=True, default="")
    signed_terms_hash = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["contract", "approval_round", "status"], name="signature_contract_round"),
            # Issue 15: the list's filter (organization and contract) and default sort: its count and
            # a page's ids come off the index alone (no heap visit, no sort).
            models.Index(fields=["organization", "contract", "id"], name="signature_org_contract"),
        ]

    def __str__(self) -> str:
        return f"Signature request to {self.email} for contract {self.contract_id}"
