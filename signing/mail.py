"""Sending the signature request e-mail: one small function, so that it can be routed through
the notifications outbox (`deliver_notifications`) once that exists, instead of being sent
directly after the commit as it is now."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

logger = logging.getLogger("signing")


def send_signature_request(*, request_id: int, to: str, name: str, contract_name: str, link: str, expires_at) -> bool:
    """Send the link; record `sent_at`. A failure is logged (the request stays unsent; send a new one)."""
    from .models import SignatureRequest

    body = (
        f"Dear {name},\n\n"
        f'You are asked to review and accept the contract "{contract_name}".\n\n'
        f"Open this link to read its terms and accept or reject it:\n{link}\n\n"
        f"The link can be used once and expires on {expires_at:%Y-%m-%d %H:%M} UTC. "
        "It stops working if the terms change before you decide.\n"
    )
    try:
        send_mail(
            subject=f"Please review the contract: {contract_name}",
            message=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[to],
        )
    except Exception:  # an unreachable mail server must not turn a committed request into an error
        logger.exception("signature request %s: sending the e-mail failed", request_id)
        return False
    SignatureRequest.objects.filter(pk=request_id).update(sent_at=timezone.now())
    return True
