"""GraphQL type of signature (approval) requests: a contract's counterparty approvals (issue 14)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry
import strawberry_django
from django.utils import timezone
from strawberry import auto

from config.graphql.base import ContractChildType, OffsetPaginated, UserRef, resource_get, resource_list
from config.graphql.enums import enum_of
from config.graphql.errors import OperationError  # noqa: F401  (a member of the result union)
from config.graphql.mutations import (
    API,
    answer,
    body_of,
    call_rest,
    input_from_serializer,
    pk_of,
    result_union,
)

from . import models, services
from .api import SignatureRequestSerializer, SignatureRequestViewSet
from .documents import terms_hash

if TYPE_CHECKING:
    from contracts.graphql import Contract

ContractRef = Annotated["Contract", strawberry.lazy("contracts.graphql")]
SignatureRequestStatus = enum_of(models.SignatureRequest, "status")


@strawberry_django.type(models.SignatureRequest, name="SignatureRequest")
class SignatureRequest(ContractChildType):
    rest_view = SignatureRequestViewSet

    id: strawberry.ID
    contract: ContractRef
    name: auto
    email: auto
    approval_round: auto
    terms_hash: auto
    expires_at: auto
    created_by: UserRef | None
    created_at: auto
    sent_at: auto
    decided_at: auto
    signer_name: auto
    signer_email: auto
    signature: auto
    reason: auto
    ip_address: str | None
    user_agent: auto
    signed_terms_hash: auto

    @strawberry_django.field(
        select_related=["contract"],
        description="As REST: pending, accepted, rejected, expired (past expiresAt) or void (the terms "
        "or the contract's approval round changed since it was sent).",
    )
    def status(self, info: strawberry.Info) -> SignatureRequestStatus:
        if self.status != models.SignatureRequest.Status.PENDING:
            return self.status
        if timezone.now() >= self.expires_at:
            return models.SignatureRequest.Status.EXPIRED.value
        # The contract's current terms hash, once per contract and request (as REST's serializer).
        hashes = info.context.__dict__.setdefault("signing_terms_hashes", {})
        if self.contract_id not in hashes:
            hashes[self.contract_id] = terms_hash(self.contract)
        if services.void_reason(self, self.contract, hashes[self.contract_id]):
            return models.SignatureRequest.Status.VOID.value
        return self.status


@strawberry.type
class Query:
    signature_request: SignatureRequest = resource_get()
    signature_requests: OffsetPaginated[SignatureRequest] = resource_list()


SignatureRequestInput = input_from_serializer("SignatureRequestInput", SignatureRequestSerializer)
SignatureRequestResult = result_union(SignatureRequest)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="REST POST /api/v1/contracts/{contractId}/approval_requests: e-mails the counterparty a link."
    )
    def create_signature_request(
        self, info: strawberry.Info, contract_id: strawberry.ID, input: SignatureRequestInput
    ) -> SignatureRequestResult:
        path = f"{API}/contracts/{pk_of(contract_id)}/approval_requests"
        return answer(models.SignatureRequest, *call_rest(info, "POST", path, body_of(input)))
