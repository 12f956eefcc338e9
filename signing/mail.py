"""The signature request e-mail, sent like every other e-mail: `create_request` writes the event
`contract.signature_requested`, the notifications outbox queues one e-mail for it in the same
transaction (registered in `SigningConfig.ready`), and `deliver_notifications` sends it with the
outbox's retries. The link is rebuilt here when the e-mail is sent (`services.link_token`), so the
token is in no table and in no event payload; `sent_at` is recorded once the mail server took it,
with the event `contract.signature_request_sent`.
"""

from __future__ import annotations

import datetime as dt

from notifications.emails import Content, RegisteredEmail, contract_name


def recipients(event) -> list[str]:
    return [event.payload["email"]]


def build(event, organization) -> Content:
    from .models import SignatureRequest
    from .services import link_for, link_token

    request = SignatureRequest.objects.select_related("contract").get(pk=event.payload["request"])
    contract = request.contract
    named = contract_name(contract.reference, contract.name)  # "contract C-7 (Pumps)"
    link = link_for(link_token(request.token_nonce), event.payload.get("link_base", ""))
    expires = request.expires_at.astimezone(dt.UTC)
    return Content(
        subject=f"{organization.name} asks you to review and accept {named}",
        intro=(
            f"Dear {request.name}, {organization.name} asks you to review and accept {named}. "
            "Open the link below to read its terms and accept or reject it. The link "
            f"can be used once and expires on {expires:%Y-%m-%d %H:%M} UTC; it stops working if the terms "
            "change before you decide."
        ),
        facts=[("Contract", named.removeprefix("contract ")), ("Link expires", f"{expires:%Y-%m-%d %H:%M} UTC")],
        links=[("Review and accept or reject", link)],
        why=f"You get this because {organization.name} named you as the person to approve this contract.",
    )


def sent(event, now) -> None:
    """Record that the mail server took the request's e-mail: `sent_at`, and the event
    `contract.signature_request_sent` about the contract (as `contract.signature_requested`), in
    the worker's transaction that marks the e-mail sent. Once: a request already marked is left
    alone. The request's row is locked before the event's order, as `services.decide` does."""
    from events.services import record_event

    from .models import SignatureRequest

    request = (
        SignatureRequest.objects.select_for_update(of=("self",))
        .select_related("contract")
        .filter(pk=event.payload["request"], sent_at__isnull=True)
        .first()
    )
    if request is None:
        return
    request.sent_at = now
    request.save(update_fields=["sent_at"])
    record_event(
        type="contract.signature_request_sent",
        obj=request.contract,
        actor=None,
        payload={"request": request.pk, "name": request.name, "email": request.email, "sent_at": request.sent_at},
        occurred_at=now,
    )


SIGNATURE_REQUEST = RegisteredEmail(kind="signature_request", recipients=recipients, build=build, sent=sent)
