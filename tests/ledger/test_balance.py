"""`GET /api/v1/contracts/{id}/balance`, the contract's running balance, and contract.balance_low."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contracts.services import run_lifecycle
from events.models import Event
from ledger import services
from ledger.models import LedgerEntry
from tests.graphql.conftest import GraphQLClient

from .helpers import DAY, HOUR, T0, active_contract, credit, fresh_sum, post, running, work


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
            # At 1 h a day the allocation's 65 hours give 30 before it expires 30 days on (35 are
            # lost), then the 22 hours without expiry last 22 days: 52 days on, in Amsterdam.
            # (Not 87 days on: hours that expire unused are not there to be consumed.)
            "projected_exhaustion_date": "2026-05-23",
            "penalties": {},
        }

    def test_the_window_sets_the_burn_rate(self, api, book):
        body = api("viewer").get(balance_url(book, as_of="2026-04-01T09:00:00Z", window_days=15)).json()
        # Only the 20 hours at T0 + 20 days fall in (T0 + 15 days, T0 + 30 days].
        assert body["window_days"] == 15
        assert body["burn_rate_hours_per_day"] == "1.33"
        # At 4/3 h a day: 40 of the allocation's 65 hours by its expiry 30 days on, then 22 / (4/3)
        # = 16.5 days: 46.5 days on, 2026-05-17 21:00Z, still the 17th in Amsterdam.
        assert body["projected_exhaustion_date"] == "2026-05-17"

    def test_the_burn_rate_rounds_half_up_as_every_figure_of_the_ledger(self, api, book):
        """10 hours in a 16-day window: 0.625 h a day, which read 0.62 (the decimal context's
        half-even); the ledger's figures round half up (`ledger.charging`, the statement)."""
        params = {"as_of": "2026-03-12T09:00:00Z", "window_days": 16}  # T0 + 10 days: the 10 hours only
        assert api("viewer").get(balance_url(book, **params)).json()["burn_rate_hours_per_day"] == "0.63"
        query = "query($id: ID!, $at: DateTime) { contractBalance(contractId: $id, asOf: $at, windowDays: 16) "
        query += "{ burnRateHoursPerDay } }"
        data = GraphQLClient(api("viewer"))(query, {"id": book.pk, "at": "2026-03-12T09:00:00Z"})
        assert data["contractBalance"]["burnRateHoursPerDay"] == "0.63"

    def test_a_contract_younger_than_the_window_burns_over_the_days_it_has_run(self, api, org):
        """A contract that started 10 days ago (1 to 10 March in Amsterdam, today included) and used
        50 hours burns 5 a day: its 100 hours run out 10 days on, on the 20th. Spread over the 30-day
        window as if it had run for 20 more days without work, it read 1.67 a day and the 30th of
        March (three times as far off), REST and GraphQL alike."""
        contract = active_contract(org, start_date=dt.date(2026, 3, 1))
        post(contract, "initial_allocation", 100, at=dt.datetime(2026, 2, 28, 23, tzinfo=dt.UTC))  # 1 March 00:00
        work(contract, 30, at=dt.datetime(2026, 3, 3, 12, tzinfo=dt.UTC))
        work(contract, 20, at=dt.datetime(2026, 3, 9, 12, tzinfo=dt.UTC))
        as_of = "2026-03-10T12:00:00Z"  # the contract's 10th day
        body = api("viewer").get(balance_url(contract, as_of=as_of)).json()
        assert (body["remaining_hours"], body["window_days"]) == ("50.00", 30)
        assert body["burn_rate_hours_per_day"] == "5.00"
        assert body["projected_exhaustion_date"] == "2026-03-20"  # 50 / 5 = 10 days on
        query = "query($id: ID!, $at: DateTime) { contractBalance(contractId: $id, asOf: $at) "
        query += "{ burnRateHoursPerDay projectedExhaustionDate } }"
        data = GraphQLClient(api("viewer"))(query, {"id": contract.pk, "at": as_of})["contractBalance"]
        assert data == {"burnRateHoursPerDay": "5.00", "projectedExhaustionDate": "2026-03-20"}
        # Once it has run the whole window, the window decides (30 days to 30 March: 50 / 30).
        later = api("viewer").get(balance_url(contract, as_of="2026-03-30T12:00:00Z")).json()
        assert later["burn_rate_hours_per_day"] == "1.67"

    def test_an_earlier_instant_sees_only_the_entries_until_then(self, api, book):
        body = api("viewer").get(balance_url(book, as_of="2026-03-12T09:00:00Z")).json()  # T0 + 10 days
        assert (body["total_hours"], body["consumed_hours"], body["remaining_hours"]) == ("120.00", "10.00", "110.00")
        assert body["expiring_hours"] == "0.00"  # the allocation expires 50 days on
        assert body["burn_rate_hours_per_day"] == "0.33"
        # At 1/3 h a day the allocation's 90 hours give 16.67 before it expires 50 days on; then the
        # credit's 20 last 60 days: 110 days on (not 330: 73.33 hours expire unused).
        assert body["projected_exhaustion_date"] == "2026-06-30"
        before = api("viewer").get(balance_url(book, as_of="2026-03-01T00:00:00Z")).json()
        assert before["total_hours"] == before["remaining_hours"] == "0.00"
        assert before["projected_exhaustion_date"] is None  # nothing is being consumed

    def test_expired_hours_count_from_the_expiry_whether_or_not_run_lifecycle_booked_them(self, api, book):
        after_expiry = T0 + 61 * DAY
        url = balance_url(book, as_of=after_expiry.isoformat().replace("+00:00", "Z"))
        before = api("viewer").get(url).json()
        # The allocation's 65 unused hours expired at T0 + 60 days: the balance says so before
        # run_lifecycle posts it (it used to say expired 0.00, remaining 87.00 until then).
        assert (before["expired_hours"], before["remaining_hours"]) == ("65.00", "22.00")
        assert before["expiring_hours"] == "0.00"
        assert (before["total_hours"], before["consumed_hours"]) == ("122.00", "35.00")
        assert running(book) == 87  # the running balance keeps them until the posting
        assert run_lifecycle(now=after_expiry).more["lots expired"] == 1
        assert running(book) == 22
        assert api("viewer").get(url).json() == before  # the posting changes nothing the balance said
        assert running(book) == fresh_sum(book) == 22
        # The expiry is dated at the lot's expiry: a day before it, nothing had expired yet.
        assert services.balance(book, as_of=T0 + 59 * DAY)["expired_hours"] == 0

    def test_defaults(self, api, book):
        body = api("viewer").get(balance_url(book)).json()
        as_of = dt.datetime.fromisoformat(body["as_of"])
        assert abs(dt.datetime.now(dt.UTC) - as_of) < dt.timedelta(minutes=1)
        assert body["window_days"] == 30
        # Now is long past the allocation's expiry (2026-05-01): its 65 unused hours count as expired.
        assert (body["remaining_hours"], body["expired_hours"]) == ("22.00", "65.00")

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
class TestUnpostedExpiries:
    """A balance as of an instant past a lot's expiry says what the ledger will say then, whether
    run_lifecycle has posted the expiry or not; a read never posts it."""

    @pytest.fixture
    def lot(self, org):
        contract = active_contract(org)
        credit(contract, 100, at=T0, expires_at=dt.datetime(2028, 1, 1, 5, tzinfo=dt.UTC))
        work(contract, 11, at=T0 + DAY)
        return contract

    def test_a_future_instant_past_the_expiry_counts_the_lots_remainder_as_expired(self, api, lot):
        # An outside tester's case: remaining 89.00, expired 0.00 until run_lifecycle ran.
        client = api("viewer")
        entries = LedgerEntry.objects.filter(contract=lot).count()
        body = client.get(balance_url(lot, as_of="2028-02-01T00:00:00Z")).json()
        assert (body["total_hours"], body["consumed_hours"]) == ("100.00", "11.00")
        assert (body["remaining_hours"], body["expired_hours"], body["overrun_hours"]) == ("0.00", "89.00", "0.00")
        at_expiry = client.get(balance_url(lot, as_of="2028-01-01T05:00:00Z")).json()
        assert (at_expiry["remaining_hours"], at_expiry["expired_hours"]) == ("0.00", "89.00")
        just_before = client.get(balance_url(lot, as_of="2028-01-01T04:59:59Z")).json()
        assert (just_before["remaining_hours"], just_before["expired_hours"]) == ("89.00", "0.00")
        assert just_before["expiring_hours"] == "89.00"
        assert LedgerEntry.objects.filter(contract=lot).count() == entries  # nothing posted by a read
        assert running(lot) == 89
        # run_lifecycle posts the expiry when the time comes: the balance then says the same.
        assert run_lifecycle(now=dt.datetime(2028, 1, 1, 6, tzinfo=dt.UTC)).more["lots expired"] == 1
        assert LedgerEntry.objects.filter(contract=lot, reason_code="lot_expired").get().hours == -89
        assert client.get(balance_url(lot, as_of="2028-02-01T00:00:00Z")).json() == body

    def test_with_overrun_the_expiry_deepens_the_overrun_as_its_posting_will(self, api, org):
        contract = active_contract(org, allow_overrun=True)
        credit(contract, 10, at=T0, expires_at=T0 + 10 * DAY)
        work(contract, 4, at=T0 + DAY)
        work(contract, 8, at=T0 + 11 * DAY)  # after the expiry: overrun, the lot's 6 are not drawn
        url = balance_url(contract, as_of="2026-03-14T09:00:00Z")  # T0 + 12 days
        body = api("viewer").get(url).json()
        assert (body["remaining_hours"], body["expired_hours"], body["overrun_hours"]) == ("-8.00", "6.00", "8.00")
        run_lifecycle(now=T0 + 12 * DAY)
        assert running(contract) == -8
        assert api("viewer").get(url).json() == body


