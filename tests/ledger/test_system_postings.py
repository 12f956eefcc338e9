"""What the system posts itself, each exactly once however often the triggering code runs: the
initial allocation, a renewal's hours, a final breach's penalty and, when it is waived, its reversal."""

import datetime as dt
from decimal import Decimal

import pytest

from breaches.models import Breach
from breaches.services import scan_breaches, waive_breach
from contracts.models import Contract
from contracts.services import (
    approve_contract,
    renew_contract,
    resume_contract,
    run_lifecycle,
    submit_contract,
    suspend_contract,
)
from events.handlers import dispatch
from events.models import Event
from ledger import services
from ledger.models import LedgerEntry
from slas.services import create_rule
from tests.contracts.factories import make_contract
from workorders.services import update_work_order

from .helpers import DAY, T0, UTC, active_contract, final_breach, job, penalty_rule, running, work

AMSTERDAM_MIDNIGHT_2026 = dt.datetime(2025, 12, 31, 23, 0, tzinfo=UTC)  # 2026-01-01 00:00 in Amsterdam
AMSTERDAM_MIDNIGHT_2027 = dt.datetime(2026, 12, 31, 23, 0, tzinfo=UTC)  # 2027-01-01 00:00 in Amsterdam


def approved(contract: Contract, make_member, org, now=T0) -> Contract:
    """Submitted by one manager, approved by two others (dual approval)."""
    submit_contract(contract=contract, actor=make_member("manager", org).user)
    for _ in range(2):
        approve_contract(contract=contract, actor=make_member("manager", org).user, now=now)
    contract.refresh_from_db()
    return contract


def state_changes(contract: Contract):
    return Event.objects.filter(type="contract.state_changed", object_id=contract.pk).order_by("id")


