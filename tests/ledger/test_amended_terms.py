"""Issue 14: the ledger follows the terms in force. An approved amendment that moves the expiry
or changes the hours budget reaches the contract's lots from its effective date (through the
API), and balances as of any earlier instant keep their answer."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command

from config.errors import Conflict
from ledger.models import LedgerEntry
from ledger.services import lots_closed_at
from tests.contracts.factories import make_contract

from .helpers import T0, h, work
from .test_system_postings import approved

R = LedgerEntry.Reason
BEFORE = "2027-02-28T12:00:00Z"  # the day before the amendment's date
AFTER = "2027-03-02T12:00:00Z"


def lifecycle(now: str) -> None:
    call_command("run_lifecycle", "--now", now, stdout=io.StringIO())


@pytest.fixture
def managers(api):
    return api("manager"), api("manager"), api("manager")


def amend_and_approve(managers, contract, changes, effective_date="2027-03-01"):
    author, first, second = managers
    body = {"effective_date": effective_date, "changes": changes, "reason": "Longer term"}
    created = author.post(f"/api/v1/contracts/{contract.pk}/amendments", body, format="json")
    assert created.status_code == 201, created.content
    url = f"/api/v1/contracts/{contract.pk}/amendments/{created.json()['id']}"
    assert author.post(f"{url}/submit", {}, format="json").status_code == 200
    assert first.post(f"{url}/approve", {}, format="json").status_code == 200
    response = second.post(f"{url}/approve", {}, format="json")
    assert response.json()["status"] == "approved", response.content


def figures(viewer, contract, as_of):
    balance = viewer.get(f"/api/v1/contracts/{contract.pk}/balance?as_of={as_of}")
    lots = viewer.get(f"/api/v1/contracts/{contract.pk}/lots?as_of={as_of}")
    assert balance.status_code == lots.status_code == 200, (balance.content, lots.content)
    return balance.json(), lots.json()


@pytest.fixture
def contract(org, make_member):
    """100 hours from 2026-01-01 to 2027-12-31 (Amsterdam); 10 used in 2026, 5 in February 2027."""
    contract = approved(
        make_contract(org, expiry_date=dt.date(2027, 12, 31), hours_budget="100.00", notice_period_days=30),
        make_member,
        org,
    )
    work(contract, 10)
    work(contract, 5, at=dt.datetime(2027, 2, 1, 10, tzinfo=dt.UTC))
    return contract


@pytest.mark.django_db
class TestLedgerFollowsAmendedTerms:
    def test_extended_expiry_and_larger_budget_reach_the_lots_from_the_date(self, api, managers, contract):
        viewer = api("viewer")
        before_balance, before_lots = figures(viewer, contract, BEFORE)
        amend_and_approve(managers, contract, {"expiry_date": "2028-06-30", "hours_budget": "150.00"})
        # Approved but not yet in force: the ledger has not moved.
        assert figures(viewer, contract, AFTER)[1] == figures(viewer, contract, BEFORE)[1] == before_lots
        lifecycle("2027-03-01T00:30:00+01:00")
        lifecycle("2027-03-01T02:30:00+01:00")  # once, however often it runs
        assert LedgerEntry.objects.filter(contract=contract, reason_code=R.LOT_MOVED).count() == 2
        # Nothing before the date changed.
        assert figures(viewer, contract, BEFORE) == (before_balance, before_lots)
        assert before_balance["remaining_hours"] == "85.00" and before_balance["total_hours"] == "100.00"
        balance, lots = figures(viewer, contract, AFTER)
        assert (balance["total_hours"], balance["consumed_hours"], balance["remaining_hours"]) == (
            "150.00", "15.00", "135.00",
        )  # fmt: skip
        assert balance["expired_hours"] == "0.00"
        old, carried, added = lots
        assert (old["remaining"], old["moved"], old["expires_at"]) == ("0.00", "85.00", "2027-12-31T23:00:00Z")
        assert (carried["allocated"], carried["expires_at"]) == ("85.00", "2028-06-30T22:00:00Z")
        assert (added["allocated"], added["expires_at"]) == ("50.00", "2028-06-30T22:00:00Z")
        effective = dt.datetime(2027, 2, 28, 23, tzinfo=dt.UTC)  # 2027-03-01 00:00 in Amsterdam
        assert {lot["occurred_at"] for lot in (carried, added)} == {effective.isoformat().replace("+00:00", "Z")}
        # The old expiry passes: nothing expires, work goes on drawing on the carried hours.
        lifecycle("2028-01-01T01:00:00+01:00")
        assert not LedgerEntry.objects.filter(contract=contract, reason_code=R.LOT_EXPIRED).exists()
        work(contract, 20, at=dt.datetime(2028, 2, 1, 10, tzinfo=dt.UTC))
        balance, lots = figures(viewer, contract, "2028-02-02T00:00:00Z")
        assert (balance["remaining_hours"], balance["expired_hours"]) == ("115.00", "0.00")
        assert [lot["remaining"] for lot in lots] == ["0.00", "65.00", "50.00"]
        # The amended expiry passes: the hours left expire then.
        lifecycle("2028-07-01T01:00:00+02:00")
        balance, _ = figures(viewer, contract, "2028-07-02T00:00:00Z")
        assert (balance["remaining_hours"], balance["expired_hours"]) == ("0.00", "115.00")
        contract.refresh_from_db()
        assert contract.remaining_hours == h(0)

    def test_shortened_expiry_and_smaller_budget(self, api, managers, contract):
        viewer = api("viewer")
        before = figures(viewer, contract, BEFORE)
        amend_and_approve(managers, contract, {"expiry_date": "2027-06-30", "hours_budget": "80.00"})
        lifecycle("2027-03-01T00:30:00+01:00")
        assert figures(viewer, contract, BEFORE) == before
        balance, lots = figures(viewer, contract, AFTER)
        assert (balance["total_hours"], balance["remaining_hours"]) == ("100.00", "65.00")
        assert [(lot["remaining"], lot["expires_at"]) for lot in lots] == [
            ("0.00", "2027-12-31T23:00:00Z"), ("65.00", "2027-06-30T22:00:00Z"),
        ]  # fmt: skip
        lifecycle("2027-07-01T01:00:00+02:00")
        balance, _ = figures(viewer, contract, "2027-07-02T00:00:00Z")
        assert (balance["remaining_hours"], balance["expired_hours"]) == ("0.00", "65.00")

    def test_the_postings_are_of_the_change_that_caused_them_its_actor_and_instant(self, api, managers, contract):
        """Found by an outside test: the adjustment an approval posted had no actor (the approval's
        `contract.terms_changed` had the approver), and run_lifecycle --now's postings had the wall
        clock's instant while the run's contract events had the --now one."""
        viewer, admins = api("viewer"), (api("admin"), api("admin"), api("admin"))
        # Back-dated (an admin's to make): in force at the approval.
        amend_and_approve(admins, contract, {"hours_budget": "120.00"}, effective_date="2026-06-01")
        amend_and_approve(managers, contract, {"expiry_date": "2028-06-30"})
        lifecycle("2027-03-01T00:30:00+01:00")
        types = "contract.terms_changed,ledger.entry_posted"
        log = viewer.get(f"/api/v1/events?since=0&per_page=100&sort=id&type={types}").json()
        changes = [e for e in log if e["type"] == "contract.terms_changed"]
        assert len(changes) == 2 and changes[0]["actor"] is not None and changes[1]["actor"] is None
        for change, budget in ((changes[0], 1), (changes[1], 2)):  # the budget's one posting, the lot's move's two
            posted = [e for e in log if e["id"] > change["id"] and e["type"] == "ledger.entry_posted"][:budget]
            assert len(posted) == budget
            cause = (change["actor"], change["occurred_at"])
            assert [(e["actor"], e["occurred_at"]) for e in posted] == [cause] * budget
        assert changes[1]["occurred_at"] == "2027-02-28T23:30:00Z"

    def test_an_amendment_of_other_terms_posts_nothing(self, managers, contract):
        count = LedgerEntry.objects.filter(contract=contract).count()
        amend_and_approve(managers, contract, {"notice_period_days": 60})
        lifecycle("2027-03-01T00:30:00+01:00")
        assert LedgerEntry.objects.filter(contract=contract).count() == count

    def test_work_before_the_move_is_refused(self, managers, contract):
        """Work dated before the move would change what the old lot carried: the books are closed."""
        amend_and_approve(managers, contract, {"expiry_date": "2028-06-30"})
        lifecycle("2027-03-01T00:30:00+01:00")
        assert lots_closed_at(contract) == dt.datetime(2027, 2, 28, 23, tzinfo=dt.UTC)
        with pytest.raises(Conflict, match="closed up to"):
            work(contract, 1, at=dt.datetime(2027, 2, 20, 10, tzinfo=dt.UTC), now=T0.replace(year=2027, month=3))


@pytest.mark.django_db
def test_graphql_lots_and_balance_agree_with_rest_after_a_move(api, managers, contract):
    """GraphQL's `contractLots` shows what a move carried (`moved`), as REST's lots do."""
    from tests.graphql.conftest import GraphQLClient

    amend_and_approve(managers, contract, {"expiry_date": "2028-06-30", "hours_budget": "150.00"})
    lifecycle("2027-03-01T00:30:00+01:00")
    viewer = api("viewer")
    balance, lots = figures(viewer, contract, AFTER)
    data = GraphQLClient(viewer)(
        """query($id: ID!, $asOf: DateTime) {
             contractLots(contractId: $id, asOf: $asOf) {
               id entryType occurredAt expiresAt allocated consumed expired moved remaining }
             contractBalance(contractId: $id, asOf: $asOf) { totalHours remainingHours expiredHours }
           }""",
        {"id": contract.pk, "asOf": AFTER},
    )
    fields = ("id", "entry_type", "occurred_at", "expires_at", "allocated", "consumed", "expired", "moved", "remaining")
    camel = {name: "".join(w if i == 0 else w.title() for i, w in enumerate(name.split("_"))) for name in fields}
    assert [lot["moved"] for lot in data["contractLots"]] == ["85.00", "0.00", "0.00"]

    def normalized(lot, key):  # the same text, instants too (UTC with Z on both faces); GraphQL's ids are strings
        values = {name: lot[key(name)] for name in fields}
        return {**values, "id": str(values["id"])}

    assert [normalized(lot, camel.get) for lot in data["contractLots"]] == [normalized(lot, str) for lot in lots]
    assert data["contractBalance"] == {
        "totalHours": balance["total_hours"],
        "remainingHours": balance["remaining_hours"],
        "expiredHours": balance["expired_hours"],
    }


@pytest.mark.django_db
class TestBudgetCutNeverOverdraws:
    """A budget cut is posted on its date: one the hours left cannot cover is refused (422) when
    the amendment is made and again when it is approved; cutting to exactly what is used is fine."""

    def propose(self, client, contract, budget):
        body = {"effective_date": "2027-03-01", "changes": {"hours_budget": budget}, "reason": "Smaller"}
        return client.post(f"/api/v1/contracts/{contract.pk}/amendments", body, format="json")

    def test_a_cut_below_the_hours_used_is_422_naming_the_field(self, managers, contract):
        response = self.propose(managers[0], contract, "10.00")  # 15 used: a cut of 90, 85 remain
        assert response.status_code == 422, response.content
        assert response.json()["errors"]["changes.hours_budget"] == [
            "Cuts the budget by 90.00 hours but only 85.00 remain; the contract does not allow overrun."
        ]
        assert self.propose(managers[0], contract, "15.00").status_code == 201  # down to what is used

    def test_hours_used_while_it_waited_are_checked_on_approval(self, managers, contract):
        author, first, _ = managers
        created = self.propose(author, contract, "20.00")  # a cut of 80: 85 remain
        assert created.status_code == 201, created.content
        url = f"/api/v1/contracts/{contract.pk}/amendments/{created.json()['id']}"
        assert author.post(f"{url}/submit", {}, format="json").status_code == 200
        work(contract, 10, at=dt.datetime(2027, 2, 2, 10, tzinfo=dt.UTC))  # 75 remain now
        response = first.post(f"{url}/approve", {}, format="json")
        assert response.status_code == 422, response.content
        assert "changes.hours_budget" in response.json()["errors"]

    def test_a_contract_allowing_overrun_may_cut_below_the_hours_used(self, managers, contract):
        contract.allow_overrun = True
        contract.save(update_fields=["allow_overrun"])
        assert self.propose(managers[0], contract, "10.00").status_code == 201

    def test_an_amendment_adding_an_overage_rate_may_cut_below_the_hours_used(self, managers, contract):
        response = self.propose(managers[0], contract, "10.00")
        assert response.status_code == 422
        body = {
            "effective_date": "2027-03-01",
            "changes": {"hours_budget": "10.00", "billing_period": "monthly", "overage_rate": "90.00"},
            "reason": "Billed",
        }
        assert managers[0].post(f"/api/v1/contracts/{contract.pk}/amendments", body, format="json").status_code == 201

    def test_a_budget_increase_is_never_refused(self, managers, contract):
        work(contract, 85, at=dt.datetime(2027, 2, 2, 10, tzinfo=dt.UTC))  # nothing left
        assert self.propose(managers[0], contract, "120.00").status_code == 201

    def test_hours_used_after_approval_limit_the_cut_when_it_takes_effect(self, api, managers, contract):
        """Approved with 85 hours left, a cut of 80; by its date work used 80 more. The cut takes
        the 5 left instead of overdrawing the contract (found by an outside sweep: -75 h here,
        and every later posting a 409)."""
        amend_and_approve(managers, contract, {"hours_budget": "20.00"})
        work(contract, 80, at=dt.datetime(2027, 2, 20, 10, tzinfo=dt.UTC))
        lifecycle(AFTER)
        contract.refresh_from_db()
        assert contract.remaining_hours == h(0)
        cut = LedgerEntry.objects.get(contract=contract, entry_type="adjustment", reason_code=R.SYSTEM)
        assert cut.hours == h(-5) and "limited to the 5.00 hours that remained" in cut.description
        balance, _ = figures(api("viewer"), contract, AFTER)
        assert balance["remaining_hours"] == "0.00"
