"""`GET /api/v1/contracts/{id}/balance`, the contract's running balance, and contract.balance_low."""

import datetime as dt
from decimal import Decimal

import pytest

from contracts.services import run_lifecycle
from events.models import Event
from ledger import services

from .helpers import DAY, T0, active_contract, credit, fresh_sum, post, running, work


def balance_url(contract, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/v1/contracts/{contract.pk}/balance" + (f"?{query}" if query else "")


@pytest.fixture
def book(org):
    """An allocation that expires after 60 days, a credit that does not, work, and both kinds of adjustment."""
    contract = active_contract(org)
    post(contract, "initial_allocation", 100, at=T0, expires_at=T0 + 60 * DAY)  # expires 2026-05-01 09:00Z
    credit(contract, 20, at=T0 + DAY)
    work(contract, 10, at=T0 + 5 * DAY)
    work(contract, 20, at=T0 + 20 * DAY)
    post(contract, "adjustment", -5, at=T0 + 25 * DAY, description="Visit booked twice")
    post(contract, "adjustment", 2, at=T0 + 26 * DAY, description="Travel was not billable")
    return contract


@pytest.mark.django_db
class TestFigures:
    def test_the_figures_as_of_an_instant(self, api, book):
        response = api("viewer").get(balance_url(book, as_of="2026-04-01T09:00:00Z"))  # T0 + 30 days
        assert response.status_code == 200, response.content
        assert response.json() == {
            "contract": book.pk,
            "as_of": "2026-04-01T09:00:00Z",
            "total_hours": "122.00",  # 100 + 20 + the 2 given back
            "consumed_hours": "35.00",  # 10 + 20 of work, 5 taken by the adjustment
            "remaining_hours": "87.00",
            "expired_hours": "0.00",
            "overrun_hours": "0.00",
            # The allocation expires exactly 30 days on (within the window); first-expiring-first,
            # all 35 consumed hours came out of it.
            "expiring_hours": "65.00",
            "window_days": 30,
            "burn_rate_hours_per_day": "1.00",  # 30 hours of work in the 30 days
            "projected_exhaustion_date": "2026-06-27",  # 87 days on, in Amsterdam
            "penalties": {},
        }

    def test_the_window_sets_the_burn_rate(self, api, book):
        body = api("viewer").get(balance_url(book, as_of="2026-04-01T09:00:00Z", window_days=15)).json()
        # Only the 20 hours at T0 + 20 days fall in (T0 + 15 days, T0 + 30 days].
        assert body["window_days"] == 15
        assert body["burn_rate_hours_per_day"] == "1.33"
        assert body["projected_exhaustion_date"] == "2026-06-05"  # 87 / (20 / 15) = 65.25 days on

    def test_an_earlier_instant_sees_only_the_entries_until_then(self, api, book):
        body = api("viewer").get(balance_url(book, as_of="2026-03-12T09:00:00Z")).json()  # T0 + 10 days
        assert (body["total_hours"], body["consumed_hours"], body["remaining_hours"]) == ("120.00", "10.00", "110.00")
        assert body["expiring_hours"] == "0.00"  # the allocation expires 50 days on
        assert body["burn_rate_hours_per_day"] == "0.33"
        assert body["projected_exhaustion_date"] == "2027-02-05"  # 110 / (10 / 30) = 330 days on
        before = api("viewer").get(balance_url(book, as_of="2026-03-01T00:00:00Z")).json()
        assert before["total_hours"] == before["remaining_hours"] == "0.00"
        assert before["projected_exhaustion_date"] is None  # nothing is being consumed

    def test_expired_hours_count_once_run_lifecycle_books_them(self, api, book):
        after_expiry = T0 + 61 * DAY
        body = api("viewer").get(balance_url(book, as_of=after_expiry.isoformat().replace("+00:00", "Z"))).json()
        assert (body["expired_hours"], body["remaining_hours"]) == ("0.00", "87.00")
        assert run_lifecycle(now=after_expiry).more["lots expired"] == 1
        figures = services.balance(book, as_of=after_expiry)
        assert figures["total_hours"] == 122 and figures["consumed_hours"] == 35
        assert figures["expired_hours"] == 65 and figures["remaining_hours"] == 22
        assert figures["expiring_hours"] == 0
        assert running(book) == fresh_sum(book) == 22
        # The expiry is dated at the lot's expiry: a day before it, nothing had expired yet.
        assert services.balance(book, as_of=T0 + 59 * DAY)["expired_hours"] == 0

    def test_defaults(self, api, book):
        body = api("viewer").get(balance_url(book)).json()
        as_of = dt.datetime.fromisoformat(body["as_of"])
        assert abs(dt.datetime.now(dt.UTC) - as_of) < dt.timedelta(minutes=1)
        assert body["window_days"] == 30
        assert body["remaining_hours"] == "87.00"

    def test_exhausted_is_today_in_the_contracts_time_zone(self, api, org):
        contract = active_contract(org, time_zone="Pacific/Auckland")
        credit(contract, 10, at=T0)
        work(contract, 10, at=T0 + DAY)
        body = api("viewer").get(balance_url(contract, as_of="2026-03-20T20:00:00Z")).json()
        assert body["remaining_hours"] == "0.00"
        assert body["projected_exhaustion_date"] == "2026-03-21"  # already the 21st in Auckland

    def test_an_exhaustion_beyond_the_calendar_is_null_not_a_500(self, api, org):
        contract = active_contract(org)
        credit(contract, "9999999999.99", at=T0)
        work(contract, "0.01", at=T0 + DAY)
        response = api("viewer").get(balance_url(contract, as_of="2026-03-10T00:00:00Z", window_days=3650))
        assert response.status_code == 200, response.content
        assert response.json()["burn_rate_hours_per_day"] == "0.00"
        assert response.json()["projected_exhaustion_date"] is None

    def test_overrun(self, api, org):
        contract = active_contract(org, allow_overrun=True)
        credit(contract, 4, at=T0)
        work(contract, 10, at=T0 + DAY)
        body = api("viewer").get(balance_url(contract, as_of="2026-03-10T00:00:00Z")).json()
        assert (body["remaining_hours"], body["overrun_hours"]) == ("-6.00", "6.00")
        assert body["projected_exhaustion_date"] == "2026-03-10"


@pytest.mark.django_db
class TestParameters:
    @pytest.mark.parametrize(
        "params, name",
        [
            ({"window_days": "0"}, "window_days"),
            ({"window_days": "3651"}, "window_days"),
            ({"window_days": "-1"}, "window_days"),
            ({"window_days": "1.5"}, "window_days"),
            ({"window_days": "week"}, "window_days"),
            ({"as_of": "yesterday"}, "as_of"),
            ({"as_of": "2026-03-01T00:00:00"}, "as_of"),  # no offset
            ({"as_of": "2026-02-30T00:00:00Z"}, "as_of"),  # well formed, not a date
            ({"as_of": "2026-03-01T25:00:00Z"}, "as_of"),
            ({"since": "1"}, "since"),
        ],
    )
    def test_bad_parameters_are_400_naming_them(self, api, org, params, name):
        contract = active_contract(org)
        response = api("viewer").get(balance_url(contract, **params))
        assert response.status_code == 400, response.content
        assert name in response.json()["errors"]

    def test_the_edges_of_the_window_are_allowed(self, api, org):
        contract = active_contract(org)
        for days in (1, 3650):
            assert api("viewer").get(balance_url(contract, window_days=days)).json()["window_days"] == days

    def test_another_organizations_contract_is_404_and_a_token_is_needed(self, api, anon, org, other_org):
        theirs = active_contract(other_org)
        response = api("admin").get(balance_url(theirs))
        assert response.status_code == 404 and response.json() == {"message": "Not found."}
        assert api("viewer").get("/api/v1/contracts/999999/balance").status_code == 404
        assert anon.get(balance_url(active_contract(org))).status_code == 401


@pytest.mark.django_db
class TestContractResource:
    def test_the_contract_shows_its_running_balance_and_threshold(self, api, book):
        client = api("manager")
        body = client.get(f"/api/v1/contracts/{book.pk}").json()
        assert body["remaining_hours"] == "87.00"
        assert body["remaining_hours"] == api("viewer").get(balance_url(book)).json()["remaining_hours"]
        assert body["low_balance_threshold_hours"] is None
        response = client.patch(f"/api/v1/contracts/{book.pk}", {"low_balance_threshold_hours": "10.00"}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["low_balance_threshold_hours"] == "10.00"

    def test_the_running_balance_is_not_writable(self, api, book):
        response = api("manager").patch(f"/api/v1/contracts/{book.pk}", {"remaining_hours": "999.00"}, format="json")
        assert response.status_code == 422
        assert "remaining_hours" in response.json()["errors"]
        assert running(book) == 87

    def test_the_running_balance_equals_a_fresh_sum_after_every_posting(self, org):
        contract = active_contract(org, allow_overrun=True)
        steps = [
            lambda: credit(contract, 8, at=T0, expires_at=T0 + 10 * DAY),
            lambda: work(contract, "2.75", at=T0 + DAY),
            lambda: post(contract, "adjustment", "-1.25", at=T0 + 2 * DAY),
            lambda: work(contract, 9, at=T0 + 3 * DAY),  # into overrun
            lambda: credit(contract, 12, at=T0 + 4 * DAY),
            lambda: post(contract, "adjustment", "0.50", at=T0 + 5 * DAY),
            lambda: run_lifecycle(now=T0 + 11 * DAY),  # books the first credit's expiry
            lambda: work(contract, "0.01", at=T0 + 12 * DAY),
        ]
        for step in steps:
            step()
            figures = services.balance(contract, as_of=T0 + 100 * DAY)
            assert running(contract) == fresh_sum(contract) == figures["remaining_hours"]
            assert figures["total_hours"] - figures["consumed_hours"] - figures["expired_hours"] == running(contract)
            assert services.running_balance_errors() == []
        assert running(contract) == Decimal("7.49")


@pytest.mark.django_db
class TestBalanceLow:
    def test_crossing_the_threshold_writes_one_event(self, org):
        contract = active_contract(org, low_balance_threshold_hours=Decimal("10.00"))
        credit(contract, 40, at=T0)  # from 0 up: no crossing
        work(contract, 25, at=T0 + DAY)  # 15 left
        work(contract, 5, at=T0 + 2 * DAY)  # 10 left: at the threshold, not below it
        assert not Event.objects.filter(type="contract.balance_low").exists()
        crossing = work(contract, 1, at=T0 + 3 * DAY)  # 9 left
        work(contract, 1, at=T0 + 4 * DAY)  # 8 left: still low, no new event
        events = list(Event.objects.filter(type="contract.balance_low"))
        assert len(events) == 1
        assert events[0].object_type == "contract" and events[0].object_id == contract.pk
        assert events[0].payload == {"remaining_hours": "9.00", "threshold_hours": "10.00", "entry": crossing.pk}
        # Topped up above the threshold and down again: that is a second crossing.
        credit(contract, 5, at=T0 + 5 * DAY)  # 13
        work(contract, 4, at=T0 + 6 * DAY)  # 9
        assert Event.objects.filter(type="contract.balance_low").count() == 2

    def test_no_threshold_no_event(self, org):
        contract = active_contract(org)
        credit(contract, 2, at=T0)
        work(contract, 2, at=T0 + DAY)
        assert not Event.objects.filter(type="contract.balance_low").exists()

    def test_every_posting_writes_entry_posted(self, org):
        contract = active_contract(org)
        entries = [credit(contract, 5, at=T0), work(contract, 1, at=T0 + DAY), post(contract, "adjustment", 1, at=T0)]
        posted = Event.objects.filter(type="ledger.entry_posted").order_by("id")
        assert [e.object_id for e in posted] == [e.pk for e in entries]
        assert [e.payload["remaining_hours"] for e in posted] == ["5.00", "4.00", "5.00"]