@pytest.mark.django_db
class TestProjectedExhaustion:
    """The hours are projected to run out as the ledger consumes them: first-expiring-first at the
    burn rate, and a lot's hours not consumed by its expiry are lost."""

    @pytest.fixture
    def lots(self, org):
        contract = active_contract(org)
        credit(contract, 40, at=T0)  # no expiry: drawn last
        work(contract, 30, at=T0 + DAY)  # 1 h a day over 30 days; 10 left in the credit
        as_of = T0 + 30 * DAY  # 2026-04-01 09:00Z
        at = as_of - HOUR
        credit(contract, 12, at=at, expires_at=as_of + 10 * DAY)
        credit(contract, 4, at=at, expires_at=as_of + 10 * DAY)  # reached only at its expiry: all lost
        credit(contract, 20, at=at, expires_at=as_of + 15 * DAY)
        return contract

    def test_hours_expiring_before_they_can_be_used_do_not_postpone_the_exhaustion(self, api, lots):
        body = api("viewer").get(balance_url(lots, as_of="2026-04-01T09:00:00Z")).json()
        assert (body["remaining_hours"], body["burn_rate_hours_per_day"]) == ("46.00", "1.00")
        assert body["expiring_hours"] == "36.00"
        # 10 of the 12 by day 10 (2 and the other lot's 4 are lost), 5 of the 20 by day 15 (15
        # lost), then the credit's 10: day 25, 2026-04-26 (not day 46, 2026-05-17).
        assert body["projected_exhaustion_date"] == "2026-04-26"

    def test_a_lot_used_up_before_its_expiry_loses_nothing(self, api, org):
        contract = active_contract(org)
        credit(contract, 30, at=T0, expires_at=T0 + 60 * DAY)
        credit(contract, 10, at=T0)
        work(contract, 15, at=T0 + DAY)  # 0.5 h a day
        body = api("viewer").get(balance_url(contract, as_of="2026-04-01T09:00:00Z")).json()  # T0 + 30 days
        # The lot's 15 take 30 days, exactly up to its expiry; then the credit's 10 take 20 days.
        assert body["projected_exhaustion_date"] == "2026-05-21"

    def test_when_every_lot_expires_first_the_hours_run_out_at_the_last_expiry(self, api, org):
        contract = active_contract(org)
        # A term's lot: expires at midnight in Amsterdam, the first day without hours.
        expiry = contract.start_of_day(dt.date(2026, 4, 11))
        credit(contract, 100, at=T0, expires_at=expiry)
        work(contract, 30, at=T0 + DAY)
        body = api("viewer").get(balance_url(contract, as_of="2026-04-01T09:00:00Z")).json()
        assert (body["remaining_hours"], body["expiring_hours"]) == ("70.00", "70.00")
        assert body["projected_exhaustion_date"] == "2026-04-11"  # not 70 days on (2026-06-10)

    def test_the_graphql_balance_projects_the_same(self, api, lots):
        from tests.graphql.conftest import GraphQLClient

        data = GraphQLClient(api("viewer"))(
            """query($id: ID!) { contractBalance(contractId: $id, asOf: "2026-04-01T09:00:00Z") {
                 remainingHours expiringHours projectedExhaustionDate } }""",
            {"id": lots.pk},
        )
        assert data["contractBalance"] == {
            "remainingHours": "46.00",
            "expiringHours": "36.00",
            "projectedExhaustionDate": "2026-04-26",
        }

    def test_the_lot_replay_runs_only_when_a_lot_may_expire_unused(self, api, org):
        """Without a lot expiring (or with one used up before it expires) the balance is three
        queries whatever the ledger's length; the replay comes in only when hours may be lost."""

        def queries(contract) -> int:
            client.get(balance_url(contract, as_of="2026-04-01T09:00:00Z"))  # the caller's membership cached
            with CaptureQueriesContext(connection) as captured:
                response = client.get(balance_url(contract, as_of="2026-04-01T09:00:00Z"))
            assert response.status_code == 200
            return len(captured.captured_queries)

        client = api("viewer")
        plain = active_contract(org)
        credit(plain, 100, at=T0)
        used_in_time = active_contract(org)
        credit(used_in_time, 50, at=T0, expires_at=T0 + 100 * DAY)  # 20 left at 1 h a day, 70 days to go
        losing = active_contract(org)
        credit(losing, 150, at=T0, expires_at=T0 + 100 * DAY)  # 120 left at 1 h a day, 70 days to go
        for contract in (plain, used_in_time, losing):
            for day in range(1, 31, 3):
                work(contract, 3, at=T0 + day * DAY)
        baseline = queries(plain)
        assert queries(used_in_time) == baseline
        assert queries(losing) > baseline
        projected = [
            client.get(balance_url(contract, as_of="2026-04-01T09:00:00Z")).json()["projected_exhaustion_date"]
            for contract in (plain, used_in_time, losing)
        ]
        # 70 days on; 20 days on; at the lot's expiry 70 days on, 50 hours lost (not 120 days on).
        assert projected == ["2026-06-10", "2026-04-21", "2026-06-10"]
        # (Three queries of the balance itself: its sums, the open lots' first expiries, the penalties.)
        with CaptureQueriesContext(connection) as captured:
            services.balance(plain, as_of=T0 + 30 * DAY)
        assert len(captured.captured_queries) == 3


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
            ({"as_of": ""}, "as_of"),  # blank is no default (the README's rule; found by the fuzz)
            ({"window_days": ""}, "window_days"),
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
        # The allocation expired (2026-05-01) and run_lifecycle has not posted it: the running
        # balance still holds its 65 hours, the balance counts them expired; the posting settles it.
        assert api("viewer").get(balance_url(book)).json()["remaining_hours"] == "22.00"
        run_lifecycle(now=T0 + 61 * DAY)
        body = client.get(f"/api/v1/contracts/{book.pk}").json()
        assert body["remaining_hours"] == "22.00"
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
            # The first credit expired at T0 + 10 days: until run_lifecycle posts it, the balance
            # counts what it left as expired while the running balance still holds it.
            unposted = services.unbooked_expiries(contract, T0 + 100 * DAY)
            assert running(contract) == fresh_sum(contract) == figures["remaining_hours"] + unposted
            summed = figures["total_hours"] - figures["consumed_hours"] - figures["expired_hours"]
            assert summed == running(contract) - unposted
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
