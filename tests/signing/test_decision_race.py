"""A counterparty's decision on a link is checked against the contract as it is under the contract's
lock, not as it was read before waiting for it (PostgreSQL, a fixed interleaving).

`decide` checked the link (still waiting for this approval round) and then waited for the contract's
lock: a rejection committed meanwhile started a new round, and the decision was still recorded as
accepted, with its `contract.counterparty_accepted` event, and the signer was told it worked. Forced
here: the rejection is open while the signer posts, and commits once the decision waits on it (as
tests/contracts/test_asset_move_race.py).
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from contracts import services as contract_services
from events.models import Event
from signing.models import SignatureRequest
from tests.locking import start, wait_until_blocked
from tests.signing.test_signing import browser, form_of, send_request, signed_contract  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent transactions (SQLite has one writer)"),
]


def test_a_decision_waiting_while_the_contract_is_rejected_is_told_the_link_is_void(
    api,
    org,
    make_member,
    signed_contract,  # noqa: F811
):
    _, path = send_request(api, signed_contract)
    client = browser()
    fields = {**form_of(client.get(path).content.decode()), "name": "Jo", "email": "jo@customer.example",
              "signature": "Jo", "decision": "accept"}  # fmt: skip
    manager = make_member("manager", org).user
    with transaction.atomic():
        contract_services.reject_contract(contract=signed_contract, actor=manager, reason="redo the SLA")
        decision = start(lambda: client.post(path, fields))
        wait_until_blocked(decision)  # on the rejection's lock of the contract
    response = decision.finish().result
    assert decision.error is None, repr(decision.error)
    # What a decision on the link answers a moment later.
    assert response.status_code == 410, response.content
    assert "no longer waiting for this approval" in response.content.decode()
    assert SignatureRequest.objects.get().status == SignatureRequest.Status.PENDING
    assert not Event.objects.filter(type="contract.counterparty_accepted").exists()
