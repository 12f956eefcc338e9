"""`/api/v1/contracts/{id}/approval_requests`: ask the counterparty to accept by a signed link, and
list the requests with their state."""

from __future__ import annotations

from collections import namedtuple

from django.utils import timezone

from config.api.filters import PredicateFilterSet
from config.api.serializers import ReferenceField, ResourceSerializer, RowMethodField
from config.api.viewsets import CreateMixin, ResourceViewSet
from contracts.api import ContractChild

from . import services
from .documents import terms_hash
from .models import SignatureRequest

# What services.void_reason reads of a request and of its contract, from a row (not model instances).
_Terms = namedtuple("_Terms", ["approval_round", "terms_hash"])
_ContractState = namedtuple("_ContractState", ["status", "approval_round"])


class SignatureRequestSerializer(ResourceSerializer):
    status = RowMethodField(
        "status",
        "expires_at",
        "approval_round",
        "terms_hash",
        # Joined in the page's query: a list does not load its contract (ContractChild) for them.
        "contract__status",
        "contract__approval_round",
        help_text="pending, accepted, rejected, expired (past expires_at) or void (the terms or the "
        "contract's approval round changed since it was sent)."
    )
    created_by = ReferenceField()

    class Meta:
        model = SignatureRequest
        fields = [
            "id", "name", "email", "status", "approval_round", "terms_hash", "expires_at", "created_by",
            "created_at", "sent_at", "decided_at", "signer_name", "signer_email", "signature", "reason",
            "ip_address", "user_agent", "signed_terms_hash",
        ]  # fmt: skip
        read_only_fields = [name for name in fields if name not in ("name", "email")]
        default_fields = ["id", "name", "email", "status", "expires_at", "created_at", "decided_at"]

    def get_status(self, row) -> str:
        if row["status"] != SignatureRequest.Status.PENDING:
            return row["status"]
        context = self.context
        if "now" not in context:  # once per response, not per request listed
            context["now"] = timezone.now()
        if context["now"] >= row["expires_at"]:
            return SignatureRequest.Status.EXPIRED
        request = _Terms(row["approval_round"], row["terms_hash"])
        contract = _ContractState(row["contract__status"], row["contract__approval_round"])
        if services.void_reason(request, contract, self._hash):
            return SignatureRequest.Status.VOID
        return row["status"]

    def _hash(self) -> str:
        """The contract's terms hash, once per response (not per request listed), asked for only
        while the contract waits for a request's round: then a list loads its contract."""
        if "current_hash" not in self.context:
            contract = self.context.get("contract") or self.context["view"].contract
            self.context["current_hash"] = terms_hash(contract)
        return self.context["current_hash"]


class SignatureRequestFilterSet(PredicateFilterSet):
    class Meta:
        model = SignatureRequest
        fields = ["email", "approval_round", "created_at", "decided_at"]


class SignatureRequestViewSet(ContractChild, CreateMixin, ResourceViewSet):
    """Requests to the counterparty to accept a contract pending approval by a single-use link
    e-mailed to them (`/approve/<token>`, valid SIGNING_LINK_DAYS days, void once the terms change).
    A contract with `requires_counterparty_signature` activates only once one is accepted, in
    addition to its two internal approvals."""

    # The contract for a status written from an instance (a request read alone, a CSV export); a
    # page written from rows joins only the two columns the status reads.
    queryset = SignatureRequest.objects.select_related("created_by", "contract")
    list_references = {"contract": ("status", "approval_round")}
    serializer_class = SignatureRequestSerializer
    filterset_class = SignatureRequestFilterSet
    sort_fields = {"created_at": "created_at", "email": "email"}
    default_sort = "-id"
    write_role = "manager"

    def create_service(self, *, organization, actor, data):
        base = self.request.build_absolute_uri("/")  # the links go out on the address the API was called on
        return services.create_request(contract=self.contract, actor=actor, data=data, link_base=base)
