"""Postings on one contract are serialised by a row lock on the contract. On PostgreSQL these run
in real concurrent threads, each with its own connection, started together; SQLite has one writer,
so there the same scenarios run one after the other (the totals must be the same)."""

from decimal import Decimal

import pytest
from django.db import transaction

from config.api.exceptions import Conflict
from events.models import Event
from ledger import services
from ledger.models import LedgerEntry
from tests.conftest import client_for

from .helpers import DAY, T0, active_contract, credit, fresh_sum, job, post, run_at_once, running

pytestmark = pytest.mark.django_db(transaction=True)


def work_on(contract, work_order, hours):
    def target(i):
        return post(contract, "work", hours, at=T0 + DAY, now=T0 + 2 * DAY, work_order=work_order)

    return target


def assert_serialised(contract):
    """In posting order, each ledger.entry_posted carries the running balance after that entry:
    no two postings ever read the same balance."""
    remaining = Decimal(0)
    for entry in LedgerEntry.objects.filter(contract=contract).order_by("id"):
        remaining += -entry.hours if entry.entry_type == "work" else entry.hours
        event = Event.objects.get(type="ledger.entry_posted", object_id=entry.pk)
        assert Decimal(event.payload["remaining_hours"]) == remaining, entry.pk
    assert running(contract) == remaining == fresh_sum(contract)
    assert services.running_balance_errors() == []


def test_fifty_concurrent_work_postings_never_overdraw(org):
    contract = active_contract(org)
    credit(contract, 40, at=T0)
    results = run_at_once(work_on(contract, job(contract), 1), 50)
    posted = [r for r in results if isinstance(r, LedgerEntry)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert (len(posted), len(refused)) == (40, 10), [r for r in results if not isinstance(r, LedgerEntry | Conflict)]
    assert all("Not enough hours" in r.message for r in refused)
    assert running(contract) == 0
    assert services.balance(contract, as_of=T0 + 2 * DAY)["remaining_hours"] == 0
    assert_serialised(contract)


def test_fifty_concurrent_work_postings_with_overrun_all_count(org):
    contract = active_contract(org, allow_overrun=True)
    credit(contract, 10, at=T0)
    results = run_at_once(work_on(contract, job(contract), "1.25"), 50)
    assert all(isinstance(r, LedgerEntry) for r in results), results
    assert running(contract) == Decimal("-52.50")  # 10 - 50 x 1.25
    assert services.balance(contract, as_of=T0 + 2 * DAY)["overrun_hours"] == Decimal("52.50")
    assert_serialised(contract)


def test_an_overdraw_check_is_never_passed_by_two_writers(org):
    """Twenty contracts with 10 hours each; on each, two writers want 6 hours at once: one wins."""
    contracts = [active_contract(org) for _ in range(20)]
    jobs = []
    for contract in contracts:
        credit(contract, 10, at=T0)
        jobs.append(job(contract))

    def target(i):
        return post(contracts[i // 2], "work", 6, at=T0 + DAY, now=T0 + 2 * DAY, work_order=jobs[i // 2])

    results = run_at_once(target, 40)
    for n, contract in enumerate(contracts):
        pair = results[2 * n : 2 * n + 2]
        assert sorted(type(r).__name__ for r in pair) == ["Conflict", "LedgerEntry"], pair
        assert running(contract) == 4
    assert services.running_balance_errors() == []


def test_work_and_credits_interleaved(org):
    contract = active_contract(org)
    credit(contract, 5, at=T0)
    on_site = job(contract)

    def target(i):
        if i % 2:
            return post(contract, "credit", 1, at=T0 + DAY, now=T0 + 2 * DAY)
        return post(contract, "work", 2, at=T0 + DAY, now=T0 + 2 * DAY, work_order=on_site)

    results = run_at_once(target, 40)
    worked = sum(1 for r in results if isinstance(r, LedgerEntry) and r.entry_type == "work")
    assert all(isinstance(r, LedgerEntry | Conflict) for r in results), results
    assert running(contract) == 5 + 20 - 2 * worked >= 0
    assert_serialised(contract)


def test_one_idempotency_key_posts_once_however_many_retry_at_once(org, make_member):
    contract = active_contract(org)
    credit(contract, 1, at=T0)  # room for one posting only: a second would be an overdraw
    body = {
        "contract_id": contract.pk,
        "entry_type": "work",
        "hours": "1.00",
        "work_order_id": job(contract).pk,
        "occurred_at": "2026-03-03T10:00:00Z",
    }
    operator = make_member("operator", org)
    clients = [client_for(operator) for _ in range(10)]

    def target(i):
        response = clients[i].post("/api/v1/ledger_entries", body, format="json", HTTP_IDEMPOTENCY_KEY="job-7-visit")
        return response.status_code, response.json().get("id")

    results = run_at_once(target, 10)
    entry = LedgerEntry.objects.get(entry_type="work")
    assert results == [(201, entry.pk)] * 10
    assert running(contract) == 0
    assert_serialised(contract)


def test_system_postings_are_made_once_by_concurrent_runners(org):
    contracts = [active_contract(org) for _ in range(5)]
    for contract in contracts:
        credit(contract, 10, at=T0, expires_at=T0 + DAY)
        credit(contract, 10, at=T0, expires_at=T0 + 2 * DAY)
        post(contract, "work", 3, at=T0 + DAY / 2, work_order=job(contract))
    results = run_at_once(lambda i: services.expire_lots(now=T0 + 3 * DAY), 6)
    assert sum(results) == 10, results
    assert LedgerEntry.objects.filter(reason_code="lot_expired").count() == 10
    for contract in contracts:
        assert running(contract) == 0
        assert_serialised(contract)


def test_the_allocation_is_posted_once_when_the_reaction_runs_at_once(org):
    contract = active_contract(org, hours_budget=Decimal("30"))
    event = Event.objects.create(
        organization=org,
        type="contract.state_changed",
        object_type="contract",
        object_id=contract.pk,
        payload={"from": "pending_approval", "to": "active"},
        occurred_at=T0,
    )

    def target(i):
        with transaction.atomic():
            return services.on_contract_state_changed(event)

    results = run_at_once(target, 8)
    assert sorted(results) == [False] * 7 + [True]
    assert LedgerEntry.objects.get(contract=contract).hours == 30
    assert running(contract) == 30
