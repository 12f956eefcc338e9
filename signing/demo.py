"""Demo signature request: the counterparty of the pending DEMO-MU-001 is asked to accept it
(the e-mail with the link is queued in the outbox; `deliver_notifications` sends it, and the
console e-mail backend of `make run` prints it)."""

from django.conf import settings
from django.contrib.auth import get_user_model

from contracts.models import Contract

from . import services
from .models import SignatureRequest


def seed(log) -> None:
    contract = Contract.objects.filter(reference="DEMO-MU-001", status="pending_approval").first()
    if contract is None or SignatureRequest.objects.filter(contract=contract).exists():
        return
    services.create_request(
        contract=contract,
        actor=get_user_model().objects.get(username="demo-manager"),
        data={"name": "Dana Reyes", "email": "contracts@rem.example"},
        link_base=settings.SITE_URL,  # the address `make run` serves (it sets SITE_URL), whoever sends the mail
    )
    log(f"a signature request for {contract.reference} (the link goes out by e-mail)")
