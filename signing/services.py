"""Counterparty approval by a signed link.

- `create_request`: a manager asks the counterparty of a contract pending approval; the link's
  token is HMAC-SHA256(SECRET_KEY, a random nonce), only its SHA-256 and the nonce are stored,
  and the e-mail is queued in the notifications outbox in the same transaction (its event,
  `contract.signature_requested`), sent like every other e-mail by `deliver_notifications`
  with its retries (`mail`, which re-derives the token when it sends).
- `open_request`: the page's look-up by token; every refusal is a `Refusal` with a clear reason
  (unknown, used, expired, void) that the page shows.
- `decide`: the signer's accept or reject, recorded once with IP address, user agent, instant and
  the hash of the terms shown; an acceptance may complete the contract's approval (a contract
  that requires a counterparty signature waits for one, `signature_missing` is its gate).

Each write records one event in the same transaction.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from config.errors import Conflict
from contracts import services as contract_services
from contracts.models import Contract
from events.services import record_event

from .documents import terms_hash
from .models import SignatureRequest


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link_lifetime() -> dt.timedelta:
    return dt.timedelta(days=settings.SIGNING_LINK_DAYS)


def void_reason(
    request: SignatureRequest, contract: Contract, current_hash: str | Callable[[], str] | None = None
) -> str | None:
    """Why a pending request no longer holds (None: it still does). Of the request only its
    `approval_round` and `terms_hash` are read. The terms' current hash may be given, or a function
    giving it, called only when the contract still waits for the request's round."""
    if contract.status != Contract.Status.PENDING_APPROVAL or contract.approval_round != request.approval_round:
        return "The contract is no longer waiting for this approval."
    current = current_hash() if callable(current_hash) else current_hash or terms_hash(contract)
    if current != request.terms_hash:
        return "The terms have changed since this link was sent."
    return None


def current_status(
    request: SignatureRequest, now: dt.datetime | None = None, current_hash: str | Callable[[], str] | None = None
) -> str:
    """The state as it stands now: a pending request may have expired or become void meanwhile.
    `current_hash` as for `void_reason` (a list reads each contract's terms once)."""
    if request.status != SignatureRequest.Status.PENDING:
        return request.status
    if (now or timezone.now()) >= request.expires_at:
        return SignatureRequest.Status.EXPIRED
    if void_reason(request, request.contract, current_hash):
        return SignatureRequest.Status.VOID
    return request.status


def with_current_status(requests, status: str, now: dt.datetime | None = None):
    """`requests` narrowed to those whose `current_status` is `status`, as one SQL filter. Only the
    terms' hash is not SQL: it is read once per contract that still waits for a live request's
    round (the rest are void or expired by their columns alone)."""
    Status = SignatureRequest.Status
    if status in (Status.ACCEPTED, Status.REJECTED):
        return requests.filter(status=status)
    now = now or timezone.now()
    pending = Q(status=Status.PENDING)
    unexpired = pending & Q(expires_at__gt=now)
    if status == Status.EXPIRED:
        return requests.filter(Q(status=Status.EXPIRED) | (pending & Q(expires_at__lte=now)))
    waiting = unexpired & Q(
        contract__status=Contract.Status.PENDING_APPROVAL, contract__approval_round=F("approval_round")
    )
    contracts = Contract.objects.filter(pk__in=requests.filter(waiting).values("contract_id"))
    live = Q(pk__in=[])
    for contract in contracts.select_related("counterparty"):
        live |= Q(contract_id=contract.pk, terms_hash=terms_hash(contract))
    if status == Status.PENDING:
        return requests.filter(waiting & live)
    return requests.filter(Q(status=Status.VOID) | (unexpired & ~(waiting & live)))


