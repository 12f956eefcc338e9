"""A create that a constraint stops after its checks passed is told what the same request is told a
moment later: the 422 naming the field, not "Conflicting write ... Retry.", which could only lead
there (found by an outside tester: 3 of 8 parallel POSTs of one reference; a create racing the
delete of the counterparty it names). Forced here: the winning write is open while the request
checks, and commits once the request waits on it (as tests/workorders/test_source_id_race.py).
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from model_bakery import baker

from contracts.models import Contract, Counterparty
from tests.contracts.factories import make_contract
from tests.locking import start, wait_until_blocked
from tests.slas.factories import make_calendar

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent transactions (SQLite has one writer)"),
]


def contract_body(counterparty, reference="R-1") -> dict:
    return {
        "reference": reference,
        "name": "x",
        "counterparty_id": counterparty.pk,
        "contract_type": "service_contract",
        "counterparty_role": "customer",
        "start_date": "2027-01-01",
        "expiry_date": "2027-12-31",
    }


def race(client, method: str, url: str, body: dict, winning_write):
    client.get("/api/v1/me")  # the URLconf and the views imported before the clock of the wait starts
    with transaction.atomic():
        winner = winning_write()
        request = start(lambda: getattr(client, method)(url, body, format="json"))
        wait_until_blocked(request)  # on the winner's uncommitted row (a unique index, a foreign key)
    response = request.finish().result
    assert request.error is None, repr(request.error)
    return winner, response


def test_a_contract_that_lost_the_race_for_its_reference_is_told_the_winner(org, api):
    party = baker.make(Counterparty, organization=org)
    winner, response = race(
        api("manager"), "post", "/api/v1/contracts", contract_body(party), lambda: make_contract(org, reference="R-1")
    )
    assert response.status_code == 422, response.content
    assert response.json()["errors"] == {"reference": [f"Already used by contract {winner.pk}."]}
    assert Contract.objects.filter(reference="R-1").count() == 1


def test_a_rename_that_lost_the_race_for_a_calendar_name_is_told_the_winner(org, api):
    calendar = make_calendar(org, name="Office")
    winner, response = race(
        api("manager"),
        "patch",
        f"/api/v1/calendars/{calendar.pk}",
        {"name": "Night"},
        lambda: make_calendar(org, name="Night"),
    )
    assert response.status_code == 422, response.content
    assert response.json()["errors"] == {"name": [f"Already used by calendar {winner.pk}."]}


def test_a_contract_whose_counterparty_was_deleted_meanwhile_is_told_it_does_not_exist(org, api):
    party = baker.make(Counterparty, organization=org)

    def delete_party():
        Counterparty.objects.filter(pk=party.pk).delete()
        return party

    _, response = race(api("manager"), "post", "/api/v1/contracts", contract_body(party), delete_party)
    assert response.status_code == 422, response.content
    assert list(response.json()["errors"]) == ["counterparty_id"]
    assert not Contract.objects.exists()


def test_graphql_is_told_the_winner_as_rest_is(org, api):
    party = baker.make(Counterparty, organization=org)
    query = (
        'mutation { createContract(input: {reference: "R-1", name: "x", contractType: "service_contract", '
        f'counterpartyId: {party.pk}, counterpartyRole: "customer", startDate: "2027-01-01", '
        'expiryDate: "2027-12-31"}) { ... on OperationError { kind fields { path messages } } } }'
    )
    winner, response = race(
        api("manager"), "post", "/api/graphql", {"query": query}, lambda: make_contract(org, reference="R-1")
    )
    assert response.status_code == 200, response.content
    assert response.json()["data"]["createContract"] == {
        "kind": "INVALID",
        "fields": [{"path": "reference", "messages": [f"Already used by contract {winner.pk}."]}],
    }


def test_graphql_is_told_a_deleted_counterparty_does_not_exist_as_rest_is(org, api):
    """The mutation ran the REST endpoint inside a transaction of its own, so the foreign key was
    checked at that transaction's commit, after the endpoint had answered: "Internal server error."."""
    party = baker.make(Counterparty, organization=org)
    query = (
        'mutation { createContract(input: {reference: "R-1", name: "x", contractType: "service_contract", '
        f'counterpartyId: {party.pk}, counterpartyRole: "customer", startDate: "2027-01-01", '
        'expiryDate: "2027-12-31"}) { ... on OperationError { kind fields { path messages } } } }'
    )

    def delete_party():
        Counterparty.objects.filter(pk=party.pk).delete()
        return party

    _, response = race(api("manager"), "post", "/api/graphql", {"query": query}, delete_party)
    assert response.status_code == 200, response.content
    assert response.json()["data"]["createContract"] == {
        "kind": "INVALID",
        "fields": [{"path": "counterpartyId", "messages": [f"Counterparty {party.pk} does not exist."]}],
    }
    assert not Contract.objects.exists()
