"""Prepaid lots: consumed first-expiring-first, their unused hours expired once by run_lifecycle,
and the per-lot view (`GET /api/v1/contracts/{id}/lots`) always in agreement with the balance."""

import datetime as dt
import io
import random
from decimal import Decimal

import pytest
from django.core.management import call_command

from config.api.exceptions import Conflict
from contracts.services import run_lifecycle
from events.models import Event
from ledger import services
from ledger.models import LedgerEntry

from .helpers import DAY, HOUR, T0, active_contract, credit, fresh_sum, job, post, running, work


def lots_url(contract, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/v1/contracts/{contract.pk}/lots" + (f"?{query}" if query else "")


def zulu(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def figures(lots: list[dict]) -> list[tuple[str, str, str, str]]:
    return [(lot["allocated"], lot["consumed"], lot["expired"], lot["remaining"]) for lot in lots]


@pytest.mark.django_db
class TestConsumption:
    def test_work_consumes_the_first_expiring_lot_first(self, api, org):
        contract = active_contract(org)
        a = credit(contract, 5, at=T0, expires_at=T0 + 10 * DAY)
        b = credit(contract, 5, at=T0, expires_at=T0 + 40 * DAY)
        c = credit(contract, 5, at=T0)  # never expires: used last
        work(contract, 3, at=T0 + DAY)  # A (D is not there yet)
        d = credit(contract, 5, at=T0 + 2 * DAY, expires_at=T0 + 5 * DAY)
        work(contract, 6, at=T0 + 3 * DAY)  # D expires first: 5 from D, 1 from A
        work(contract, 4, at=T0 + 4 * DAY)  # the last 1 of A, then 3 of B
        response = api("viewer").get(lots_url(contract))
        assert response.status_code == 200, response.content
        lots = response.json()
        assert [lot["id"] for lot in lots] == [a.pk, b.pk, c.pk, d.pk]
        assert figures(lots) == [
            ("5.00", "5.00", "0.00", "0.00"),
            # Now is past B's expiry (T0 + 40 days): what it left counts as expired, posted or not.
            ("5.00", "3.00", "2.00", "0.00"),
            ("5.00", "0.00", "0.00", "5.00"),
            ("5.00", "5.00", "0.00", "0.00"),
        ]
        assert lots[0] == {
            "id": a.pk,
            "entry_type": "credit",
            "occurred_at": zulu(T0),
            "expires_at": zulu(T0 + 10 * DAY),
            "allocated": "5.00",
            "consumed": "5.00",
            "expired": "0.00",
            "moved": "0.00",
            "remaining": "0.00",
        }
        assert lots[2]["expires_at"] is None
        # As of an earlier instant, only what had happened by then.
        earlier = api("viewer").get(lots_url(contract, as_of=zulu(T0 + 2 * DAY + HOUR))).json()
        assert figures(earlier) == [
            ("5.00", "3.00", "0.00", "2.00"),
            ("5.00", "0.00", "0.00", "5.00"),
            ("5.00", "0.00", "0.00", "5.00"),
            ("5.00", "0.00", "0.00", "5.00"),
        ]

    def test_a_negative_adjustment_consumes_like_work_and_a_positive_one_is_a_lot(self, org):
        contract = active_contract(org)
        a = credit(contract, 5, at=T0, expires_at=T0 + 10 * DAY)
        post(contract, "adjustment", -2, at=T0 + DAY)
        given = post(contract, "adjustment", "1.50", at=T0 + 2 * DAY)
        lots = services.replay(contract).lots
        assert [(lot.entry.pk, lot.consumed, lot.remaining) for lot in lots] == [
            (a.pk, 2, 3),
            (given.pk, 0, Decimal("1.50")),
        ]

    def test_an_expired_lot_is_not_consumed(self, org):
        contract = active_contract(org)
        a = credit(contract, 5, at=T0, expires_at=T0 + 2 * DAY)
        c = credit(contract, 5, at=T0)
        work(contract, 3, at=T0 + 2 * DAY)  # at the instant A expires: A is no longer valid
        book = services.replay(contract)
        assert [(lot.entry.pk, lot.consumed) for lot in book.lots] == [(a.pk, 0), (c.pk, 3)]

    def test_work_after_a_lots_expiry_cannot_use_its_hours_before_run_lifecycle_books_it(self, api, org):
        contract = active_contract(org)
        credit(contract, 10, at=T0, expires_at=T0 + 10 * DAY)
        credit(contract, 3, at=T0)
        assert running(contract) == 13  # the expired lot's hours are still in the running balance
        with pytest.raises(Conflict, match="Not enough hours"):
            work(contract, 4, at=T0 + 11 * DAY)
        work(contract, 3, at=T0 + 11 * DAY)  # what the lot without expiry holds
        assert run_lifecycle(now=T0 + 12 * DAY).more["lots expired"] == 1
        assert running(contract) == fresh_sum(contract) == 0
        assert services.balance(contract, as_of=T0 + 12 * DAY)["overrun_hours"] == 0

    def test_work_dated_while_the_lot_was_valid_uses_it_even_when_posted_later(self, org):
        contract = active_contract(org)
        lot = credit(contract, 10, at=T0, expires_at=T0 + 10 * DAY)
        work(contract, 4, at=T0 + 9 * DAY, now=T0 + 11 * DAY)
        run_lifecycle(now=T0 + 11 * DAY)
        expiry = LedgerEntry.objects.get(lot=lot)
        assert expiry.hours == -6
        assert running(contract) == 0

    def test_with_overrun_allowed_work_after_expiry_is_overrun_at_once(self, org):
        contract = active_contract(org, allow_overrun=True)
        credit(contract, 10, at=T0, expires_at=T0 + 10 * DAY)
        work(contract, 4, at=T0 + 11 * DAY)
        book = services.replay(contract)
        assert book.overrun == 4 and book.lots[0].consumed == 0
        run_lifecycle(now=T0 + 12 * DAY)
        balance = services.balance(contract, as_of=T0 + 12 * DAY)
        assert balance["remaining_hours"] == -4 and balance["overrun_hours"] == 4 == services.replay(contract).overrun

    def test_the_next_lot_pays_an_overrun_first(self, api, org):
        contract = active_contract(org, allow_overrun=True)
        credit(contract, 10, at=T0)
        work(contract, 15, at=T0 + DAY)
        credit(contract, 10, at=T0 + 2 * DAY)
        lots = api("viewer").get(lots_url(contract)).json()
        assert figures(lots) == [("10.00", "10.00", "0.00", "0.00"), ("10.00", "5.00", "0.00", "5.00")]
        balance = api("viewer").get(f"/api/v1/contracts/{contract.pk}/balance").json()
        assert (balance["remaining_hours"], balance["overrun_hours"]) == ("5.00", "0.00")
        assert services.replay(contract).overrun == 0

    def test_work_dated_before_a_lot_arrived_is_paid_by_it(self, org):
        contract = active_contract(org)
        lot = credit(contract, 8, at=T0 + 5 * DAY, expires_at=T0 + 30 * DAY)
        work(contract, 3, at=T0 + DAY, now=T0 + 6 * DAY)  # backdated before the lot
        book = services.replay(contract)
        assert book.overrun == 0
        assert [(x.entry.pk, x.consumed, x.remaining) for x in book.lots] == [(lot.pk, 3, 5)]


@pytest.mark.django_db
class TestExpiry:
    def test_run_lifecycle_books_the_unused_remainder_once(self, org):
        contract = active_contract(org)
        lot = credit(contract, 10, at=T0, expires_at=T0 + 10 * DAY)
        work(contract, 4, at=T0 + DAY)
        assert run_lifecycle(now=T0 + 10 * DAY - dt.timedelta(seconds=1)).more["lots expired"] == 0
        out = io.StringIO()
        call_command("run_lifecycle", now=(T0 + 10 * DAY).isoformat(), stdout=out)
        assert f"lot {lot.pk} of contract {contract.pk}: 6.00 hours expired" in out.getvalue()
        assert "1 lots expired" in out.getvalue()
        expiry = LedgerEntry.objects.get(reason_code="lot_expired")
        assert (expiry.entry_type, expiry.hours, expiry.lot_id) == ("adjustment", Decimal("-6.00"), lot.pk)
        assert expiry.occurred_at == lot.expires_at
        assert expiry.system_key == f"lot_expiry:entry:{lot.pk}" and expiry.created_by is None
        posted = Event.objects.get(type="ledger.entry_posted", object_id=expiry.pk)
        assert posted.payload["reason_code"] == "lot_expired" and posted.payload["remaining_hours"] == "0.00"
        # However often it runs, the expiry is booked once.
        for later in (T0 + 10 * DAY, T0 + 11 * DAY, T0 + 400 * DAY):
            assert run_lifecycle(now=later).more["lots expired"] == 0
        again = io.StringIO()
        call_command("run_lifecycle", now=(T0 + 20 * DAY).isoformat(), stdout=again)
        assert "0 lots expired" in again.getvalue()
        assert LedgerEntry.objects.filter(reason_code="lot_expired").count() == 1
        assert running(contract) == fresh_sum(contract) == 0

    def test_a_used_up_lot_is_closed_with_zero_hours(self, org):
        contract = active_contract(org)
        lot = credit(contract, 2, at=T0, expires_at=T0 + 10 * DAY)
        work(contract, 2, at=T0 + DAY)
        assert services.expire_lots(now=T0 + 10 * DAY) == 1
        expiry = LedgerEntry.objects.get(lot=lot)
        assert expiry.hours == 0
        assert Event.objects.get(type="ledger.entry_posted", object_id=expiry.pk).payload["hours"] == "0.00"
        assert services.expire_lots(now=T0 + 11 * DAY) == 0

    def test_lots_of_several_contracts_expire_in_one_run(self, org, other_org):
        mine, theirs = active_contract(org), active_contract(other_org)
        credit(mine, 3, at=T0, expires_at=T0 + DAY)
        credit(mine, 4, at=T0, expires_at=T0 + 2 * DAY)
        credit(theirs, 5, at=T0, expires_at=T0 + DAY)
        credit(theirs, 6, at=T0)
        assert services.expire_lots(now=T0 + 3 * DAY) == 3
        assert running(mine) == 0 and running(theirs) == 6

    def test_the_lot_view_shows_the_expiry(self, api, org):
        contract = active_contract(org)
        credit(contract, 10, at=T0, expires_at=T0 + 10 * DAY)
        work(contract, 4, at=T0 + DAY)
        run_lifecycle(now=T0 + 10 * DAY)
        lots = api("viewer").get(lots_url(contract)).json()
        assert figures(lots) == [("10.00", "4.00", "6.00", "0.00")]
        balance = api("viewer").get(f"/api/v1/contracts/{contract.pk}/balance").json()
        assert (balance["expired_hours"], balance["remaining_hours"]) == ("6.00", "0.00")
        [expiry] = api("viewer").get("/api/v1/ledger_entries?reason_code=lot_expired&fields=lot,hours").json()
        assert expiry["hours"] == "-6.00" and expiry["lot"]["id"] == lots[0]["id"]

    def test_the_lots_past_an_unposted_expiry_show_what_its_posting_will(self, api, org):
        contract = active_contract(org)
        lot = credit(contract, 100, at=T0, expires_at=dt.datetime(2028, 1, 1, 5, tzinfo=dt.UTC))
        credit(contract, 20, at=T0)
        work(contract, 11, at=T0 + DAY)
        client = api("viewer")
        entries = LedgerEntry.objects.filter(contract=contract).count()
        after = client.get(lots_url(contract, as_of="2028-02-01T00:00:00Z")).json()
        assert figures(after) == [("100.00", "11.00", "89.00", "0.00"), ("20.00", "0.00", "0.00", "20.00")]
        before = client.get(lots_url(contract, as_of="2027-12-31T23:00:00Z")).json()
        assert figures(before) == [("100.00", "11.00", "0.00", "89.00"), ("20.00", "0.00", "0.00", "20.00")]
        assert LedgerEntry.objects.filter(contract=contract).count() == entries  # a read posts nothing
        balance = client.get(f"/api/v1/contracts/{contract.pk}/balance?as_of=2028-02-01T00:00:00Z").json()
        assert (balance["expired_hours"], balance["remaining_hours"]) == ("89.00", "20.00")
        run_lifecycle(now=dt.datetime(2028, 1, 1, 6, tzinfo=dt.UTC))
        assert LedgerEntry.objects.get(lot=lot, reason_code="lot_expired").hours == -89
        assert client.get(lots_url(contract, as_of="2028-02-01T00:00:00Z")).json() == after

    def test_graphql_lots_and_balance_past_an_unposted_expiry(self, api, org):
        from tests.graphql.conftest import GraphQLClient

        contract = active_contract(org)
        credit(contract, 100, at=T0, expires_at=dt.datetime(2028, 1, 1, 5, tzinfo=dt.UTC))
        work(contract, 11, at=T0 + DAY)
        query = """query($id: ID!) {
              contractLots(contractId: $id, asOf: "2028-02-01T00:00:00Z") { consumed expired remaining }
              contractBalance(contractId: $id, asOf: "2028-02-01T00:00:00Z") { remainingHours expiredHours }
            }"""
        client = GraphQLClient(api("viewer"))
        data = client(query, {"id": contract.pk})
        assert data == {
            "contractLots": [{"consumed": "11.00", "expired": "89.00", "remaining": "0.00"}],
            "contractBalance": {"remainingHours": "0.00", "expiredHours": "89.00"},
        }
        assert not LedgerEntry.objects.filter(contract=contract, reason_code="lot_expired").exists()
        run_lifecycle(now=dt.datetime(2028, 1, 1, 6, tzinfo=dt.UTC))
        assert client(query, {"id": contract.pk}) == data

    def test_the_books_are_closed_before_a_booked_expiry(self, org):
        contract = active_contract(org)
        credit(contract, 10, at=T0, expires_at=T0 + 10 * DAY)
        credit(contract, 10, at=T0)
        run_lifecycle(now=T0 + 10 * DAY)
        with pytest.raises(Conflict, match="closed"):
            work(contract, 1, at=T0 + 5 * DAY, now=T0 + 11 * DAY)
        with pytest.raises(Conflict, match="closed"):
            credit(contract, 1, at=T0 + 5 * DAY, now=T0 + 11 * DAY)
        # Money moves no hours: a penalty may still be dated back.
        post(contract, "penalty", amount=Decimal("10"), currency="EUR", at=T0 + 5 * DAY, now=T0 + 11 * DAY)
        work(contract, 1, at=T0 + 10 * DAY, now=T0 + 11 * DAY)  # at the expiry itself: open

    def test_an_entry_without_hours_is_never_a_lot(self, org):
        # Not postable (money does not expire), but data written before that rule must not stop run_lifecycle.
        contract = active_contract(org)
        LedgerEntry.objects.create(
            organization=org,
            contract=contract,
            entry_type="credit",
            hours=0,
            amount=Decimal("50.00"),
            currency="EUR",
            occurred_at=T0,
            expires_at=T0 + DAY,
        )
        summary = run_lifecycle(now=T0 + 2 * DAY)
        assert summary.more["lots expired"] == 0
        assert services.replay(contract).lots == []


@pytest.mark.django_db
class TestLotsEndpoint:
    def test_bad_parameters_and_tenancy(self, api, anon, org, other_org):
        contract = active_contract(org)
        client = api("viewer")
        for params, name in [({"as_of": "2026-02-30T00:00:00Z"}, "as_of"), ({"window_days": "30"}, "window_days")]:
            response = client.get(lots_url(contract, **params))
            assert response.status_code == 400 and name in response.json()["errors"], params
        assert client.get(lots_url(active_contract(other_org))).status_code == 404
        assert anon.get(lots_url(contract)).status_code == 401
        assert client.get(lots_url(contract)).json() == []


@pytest.mark.django_db
@pytest.mark.parametrize("allow_overrun", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_balance_and_the_lots_always_agree_with_the_entries(org, allow_overrun, seed):
    """A seeded random walk of postings and expiry runs; after every step the running balance, a
    fresh sum, the balance and the lots tell one story, and without overrun nothing is overdrawn."""
    rng = random.Random(seed)
    contract = active_contract(org, allow_overrun=allow_overrun)
    on_site = job(contract)
    instant, refused = T0, 0
    for _ in range(60):
        instant += dt.timedelta(hours=rng.randint(1, 60))
        step = rng.choice(["credit", "credit", "work", "work", "work", "take", "give", "expire"])
        hours = Decimal(rng.choice(["0.25", "1.00", "2.50", "4.00", "7.75"]))
        try:
            if step == "credit":
                expires = rng.choice([None, instant + rng.randint(1, 15) * DAY])
                credit(contract, hours, at=instant, expires_at=expires)
            elif step == "work":
                work(contract, hours, at=instant, work_order=on_site)
            elif step in ("take", "give"):
                post(contract, "adjustment", hours if step == "give" else -hours, at=instant)
            else:
                services.expire_lots(now=instant)
        except Conflict:
            refused += 1
        remaining = running(contract)
        assert remaining == fresh_sum(contract)
        # The balance and the lots count the expiries run_lifecycle has not posted yet; the running
        # balance still holds those hours.
        unbooked = services.unbooked_expiries(contract, instant)
        balance = services.balance(contract, as_of=instant)
        assert balance["remaining_hours"] == remaining - unbooked
        assert balance["total_hours"] - balance["consumed_hours"] - balance["expired_hours"] == remaining - unbooked
        book = services.replay(contract, as_of=instant)
        for lot in book.lots:
            assert 0 <= lot.remaining <= lot.allocated
        assert sum((lot.remaining for lot in book.lots), Decimal(0)) - book.overrun == remaining
        shown = services.lot_book(contract, as_of=instant)
        assert sum((lot.remaining for lot in shown.lots), Decimal(0)) - shown.overrun == remaining - unbooked
        assert sum((lot.expired for lot in shown.lots), Decimal(0)) == balance["expired_hours"]
        assert balance["overrun_hours"] == book.overrun == shown.overrun
        if not allow_overrun:
            assert remaining - unbooked >= 0 and book.overrun == 0
    assert services.running_balance_errors() == []
    assert refused == 0 or not allow_overrun


@pytest.mark.django_db
def test_a_blank_as_of_is_a_400_naming_it(api, org):
    # Found by the schema fuzz: `/lots?as_of=` answered 200 (now), where every other parameter
    # that is not a filter, given blank, is a 400 naming it.
    response = api("viewer").get(lots_url(active_contract(org), as_of=""))
    assert response.status_code == 400, response.content
    assert "as_of" in response.json()["errors"]