def link_token(nonce: str) -> str:
    """The link's token: pseudo-random, derived from a random nonce with the server's key (so the
    outbox can rebuild the link when it sends the e-mail, and a copy of the database cannot)."""
    digest = salted_hmac("signing.link", nonce, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def link_for(token: str, base: str = "") -> str:
    """The page's address: on SIGNING_BASE_URL, else on `base` (the address the API was called
    on), else on SITE_URL like the links of every e-mail."""
    root = settings.SIGNING_BASE_URL or base or settings.SITE_URL
    return root.rstrip("/") + reverse("signing:page", args=[token])


@transaction.atomic
def create_request(
    *, contract: Contract, actor, data: dict, link_base: str = "", now: dt.datetime | None = None
) -> SignatureRequest:
    """Ask `data["name"]` at `data["email"]` to accept the contract (pending approval) by a link."""
    now = now or timezone.now()
    contract = contract_services._locked(contract)
    if contract.status != Contract.Status.PENDING_APPROVAL:
        raise Conflict(
            f"Only a contract pending approval can be sent for signature; this one is {contract.status}. "
            "Submit it first."
        )
    nonce = secrets.token_urlsafe(32)
    request = SignatureRequest.objects.create(
        organization_id=contract.organization_id,
        contract=contract,
        approval_round=contract.approval_round,
        name=data["name"],
        email=data["email"],
        token_hash=token_hash(link_token(nonce)),
        token_nonce=nonce,
        terms_hash=terms_hash(contract),
        expires_at=now + link_lifetime(),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    record_event(
        type="contract.signature_requested",
        obj=contract,
        actor=actor,
        payload={"request": request.pk, "name": request.name, "email": request.email, "terms_hash": request.terms_hash,
                 "expires_at": request.expires_at, "link_base": link_base},
        occurred_at=now,
    )  # fmt: skip
    return request


@dataclass
class Refusal(Exception):
    """Why a link cannot be used; the page shows `title` and `detail` with `status`."""

    title: str
    detail: str
    status: int = 410


def open_request(
    token: str, *, now: dt.datetime | None = None, for_update: bool = False, current_hash: str | None = None
) -> SignatureRequest:
    """The pending request of a token, with its contract; else a `Refusal` saying why not.
    `current_hash`: the contract's terms hash, when the caller has it (as for `void_reason`)."""
    now = now or timezone.now()
    requests = SignatureRequest.objects.select_related("contract__counterparty", "contract__organization")
    if for_update:
        requests = requests.select_for_update(of=("self",))
    request = requests.filter(token_hash=token_hash(token)).first() if token else None
    if request is None:
        raise Refusal("Link not recognised", "This approval link is not valid. Check that you opened the whole "
                      "link from the e-mail, or ask the sender for a new one.", 404)  # fmt: skip
    if request.status in (SignatureRequest.Status.ACCEPTED, SignatureRequest.Status.REJECTED):
        verb = "accept" if request.status == SignatureRequest.Status.ACCEPTED else "reject"
        raise Refusal(
            "Link already used",
            f"This link was used on {request.decided_at:%Y-%m-%d %H:%M} UTC to {verb} the contract. "
            "Each link works once.",
        )
    if request.status == SignatureRequest.Status.VOID:
        raise Refusal("Link no longer valid", request.void_reason or "This link is void. Ask the sender for a new one.")
    if request.status == SignatureRequest.Status.EXPIRED or now >= request.expires_at:
        raise Refusal("Link expired", f"This link expired on {request.expires_at:%Y-%m-%d %H:%M} UTC. "
                      "Ask the sender for a new one.")  # fmt: skip
    reason = void_reason(request, request.contract, current_hash)
    if reason:
        raise Refusal("Link no longer valid", f"{reason} Ask the sender for a new link.")
    return request


@transaction.atomic
def decide(
    *,
    token: str,
    accept: bool,
    signer_name: str,
    signer_email: str,
    signature: str,
    reason: str,
    shown_terms_hash: str,
    ip_address: str | None,
    user_agent: str,
    now: dt.datetime | None = None,
) -> SignatureRequest:
    """Record the signer's decision once. The terms hash shown on the page must still be the
    current one (else the terms changed while the page was open: void)."""
    now = now or timezone.now()
    request = open_request(token, now=now)
    contract = contract_services._locked(request.contract)
    current = terms_hash(contract)
    # Checked again under the contract's lock (and the order before the request's row): a rejection,
    # a new round or another decision on the link may have committed while this waited for it.
    request = open_request(token, now=now, for_update=True, current_hash=current)
    request.contract = contract
    if shown_terms_hash != current:
        raise Refusal("Terms changed", "The terms changed while the page was open, so this decision was not "
                      "recorded. Ask the sender for a new link.", 409)  # fmt: skip
    request.status = SignatureRequest.Status.ACCEPTED if accept else SignatureRequest.Status.REJECTED
    request.decided_at = now
    request.signer_name, request.signer_email, request.signature = signer_name, signer_email, signature
    request.reason = reason
    request.ip_address, request.user_agent = ip_address, user_agent[:1000]
    request.signed_terms_hash = current
    request.save()
    record_event(
        type="contract.counterparty_accepted" if accept else "contract.counterparty_rejected",
        obj=contract,
        actor=None,
        payload={
            "request": request.pk, "signer_name": signer_name, "signer_email": signer_email, "signature": signature,
            "reason": reason, "ip_address": ip_address, "user_agent": request.user_agent, "terms_hash": current,
            "decided_at": now,
        },
        occurred_at=now,
    )  # fmt: skip
    if accept:
        contract_services.complete_approval_if_ready(contract=contract, reason="counterparty signature", now=now)
    return request


def signature_missing(contract: Contract) -> str | None:
    """The activation gate: a contract that requires it needs an accepted signature of its current
    round on the terms it has now."""
    if not contract.requires_counterparty_signature:
        return None
    accepted = SignatureRequest.objects.filter(
        contract=contract, approval_round=contract.approval_round, status=SignatureRequest.Status.ACCEPTED
    ).values_list("signed_terms_hash", flat=True)
    if accepted and terms_hash(contract) in set(accepted):
        return None
    return "the counterparty's signature"
