"""A create that loses the race for a sourceID gets the 409 naming the winner, as a later one does.

The serializer's check names the existing row; two creates at once both pass it and the unique
constraint stops the second, which answered a generic "Conflicting write ... Retry." (found by an
outside tester: 15 of 16 parallel POSTs), inviting a dispatch system to send it again. Forced here:
the winner's insert is open while the request checks, and commits once the request waits on it.
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from model_bakery import baker

from contracts.models import Counterparty
from tests.contracts.factories import make_contract
from tests.locking import start, wait_until_blocked
from tests.workorders.factories import make_job

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent transactions (SQLite has one writer)"),
]


def race(client, url: str, body: dict, create_winner):
    with transaction.atomic():
        winner = create_winner()
        request = start(lambda: client.post(url, body, format="json"))
        wait_until_blocked(request)  # on the winner's uncommitted row in the unique index
    response = request.finish().result
    assert request.error is None, repr(request.error)
    return winner, response


def test_a_job_that_lost_the_race_for_its_source_id_is_told_the_winner(org, api):
    contract = make_contract(org, status="active")
    body = {
        "reference": "WO-2",
        "summary": "Fire pump fails to start",
        "source": "disp",
        "sourceID": "RACE-1",
        "contract_id": contract.pk,
        "priority": "high",
        "reported_at": "2026-01-09T15:00:00Z",
    }
    winner, response = race(
        api("operator"),
        "/api/v1/work_orders",
        body,
        lambda: make_job(org, contract=contract, source="disp", source_id="RACE-1"),
    )
    assert response.status_code == 409, response.content
    assert response.json() == {
        "message": f"sourceID 'RACE-1' is already used in source 'disp' by id {winner.pk}.",
        "errors": {"sourceID": [f"Already used by id {winner.pk}."]},
    }


def test_a_counterparty_that_lost_the_race_for_its_source_id_is_told_the_winner(org, api):
    winner, response = race(
        api("manager"),
        "/api/v1/counterparties",
        {"name": "Acme", "sourceID": "CP-1"},
        lambda: baker.make(Counterparty, organization=org, name="Acme", source="", source_id="CP-1"),
    )
    assert response.status_code == 409, response.content
    assert response.json()["message"] == f"sourceID 'CP-1' is already used in source '' by id {winner.pk}."
