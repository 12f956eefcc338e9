"""Demo signature request: the counterparty of the pending DEMO-MU-001 is asked to accept it
(the link is printed by the console e-mail backend of `make run`)."""

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
        link_for=lambda token: f"{settings.SIGNING_BASE_URL or 'http://127.0.0.1:8000'}/approve/{token}",
    )
    log(f"a signature request for {contract.reference} (the link goes out by e-mail)")
