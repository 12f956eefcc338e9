"""Thirteenth round, known gaps: a posting made by hand (REST, admin) is dated within its
contract's term, as an amendment's effective date is: before the start nothing (a 422 on
`occurred_at`, as work already was); after the last day money only (a penalty or a money credit
settles the term once it is over; hours are used or given by nothing then)."""

from __future__ import annotations

import datetime as dt

import pytest

from ledger.models import LedgerEntry
from tests.contracts.factories import make_contract

pytestmark = pytest.mark.django_db

URL = "/api/v1/ledger_entries"


def posting(contract, entry_type: str, at: str, **fields) -> dict:
    return {"contract_id": contract.pk, "entry_type": entry_type, "occurred_at": at, "description": "By hand", **fields}


def test_hand_postings_before_the_start_are_refused_whatever_their_type(org, api):
    contract = make_contract(org, status="active", start_date=dt.date(2026, 2, 1), expiry_date=dt.date(2026, 6, 30))
    client = api("manager")
    before = "2026-01-31T12:00:00Z"  # 13:00 in Amsterdam, the day before the start
    cases = [
        posting(contract, "penalty", before, hours="0", amount="40.00", currency=contract.currency),
        posting(contract, "credit", before, hours="0", amount="10.00", currency=contract.currency),
        posting(contract, "credit", before, hours="5"),
        posting(contract, "adjustment", before, hours="-1"),
    ]
    for body in cases:
        response = client.post(URL, body, format="json")
        assert response.status_code == 422, (body, response.content)
        assert response.json()["errors"] == {"occurred_at": ["Must not be before the contract's start (2026-02-01)."]}
    assert not LedgerEntry.objects.filter(contract=contract).exists()
    # Its first instant is in (midnight in the contract's zone).
    first = posting(contract, "penalty", "2026-01-31T23:00:00Z", hours="0", amount="40.00", currency=contract.currency)
    assert client.post(URL, first, format="json").status_code == 201


def test_after_the_last_day_money_is_taken_and_hours_are_not(org, api):
    contract = make_contract(org, status="expired", start_date=dt.date(2026, 2, 1), expiry_date=dt.date(2026, 6, 30))
    client = api("manager")
    after = "2026-07-10T09:00:00Z"
    money = [
        posting(contract, "penalty", after, hours="0", amount="40.00", currency=contract.currency),
        posting(contract, "credit", after, hours="0", amount="10.00", currency=contract.currency),
    ]
    for body in money:
        assert client.post(URL, body, format="json").status_code == 201, body
    for body in (posting(contract, "credit", after, hours="5"), posting(contract, "adjustment", after, hours="2")):
        response = client.post(URL, body, format="json")
        assert response.status_code == 422, (body, response.content)
        [message] = response.json()["errors"]["occurred_at"]
        assert message.startswith("Must not be after the contract's end (2026-06-30)")
    # Its last day is still in.
    last = posting(contract, "credit", "2026-06-30T21:00:00Z", hours="5")  # 23:00 in Amsterdam
    assert client.post(URL, last, format="json").status_code == 201
    assert LedgerEntry.objects.filter(contract=contract).count() == 3


def test_a_terminated_contract_s_term_ends_at_its_termination(org, api, make_member, monkeypatch):
    """A terminated contract's term ends at the termination, not on the last day it had agreed:
    hours dated after it were taken (used or given by nothing, as after an expiry); money still is."""
    from django.utils import timezone

    from contracts.services import terminate_contract

    contract = make_contract(org, status="active", start_date=dt.date(2026, 2, 1), expiry_date=dt.date(2026, 6, 30))
    terminated = dt.datetime(2026, 5, 1, 10, 0, tzinfo=dt.UTC)  # 12:00 in Amsterdam
    with monkeypatch.context() as frozen:
        frozen.setattr(timezone, "now", lambda: terminated)
        terminate_contract(contract=contract, actor=make_member("manager", org).user, reason="Customer left")
    client = api("manager")
    after = "2026-05-01T10:30:00Z"  # the same day, after the termination
    for body in (posting(contract, "credit", after, hours="5"), posting(contract, "adjustment", after, hours="2")):
        response = client.post(URL, body, format="json")
        assert response.status_code == 422, (body, response.content)
        [message] = response.json()["errors"]["occurred_at"]
        assert message.startswith("Must not be after the contract's termination (2026-05-01T10:00:00+00:00)")
    money = posting(contract, "penalty", after, hours="0", amount="40.00", currency=contract.currency)
    assert client.post(URL, money, format="json").status_code == 201
    # Before the termination is in.
    before = posting(contract, "credit", "2026-05-01T09:30:00Z", hours="5")
    assert client.post(URL, before, format="json").status_code == 201, before
    assert LedgerEntry.objects.filter(contract=contract).count() == 2