@pytest.mark.django_db
class TestAllocation:
    def test_a_contract_that_becomes_active_gets_its_hours_budget_once(self, org, make_member):
        contract = approved(make_contract(org, hours_budget=Decimal("40")), make_member, org)
        assert contract.status == "active"
        entry = LedgerEntry.objects.get(contract=contract)
        assert (entry.entry_type, entry.reason_code, entry.hours) == ("initial_allocation", "system", 40)
        # The hours belong to the contract's period: from the start of its start date to the end of
        # its expiry date, in its time zone.
        assert entry.occurred_at == AMSTERDAM_MIDNIGHT_2026
        assert entry.expires_at == AMSTERDAM_MIDNIGHT_2027
        assert entry.created_by is None and entry.system_key == f"allocation:contract:{contract.pk}"
        assert running(contract) == 40
        # The second approval activated it: the posting is that approver's, as the activation is.
        activation = state_changes(contract).last()
        assert activation.actor is not None
        assert Event.objects.filter(
            type="ledger.entry_posted", object_id=entry.pk, actor=activation.actor, occurred_at=activation.occurred_at
        ).count() == 1
        # The triggering code runs again: nothing more.
        activation = state_changes(contract).last()
        # (Other apps' handlers of the same event, e.g. visit plans', may answer too.)
        assert dispatch(activation)["ledger.services.on_contract_state_changed"] is False
        # Suspending and resuming is not a first activation.
        suspend_contract(contract=contract, actor=None, reason="unpaid invoice")
        resume_contract(contract=contract, actor=None)
        assert LedgerEntry.objects.filter(contract=contract).count() == 1
        assert running(contract) == 40

    def test_approved_through_the_api_the_contract_shows_its_hours(self, api, org):
        contract = make_contract(org, hours_budget=Decimal("12.50"))
        assert api("manager").post(f"/api/v1/contracts/{contract.pk}/submit", {}, format="json").status_code == 200
        api("manager").post(f"/api/v1/contracts/{contract.pk}/approve", {}, format="json")
        response = api("manager").post(f"/api/v1/contracts/{contract.pk}/approve", {}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "active"
        assert response.json()["remaining_hours"] == "12.50"
        assert api("viewer").get(f"/api/v1/contracts/{contract.pk}").json()["remaining_hours"] == "12.50"

    def test_no_hours_budget_no_allocation(self, org, make_member):
        contract = approved(make_contract(org), make_member, org)
        assert contract.status == "active"
        assert not LedgerEntry.objects.filter(contract=contract).exists()

    def test_a_scheduled_contract_gets_its_hours_when_run_lifecycle_activates_it(self, org, make_member):
        contract = make_contract(org, hours_budget=Decimal("8"), start_date=dt.date(2026, 4, 1))
        contract = approved(contract, make_member, org, now=T0)
        assert contract.status == "scheduled"
        assert not LedgerEntry.objects.filter(contract=contract).exists()
        start = dt.datetime(2026, 3, 31, 22, 0, tzinfo=UTC)  # 2026-04-01 00:00 in Amsterdam (summer time)
        assert run_lifecycle(now=start - dt.timedelta(seconds=1)).activated == 0
        assert run_lifecycle(now=start).activated == 1
        run_lifecycle(now=start + DAY)
        entry = LedgerEntry.objects.get(contract=contract)
        assert (entry.entry_type, entry.hours, entry.occurred_at) == ("initial_allocation", 8, start)
        assert running(contract) == 8
        # The run's events, the posting's included, are of the run's `now`, not of the wall clock.
        posted = Event.objects.get(type="ledger.entry_posted", object_id=entry.pk)
        assert posted.occurred_at == state_changes(contract).last().occurred_at == start

    def test_the_allocation_is_posted_once_even_when_asked_directly_again(self, org, make_member):
        contract = approved(make_contract(org, hours_budget=Decimal("5")), make_member, org)
        activation = state_changes(contract).last()
        assert services.on_contract_state_changed(activation) is False
        again = services.post_system_entry(
            contract=contract,
            system_key=f"allocation:contract:{contract.pk}",
            entry_type="initial_allocation",
            hours=Decimal("5"),
            occurred_at=T0,
        )
        assert again is None
        assert LedgerEntry.objects.filter(contract=contract).count() == 1
        assert running(contract) == 5


@pytest.mark.django_db
class TestRenewal:
    def test_an_auto_renewal_gets_its_hours_and_the_original_lot_expires(self, org, make_member):
        original = make_contract(org, hours_budget=Decimal("40"), auto_renew=True, renewal_term_months=12)
        original = approved(original, make_member, org)
        work(original, 15, at=T0)
        summary = run_lifecycle(now=AMSTERDAM_MIDNIGHT_2027)
        assert summary.auto_renewed == 1
        renewal = Contract.objects.get(renewed_from=original)
        entry = LedgerEntry.objects.get(contract=renewal)
        assert (entry.entry_type, entry.reason_code, entry.hours) == ("renewal", "system", 40)
        assert entry.occurred_at == AMSTERDAM_MIDNIGHT_2027
        assert entry.expires_at == dt.datetime(2027, 12, 31, 23, 0, tzinfo=UTC)
        assert running(renewal) == 40
        # The original's 25 unused hours expired with it (they do not carry over).
        expiry = LedgerEntry.objects.get(contract=original, reason_code="lot_expired")
        assert expiry.hours == -25 and expiry.occurred_at == AMSTERDAM_MIDNIGHT_2027
        assert running(original) == 0
        for later in (AMSTERDAM_MIDNIGHT_2027, AMSTERDAM_MIDNIGHT_2027 + DAY):
            run_lifecycle(now=later)
        assert LedgerEntry.objects.filter(contract=renewal).count() == 1
        assert LedgerEntry.objects.filter(contract=original, reason_code="lot_expired").count() == 1

    def test_a_renewal_drafted_by_hand_gets_its_hours_when_it_starts(self, org, make_member):
        original = approved(make_contract(org, hours_budget=Decimal("40")), make_member, org)
        renewal = renew_contract(contract=original, actor=None, now=T0)
        renewal = approved(renewal, make_member, org, now=T0)
        assert renewal.status == "scheduled"
        run_lifecycle(now=AMSTERDAM_MIDNIGHT_2027)
        renewal.refresh_from_db()
        assert renewal.status == "active"
        assert list(LedgerEntry.objects.filter(contract=renewal).values_list("entry_type", "hours")) == [
            ("renewal", 40)
        ]


@pytest.mark.django_db
class TestPenalties:
    def test_a_final_breachs_penalty_is_posted_once(self, org):
        contract = active_contract(org)
        penalty_rule(contract)
        breach = final_breach(contract)
        entry = LedgerEntry.objects.get(breach=breach)
        assert (entry.entry_type, entry.reason_code, entry.hours) == ("penalty", "system", 0)
        assert (entry.amount, entry.currency) == (Decimal("150.00"), "EUR")
        assert entry.work_order_id == breach.work_order_id
        assert entry.occurred_at == T0 + dt.timedelta(minutes=90)  # when the late response stopped the clock
        assert running(contract) == 0  # money moves no hours
        finalized = Event.objects.get(type="breach.finalized", object_id=breach.pk)
        assert dispatch(finalized)["ledger.services.on_breach_finalized"] is False
        scan_breaches(now=T0 + DAY)
        scan_breaches(now=T0 + 2 * DAY)
        assert LedgerEntry.objects.filter(breach=breach).count() == 1

    def test_waiving_through_the_api_reverses_the_penalty_once(self, api, org):
        contract = active_contract(org)
        penalty_rule(contract)
        breach = final_breach(contract)
        kept = final_breach(contract, reported_at=T0 + DAY)
        client = api("manager")
        response = client.post(
            f"/api/v1/breaches/{breach.pk}/waive", {"reason": "Access denied by site"}, format="json"
        )
        assert response.status_code == 200, response.content
        penalty = LedgerEntry.objects.get(breach=breach, reason_code="system")
        reversal = LedgerEntry.objects.get(breach=breach, reason_code="penalty_reversal")
        assert (reversal.entry_type, reversal.amount, reversal.currency) == ("penalty", Decimal("-150.00"), "EUR")
        assert reversal.reverses == penalty and reversal.work_order_id == breach.work_order_id
        assert reversal.system_key == f"penalty_reversal:breach:{breach.pk}"
        listed = client.get(f"/api/v1/ledger_entries?breach_id={breach.pk}").json()
        assert [(e["reason_code"], e["amount"]) for e in listed] == [
            ("penalty_reversal", "-150.00"),
            ("system", "150.00"),
        ]
        # Waiving again is refused; the reaction re-run posts nothing.
        assert client.post(f"/api/v1/breaches/{breach.pk}/waive", {"reason": "again"}, format="json").status_code == 409
        waived = Event.objects.get(type="breach.waived", object_id=breach.pk)
        assert dispatch(waived)["ledger.services.on_breach_waived"] is False
        assert LedgerEntry.objects.filter(breach=breach).count() == 2
        assert LedgerEntry.objects.filter(breach=kept).count() == 1
        balance = api("viewer").get(f"/api/v1/contracts/{contract.pk}/balance").json()
        assert balance["penalties"] == {"EUR": {"accrued": "300.00", "waived": "150.00"}}

    def test_a_penaltys_event_writes_its_hours_as_every_entry_does(self, api, org):
        """Found by an outside test: the penalty's `ledger.entry_posted` had `"hours": 0` (the
        model's int default), where REST and every other entry's event write "0.00"."""
        contract = active_contract(org)
        penalty_rule(contract)
        entry = LedgerEntry.objects.get(breach=final_breach(contract))
        client = api("manager")
        [event] = client.get(f"/api/v1/events?type=ledger.entry_posted&object_id={entry.pk}").json()
        shown = client.get(f"/api/v1/ledger_entries/{entry.pk}").json()
        assert (event["payload"]["hours"], event["payload"]["charged_hours"]) == ("0.00", "0.00")
        assert (shown["hours"], shown["charged_hours"]) == ("0.00", "0.00")
        assert (event["payload"]["amount"], event["payload"]["remaining_hours"]) == ("150.00", "0.00")

    def test_a_penalty_posted_by_a_persons_change_is_theirs_and_of_its_instant(self, api, org):
        """Found by an outside test: the penalty posted when an operator's update finalised a breach
        had no actor and the wall clock's instant, while the job's and the breach's events of the
        same transaction carried the operator and the update's instant."""
        contract = active_contract(org)
        penalty_rule(contract)
        late = job(contract, priority="high")
        response = api("operator").patch(
            f"/api/v1/work_orders/{late.pk}",
            {"status": "in_progress", "responded_at": (T0 + dt.timedelta(minutes=90)).isoformat()},
            format="json",
        )
        assert response.status_code == 200, response.content
        log = api("manager").get("/api/v1/events?since=0&per_page=100&sort=id").json()
        finalized = next(e for e in log if e["type"] == "breach.finalized")
        posted = next(e for e in log if e["type"] == "ledger.entry_posted")
        assert finalized["actor"] is not None
        assert (posted["actor"], posted["occurred_at"]) == (finalized["actor"], finalized["occurred_at"])

    def test_penalties_keep_the_currencys_minor_unit(self, api, org):
        contract = active_contract(org, currency="JPY")
        penalty_rule(contract, fixed_amount="1500.4")
        breach = final_breach(contract)
        assert LedgerEntry.objects.get(breach=breach).amount == 1500
        balance = api("viewer").get(f"/api/v1/contracts/{contract.pk}/balance").json()
        assert balance["penalties"] == {"JPY": {"accrued": "1500", "waived": "0"}}

    def test_a_breach_waived_before_it_is_final_is_never_posted(self, org):
        contract = active_contract(org)
        penalty_rule(contract)
        running_job = job(contract, priority="high")
        scan_breaches(now=T0 + 2 * dt.timedelta(hours=1))
        breach = Breach.objects.get(work_order=running_job)
        assert not breach.final
        waive_breach(breach=breach, actor=None, reason="Customer postponed the visit")
        update_work_order(
            instance=running_job,
            actor=None,
            data={"responded_at": T0 + dt.timedelta(hours=2, minutes=30)},
            now=T0 + dt.timedelta(hours=3),
        )
        breach.refresh_from_db()
        assert breach.final
        assert Event.objects.filter(type="breach.finalized", object_id=breach.pk).exists()
        assert not LedgerEntry.objects.filter(breach=breach).exists()

    def test_a_breach_without_a_penalty_posts_nothing(self, org):
        contract = active_contract(org)
        create_rule(
            organization=org,
            actor=None,
            data={
                "contract": contract,
                "name": "Respond within an hour",
                "metric": "response",
                "priorities": ["high"],
                "target_minutes": 60,
                "effective_from": dt.datetime(2026, 1, 1, tzinfo=UTC),
            },
        )
        late = job(contract, priority="high", responded_at=T0 + dt.timedelta(minutes=90))
        breach = Breach.objects.get(work_order=late)
        assert breach.final and breach.penalty_amount == 0
        assert not LedgerEntry.objects.exists()
        waive_breach(breach=breach, actor=None, reason="no penalty anyway")
        assert not LedgerEntry.objects.exists()
