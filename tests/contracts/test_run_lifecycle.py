"""`run_lifecycle`: the clock of contracts (DESIGN §8), run at fixed `--now` instants.

- `scheduled` -> `active` at the start of the start date, in the contract's time zone;
- at the end of the expiry date (contract time zone): auto-renew (active, `auto_renew`, no notice
  given) into a new active contract from the next day for `renewal_term_months`, the original
  `renewed`; otherwise `expired`;
- `contract.expiring` once per window (90/60/30/7 days to expiry), `contract.notice_due` once per
  window (30/7 days to the notice date);
- idempotent, prints progress and a summary; a bad `--now` is a CommandError.

Day boundaries are tested in zones far apart: Pacific/Auckland (UTC+12/+13) and America/Los_Angeles
(UTC-8/-7), which are 20 or 21 hours apart, so the same calendar date begins at very different instants.
"""

import datetime as dt
import io
import re
import zoneinfo
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.api.exceptions import Conflict
from contracts import services
from contracts.models import Contract, ContractReminder, LineItem
from events.models import Event

AKL = "Pacific/Auckland"
LAX = "America/Los_Angeles"
# The contracts' own counts, then those of steps other apps register (", 0 lots expired"), then the time.
SUMMARY = re.compile(
    r"^Summary: (\d+) activated, (\d+) expired, (\d+) auto-renewed, (\d+) reminders sent"
    r"((?:, \d+ [a-z][a-z ]*)*) in \d+\.\d\ds\.$"
)


def run(now: str) -> str:
    out = io.StringIO()
    call_command("run_lifecycle", now=now, stdout=out)
    return out.getvalue()


def summary(output: str) -> tuple[int, int, int, int]:
    """(activated, expired, auto-renewed, reminders) from the summary line, which must be the last."""
    match = SUMMARY.match(output.rstrip("\n").splitlines()[-1])
    assert match, output
    return tuple(int(n) for n in match.groups()[:4])


def other_steps(output: str) -> dict[str, int]:
    """The counts other apps' registered steps add to the summary line."""
    extra = SUMMARY.match(output.rstrip("\n").splitlines()[-1]).group(5)
    return {name: int(count) for count, name in re.findall(r", (\d+) ([a-z][a-z ]*)", extra)}


def at(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def status_of(contract) -> str:
    return Contract.objects.get(pk=contract.pk).status


def events(contract, type=None):
    found = Event.objects.filter(object_type="contract", object_id=contract.pk).order_by("id")
    return list(found.filter(type=type) if type else found)


def reminder_events(contract):
    return [
        (e.type, e.payload["window_days"])
        for e in Event.objects.filter(object_id=contract.pk, type__in=["contract.expiring", "contract.notice_due"])
        .order_by("id")
    ]  # fmt: skip


@pytest.fixture
def manager(make_member, org):
    return make_member("manager", org).user


# --- activation at the start of the local start date -------------------------------------------------


@pytest.mark.django_db
class TestActivation:
    @pytest.mark.parametrize(
        ("time_zone", "start", "midnight"),
        [
            (AKL, dt.date(2026, 3, 1), "2026-02-28T11:00:00Z"),  # NZDT, UTC+13
            (AKL, dt.date(2026, 7, 1), "2026-06-30T12:00:00Z"),  # NZST, UTC+12
            (AKL, dt.date(2026, 4, 5), "2026-04-04T11:00:00Z"),  # the day NZDT ends (at 03:00)
            (AKL, dt.date(2026, 9, 27), "2026-09-26T12:00:00Z"),  # the day NZDT begins (at 02:00)
            (LAX, dt.date(2026, 3, 1), "2026-03-01T08:00:00Z"),  # PST, UTC-8
            (LAX, dt.date(2026, 7, 1), "2026-07-01T07:00:00Z"),  # PDT, UTC-7
            (LAX, dt.date(2026, 3, 8), "2026-03-08T08:00:00Z"),  # the day PDT begins
            (LAX, dt.date(2026, 11, 1), "2026-11-01T07:00:00Z"),  # the day PDT ends
        ],
    )
    def test_active_exactly_at_local_midnight_of_the_start_date(self, make_contract, time_zone, start, midnight):
        contract = make_contract(
            status="scheduled", time_zone=time_zone, start_date=start, expiry_date=start + dt.timedelta(days=365)
        )
        one_second_before = (at(midnight) - dt.timedelta(seconds=1)).isoformat()

        output = run(one_second_before)
        assert status_of(contract) == "scheduled"
        assert summary(output) == (0, 0, 0, 0)
        assert events(contract) == []

        output = run(midnight)
        assert status_of(contract) == "active"
        assert summary(output) == (1, 0, 0, 0)
        assert f"  activated {contract.reference}\n" in output
        (event,) = events(contract)
        assert event.type == "contract.state_changed"
        assert event.payload == {
            "from": "scheduled",
            "to": "active",
            "action": "activate",
            "reason": "start date reached",
        }
        assert event.actor is None
        assert event.occurred_at == at(midnight)

    def test_the_contracts_time_zone_drives_the_day_not_utc(self, make_contract):
        auckland = make_contract(status="scheduled", time_zone=AKL, start_date=dt.date(2026, 3, 1))
        los_angeles = make_contract(status="scheduled", time_zone=LAX, start_date=dt.date(2026, 3, 1))
        utc = make_contract(status="scheduled", time_zone="UTC", start_date=dt.date(2026, 3, 1))

        # 1 March has begun in Auckland, 21 hours before UTC midnight and 29 before Los Angeles.
        run("2026-02-28T11:00:00Z")
        assert [status_of(c) for c in (auckland, utc, los_angeles)] == ["active", "scheduled", "scheduled"]
        # UTC midnight of 1 March: still 28 February (16:00) in Los Angeles.
        run("2026-03-01T00:00:00Z")
        assert [status_of(c) for c in (utc, los_angeles)] == ["active", "scheduled"]
        run("2026-03-01T07:59:59Z")
        assert status_of(los_angeles) == "scheduled"
        run("2026-03-01T08:00:00Z")
        assert status_of(los_angeles) == "active"

    def test_now_may_carry_any_offset_and_without_one_is_utc(self, make_contract):
        contract = make_contract(status="scheduled", time_zone=AKL, start_date=dt.date(2026, 3, 1))
        run("2026-02-28T23:59:59+13:00")  # local, one second before
        assert status_of(contract) == "scheduled"
        output = run("2026-02-28T11:00:00")  # naive: UTC
        assert output.splitlines()[0] == "run_lifecycle at 2026-02-28T11:00:00+00:00"
        assert status_of(contract) == "active"

    def test_only_scheduled_contracts_are_activated(self, make_contract):
        others = [
            make_contract(status=status, start_date=dt.date(2026, 1, 1))
            for status in ("draft", "pending_approval", "suspended", "terminated")
        ]
        assert summary(run("2026-06-01T00:00:00Z")) == (0, 0, 0, 0)
        assert [status_of(c) for c in others] == ["draft", "pending_approval", "suspended", "terminated"]

    def test_a_long_missed_start_and_expiry_catch_up_in_one_run(self, make_contract):
        contract = make_contract(
            status="scheduled", time_zone=LAX, start_date=dt.date(2026, 1, 1), expiry_date=dt.date(2026, 1, 31)
        )
        output = run("2026-03-01T00:00:00Z")
        assert summary(output) == (1, 1, 0, 0)
        assert status_of(contract) == "expired"
        assert [e.payload["to"] for e in events(contract, "contract.state_changed")] == ["active", "expired"]


# --- expiry at the end of the local expiry date ---------------------------------------------------------


@pytest.mark.django_db
class TestExpiry:
    @pytest.mark.parametrize(
        ("time_zone", "expiry", "end"),
        [
            (AKL, dt.date(2026, 2, 28), "2026-02-28T11:00:00Z"),  # 1 March 00:00 NZDT
            (AKL, dt.date(2026, 6, 30), "2026-06-30T12:00:00Z"),  # 1 July 00:00 NZST
            (AKL, dt.date(2026, 4, 4), "2026-04-04T11:00:00Z"),  # the next day is the end of NZDT
            (LAX, dt.date(2026, 2, 28), "2026-03-01T08:00:00Z"),  # 1 March 00:00 PST
            (LAX, dt.date(2026, 10, 31), "2026-11-01T07:00:00Z"),  # the next day is the end of PDT
        ],
    )
    def test_expires_at_the_end_of_the_local_expiry_date(self, make_contract, time_zone, expiry, end):
        contract = make_contract(
            status="active", time_zone=time_zone, start_date=dt.date(2026, 1, 1), expiry_date=expiry
        )
        one_second_before = (at(end) - dt.timedelta(seconds=1)).isoformat()

        output = run(one_second_before)
        assert status_of(contract) == "active"
        assert summary(output)[:3] == (0, 0, 0)

        output = run(end)
        assert status_of(contract) == "expired"
        assert summary(output)[:3] == (0, 1, 0)
        assert f"  expired {contract.reference}\n" in output
        (event,) = events(contract, "contract.state_changed")
        assert event.payload == {"from": "active", "to": "expired", "action": "expire", "reason": "expiry date passed"}
        assert event.occurred_at == at(end)
        assert not Contract.objects.filter(renewed_from=contract).exists()

    def test_the_same_expiry_date_ends_21_hours_apart(self, make_contract):
        auckland = make_contract(status="active", time_zone=AKL, expiry_date=dt.date(2026, 2, 28))
        los_angeles = make_contract(status="active", time_zone=LAX, expiry_date=dt.date(2026, 2, 28))
        run("2026-02-28T11:00:00Z")  # 1 March 00:00 in Auckland; 28 February 03:00 in Los Angeles
        assert (status_of(auckland), status_of(los_angeles)) == ("expired", "active")
        run("2026-03-01T07:59:59Z")
        assert status_of(los_angeles) == "active"
        run("2026-03-01T08:00:00Z")
        assert status_of(los_angeles) == "expired"

    def test_a_suspended_contract_expires_too_even_with_auto_renew(self, make_contract):
        contract = make_contract(
            status="suspended", time_zone=LAX, expiry_date=dt.date(2026, 2, 28), auto_renew=True, renewal_term_months=12
        )
        assert summary(run("2026-03-01T08:00:00Z"))[:3] == (0, 1, 0)
        assert status_of(contract) == "expired"
        assert not Contract.objects.filter(renewed_from=contract).exists()

    def test_contracts_without_expiry_date_or_already_closed_are_left_alone(self, make_contract):
        open_ended = make_contract(status="active", expiry_date=None)
        closed = [
            make_contract(status=status, expiry_date=dt.date(2026, 1, 31))
            for status in ("draft", "expired", "terminated", "renewed")
        ]
        assert summary(run("2027-06-01T00:00:00Z")) == (0, 0, 0, 0)
        assert status_of(open_ended) == "active"
        assert [status_of(c) for c in closed] == ["draft", "expired", "terminated", "renewed"]


# --- auto-renewal -------------------------------------------------------------------------------------


@pytest.mark.django_db
class TestAutoRenewal:
    @pytest.fixture
    def renewing(self, make_contract):
        contract = make_contract(
            status="active",
            time_zone=AKL,
            start_date=dt.date(2025, 4, 1),
            expiry_date=dt.date(2026, 3, 31),
            auto_renew=True,
            renewal_term_months=12,
            notice_period_days=30,
            currency="KWD",
            contract_value=Decimal("1500.125"),
            hours_budget=Decimal("120.00"),
            service_territory_id="north",
        )
        LineItem.objects.create(
            organization=contract.organization, contract=contract, description="Preventive maintenance", quantity=4
        )
        return contract

    END = "2026-03-31T11:00:00Z"  # 1 April 2026 00:00 NZDT: the end of 31 March in Auckland

    def test_renews_automatically_without_notice(self, renewing):
        output = run("2026-03-31T10:59:59Z")
        assert status_of(renewing) == "active"
        assert not Contract.objects.filter(renewed_from=renewing).exists()
        assert summary(output)[:3] == (0, 0, 0)

        output = run(self.END)
        assert summary(output)[:3] == (0, 0, 1)
        original = Contract.objects.get(pk=renewing.pk)
        renewal = original.renewed_by
        assert f"  auto-renewed {original.reference} as {renewal.reference}\n" in output

        assert original.status == "renewed"
        assert renewal.renewed_from_id == original.pk
        assert renewal.reference == f"{original.reference}-R2"
        # Active from the next day, for renewal_term_months, pre-approved by the renewal clause.
        assert renewal.status == "active"
        assert renewal.start_date == dt.date(2026, 4, 1)
        assert renewal.expiry_date == dt.date(2027, 3, 31)
        assert renewal.notice_date == dt.date(2027, 3, 1)
        assert renewal.approvals.count() == 0
        # The same terms.
        for name in (
            "name", "contract_type", "counterparty_id", "counterparty_role", "time_zone", "notice_period_days",
            "auto_renew", "renewal_term_months", "currency", "contract_value", "hours_budget",
            "service_territory_id", "organization_id",
        ):  # fmt: skip
            assert getattr(renewal, name) == getattr(original, name), name
        assert list(renewal.line_items.values_list("description", "quantity")) == [
            ("Preventive maintenance", Decimal("4"))
        ]

        created, activated = events(renewal)
        assert created.type == "contract.created"
        assert created.payload["renewed_from_id"] == original.pk
        assert activated.type == "contract.state_changed"
        assert activated.payload == {"from": None, "to": "active", "action": "auto_renew", "reason": "renewal clause"}
        (renewed,) = events(original, "contract.state_changed")
        assert renewed.payload["from"] == "active" and renewed.payload["to"] == "renewed"
        assert renewed.payload["action"] == "mark_renewed"
        assert {e.occurred_at for e in (created, activated, renewed)} == {at(self.END)}

    def test_an_auto_renewal_ends_within_the_services_dates(self, make_contract):
        # Found by an outside sweep: a clause renewed a contract into the year 3000, which a renewal
        # by hand is refused (the service's dates end on 2999-12-31).
        contract = make_contract(
            status="active", time_zone="UTC", start_date=dt.date(2999, 1, 1), expiry_date=dt.date(2999, 6, 30),
            auto_renew=True, renewal_term_months=12,
        )  # fmt: skip
        run("2999-07-01T12:00:00Z")
        renewal = Contract.objects.get(renewed_from=contract)
        assert (renewal.start_date, renewal.expiry_date) == (dt.date(2999, 7, 1), dt.date(2999, 12, 31))
        run("2999-12-31T23:59:00Z")  # its own last day: nothing after it to renew into
        assert status_of(renewal) == "active" and not Contract.objects.filter(renewed_from=renewal).exists()

    def test_the_term_is_counted_in_calendar_months(self, make_contract):
        contract = make_contract(
            status="active", time_zone=LAX, expiry_date=dt.date(2026, 1, 31), auto_renew=True, renewal_term_months=1
        )
        run("2026-02-01T08:00:00Z")
        renewal = Contract.objects.get(renewed_from=contract)
        assert (renewal.start_date, renewal.expiry_date) == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))
        # ... and the renewal itself renews at the end of its term, in its own (inherited) time zone.
        run("2026-03-01T07:59:59Z")
        assert status_of(renewal) == "active"
        run("2026-03-01T08:00:00Z")
        second = Contract.objects.get(renewed_from=renewal)
        assert status_of(renewal) == "renewed"
        assert (second.status, second.start_date, second.expiry_date) == (
            "active",
            dt.date(2026, 3, 1),
            dt.date(2026, 3, 31),
        )

    def test_with_notice_given_the_contract_expires(self, renewing, manager):
        services.give_notice(
            contract=renewing, actor=manager, reason="Switching vendor", now=at("2026-02-15T00:00:00Z")
        )
        output = run(self.END)
        assert summary(output)[:3] == (0, 1, 0)
        assert status_of(renewing) == "expired"
        assert not Contract.objects.filter(renewed_from=renewing).exists()
        assert Contract.objects.count() == 1
        (notice,) = events(renewing, "contract.notice_given")
        assert notice.payload == {"reason": "Switching vendor"}
        assert notice.actor == manager

    def test_without_auto_renew_the_contract_expires(self, make_contract):
        contract = make_contract(
            status="active", time_zone=AKL, expiry_date=dt.date(2026, 3, 31), auto_renew=False, renewal_term_months=12
        )
        assert summary(run(self.END))[:3] == (0, 1, 0)
        assert status_of(contract) == "expired"

    def test_a_renewal_already_drafted_is_not_duplicated(self, renewing, manager):
        draft = services.renew_contract(contract=renewing, actor=manager, now=at("2026-03-01T00:00:00Z"))
        assert summary(run(self.END))[:3] == (0, 1, 0)
        assert status_of(renewing) == "expired"
        assert list(Contract.objects.filter(renewed_from=renewing)) == [draft]
        assert status_of(draft) == "draft"

    def test_rerunning_changes_nothing_and_sends_nothing_twice(self, renewing):
        first = run(self.END)
        assert summary(first)[:3] == (0, 0, 1)
        contracts = sorted(Contract.objects.values_list("pk", "status", "start_date", "expiry_date"))
        event_ids = list(Event.objects.values_list("pk", flat=True))
        reminders = ContractReminder.objects.count()

        for now in (self.END, "2026-03-31T11:00:01Z", "2026-04-01T12:00:00Z"):
            output = run(now)
            assert summary(output) == (0, 0, 0, 0), (now, output)
            assert output.splitlines()[1:-1] == []  # no progress lines: nothing was done
        assert sorted(Contract.objects.values_list("pk", "status", "start_date", "expiry_date")) == contracts
        assert list(Event.objects.values_list("pk", flat=True)) == event_ids
        assert ContractReminder.objects.count() == reminders


# --- notice of non-renewal --------------------------------------------------------------------------------


@pytest.mark.django_db
class TestGiveNotice:
    def test_notice_is_possible_until_the_end_of_the_local_notice_date(self, make_contract, manager):
        contract = make_contract(
            status="active", time_zone=AKL, expiry_date=dt.date(2026, 3, 31), auto_renew=True,
            renewal_term_months=12, notice_period_days=30,
        )  # fmt: skip
        assert contract.notice_date == dt.date(2026, 3, 1)
        # 2 March 00:00 NZDT is 1 March 11:00 UTC: too late from then on.
        with pytest.raises(Conflict, match="Too late: the notice date was 2026-03-01"):
            services.give_notice(contract=contract, actor=manager, now=at("2026-03-01T11:00:00Z"))
        services.give_notice(contract=contract, actor=manager, reason="", now=at("2026-03-01T10:59:59Z"))
        contract.refresh_from_db()
        assert contract.notice_given_at == at("2026-03-01T10:59:59Z")
        with pytest.raises(Conflict, match="already given"):
            services.give_notice(contract=contract, actor=manager, now=at("2026-03-01T10:59:59Z"))

    def test_notice_given_stops_the_notice_reminders(self, make_contract, manager):
        contract = make_contract(
            status="active", time_zone=LAX, expiry_date=dt.date(2026, 12, 31), auto_renew=True,
            renewal_term_months=12, notice_period_days=60,
        )  # fmt: skip
        services.give_notice(contract=contract, actor=manager, now=at("2026-09-01T00:00:00Z"))
        run("2026-10-25T07:00:00Z")  # 7 days before the notice date (1 November) and 67 before expiry
        assert reminder_events(contract) == [("contract.expiring", 90)]


@pytest.mark.django_db
class TestGiveNoticeAPI:
    """`POST /api/v1/contracts/{id}/give_notice`, against the real clock (dates relative to today)."""

    @pytest.fixture
    def today(self):
        return timezone.now().astimezone(dt.UTC).date()

    def make(self, make_contract, today, expiry_in_days, **fields):
        return make_contract(
            status="active", time_zone="UTC", start_date=today - dt.timedelta(days=300),
            expiry_date=today + dt.timedelta(days=expiry_in_days), auto_renew=True, renewal_term_months=12,
            notice_period_days=30, **fields,
        )  # fmt: skip

    def test_records_the_notice(self, api, make_contract, today):
        contract = self.make(make_contract, today, expiry_in_days=60)
        client = api("manager")
        response = client.post(f"/api/v1/contracts/{contract.pk}/give_notice", {"reason": "Budget cut"}, format="json")
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["id"] == contract.pk and body["status"] == "active"
        assert body["notice_reason"] == "Budget cut"
        assert body["notice_given_at"] is not None
        contract.refresh_from_db()
        assert contract.notice_given_at is not None and contract.notice_reason == "Budget cut"
        (event,) = events(contract, "contract.notice_given")
        assert event.payload == {"reason": "Budget cut"}

        again = client.post(f"/api/v1/contracts/{contract.pk}/give_notice", {}, format="json")
        assert again.status_code == 409
        assert "already given" in again.json()["message"]

    def test_after_the_notice_date_it_is_409(self, api, make_contract, today):
        contract = self.make(make_contract, today, expiry_in_days=10)  # notice date 20 days ago
        response = api("manager").post(f"/api/v1/contracts/{contract.pk}/give_notice", {}, format="json")
        assert response.status_code == 409, response.content
        assert (
            response.json()["message"]
            == f"Too late: the notice date was {contract.notice_date}; the contract will renew."
        )
        contract.refresh_from_db()
        assert contract.notice_given_at is None
        assert events(contract, "contract.notice_given") == []

    def test_without_auto_renew_it_is_409(self, api, make_contract, today):
        contract = self.make(make_contract, today, expiry_in_days=60)
        Contract.objects.filter(pk=contract.pk).update(auto_renew=False)
        response = api("manager").post(f"/api/v1/contracts/{contract.pk}/give_notice", {}, format="json")
        assert response.status_code == 409, response.content
        assert "no auto_renew" in response.json()["message"]

    def test_needs_the_manager_role(self, api, make_contract, today):
        contract = self.make(make_contract, today, expiry_in_days=60)
        response = api("operator").post(f"/api/v1/contracts/{contract.pk}/give_notice", {}, format="json")
        assert response.status_code == 403
        contract.refresh_from_db()
        assert contract.notice_given_at is None


# --- reminders ------------------------------------------------------------------------------------------


def local_midnight(day: dt.date, time_zone: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=zoneinfo.ZoneInfo(time_zone)).astimezone(dt.UTC)


@pytest.mark.django_db
class TestReminders:
    def test_expiring_once_per_window_at_90_60_30_and_7_days(self, make_contract):
        contract = make_contract(status="active", time_zone=LAX, expiry_date=dt.date(2026, 12, 31))
        expiry = contract.expiry_date
        schedule = [(100, []), (91, []), (90, [90]), (89, []), (61, []), (60, [60]), (45, []), (30, [30]),
                    (29, []), (8, []), (7, [7]), (6, []), (1, []), (0, [])]  # fmt: skip
        sent = []
        for days, expected in schedule:
            now = local_midnight(expiry - dt.timedelta(days=days), LAX)
            for _ in range(2):  # the second run of the same day sends nothing
                run(now.isoformat())
            sent += [("contract.expiring", w) for w in expected]
            assert reminder_events(contract) == sent, days
        payloads = [e.payload for e in events(contract, "contract.expiring")]
        named = {"reference": contract.reference, "name": contract.name}
        assert payloads == [{"window_days": w, "date": "2026-12-31", "days_left": w, **named} for w in (90, 60, 30, 7)]

    def test_a_window_starts_at_local_midnight(self, make_contract):
        auckland = make_contract(status="active", time_zone=AKL, expiry_date=dt.date(2026, 12, 31))
        los_angeles = make_contract(status="active", time_zone=LAX, expiry_date=dt.date(2026, 12, 31))
        # 90 days before 31 December is 2 October: 00:00 NZDT is 1 October 11:00 UTC, 00:00 PDT is 07:00 UTC.
        run("2026-10-01T10:59:59Z")
        assert reminder_events(auckland) == []
        output = run("2026-10-01T11:00:00Z")
        assert reminder_events(auckland) == [("contract.expiring", 90)]
        assert f"  {auckland.reference}: expires in 90 days\n" in output
        run("2026-10-02T06:59:59Z")
        assert reminder_events(los_angeles) == []
        run("2026-10-02T07:00:00Z")
        assert reminder_events(los_angeles) == [("contract.expiring", 90)]
        assert reminder_events(auckland) == [("contract.expiring", 90)]

    def test_notice_due_once_per_window_at_30_and_7_days(self, make_contract):
        contract = make_contract(
            status="active", time_zone=AKL, expiry_date=dt.date(2026, 12, 31), auto_renew=True,
            renewal_term_months=12, notice_period_days=45,
        )  # fmt: skip
        notice = contract.notice_date
        assert notice == dt.date(2026, 11, 16)
        for days in (31, 30, 30, 29, 8, 7, 7, 6, 0):
            run(local_midnight(notice - dt.timedelta(days=days), AKL).isoformat())
        notices = [e.payload for e in events(contract, "contract.notice_due")]
        named = {"reference": contract.reference, "name": contract.name}
        assert notices == [
            {"window_days": 30, "date": "2026-11-16", "days_left": 30, **named},
            {"window_days": 7, "date": "2026-11-16", "days_left": 7, **named},
        ]

    def test_a_contract_first_seen_at_20_days_gets_only_the_30_day_event(self, make_contract):
        contract = make_contract(status="active", time_zone=LAX, expiry_date=dt.date(2026, 12, 31))
        output = run(local_midnight(dt.date(2026, 12, 11), LAX).isoformat())
        assert summary(output) == (0, 0, 0, 1)
        assert f"  {contract.reference}: expires in 20 days\n" in output
        (event,) = events(contract, "contract.expiring")
        assert event.payload == {
            "window_days": 30, "date": "2026-12-31", "days_left": 20, "reference": contract.reference,
            "name": contract.name,
        }  # fmt: skip
        # The wider windows count as done: they are never sent late ...
        assert sorted(ContractReminder.objects.filter(contract=contract).values_list("window_days", flat=True)) == [
            30, 60, 90,
        ]  # fmt: skip
        run(local_midnight(dt.date(2026, 12, 12), LAX).isoformat())
        assert reminder_events(contract) == [("contract.expiring", 30)]
        # ... and the 7-day window still comes.
        run(local_midnight(dt.date(2026, 12, 24), LAX).isoformat())
        assert reminder_events(contract) == [("contract.expiring", 30), ("contract.expiring", 7)]

    def test_the_local_date_counts_the_days_not_the_utc_date(self, make_contract):
        contract = make_contract(status="active", time_zone=AKL, expiry_date=dt.date(2026, 12, 31))
        # 23 December 12:00 UTC is already 24 December (01:00 NZDT) in Auckland: 7 days left, not 8.
        output = run("2026-12-23T12:00:00Z")
        assert f"  {contract.reference}: expires in 7 days\n" in output
        assert reminder_events(contract) == [("contract.expiring", 7)]

    def test_only_live_contracts_get_reminders(self, make_contract):
        suspended = make_contract(status="suspended", expiry_date=dt.date(2026, 12, 31))
        quiet = [
            make_contract(status=status, expiry_date=dt.date(2026, 12, 31))
            for status in ("draft", "pending_approval", "expired", "terminated", "renewed")
        ]
        quiet.append(
            make_contract(status="scheduled", start_date=dt.date(2026, 12, 25), expiry_date=dt.date(2026, 12, 31))
        )
        output = run("2026-12-20T12:00:00Z")
        assert summary(output)[3] == 1
        assert reminder_events(suspended) == [("contract.expiring", 30)]
        assert all(reminder_events(c) == [] for c in quiet)

    def test_notice_due_only_for_auto_renewing_contracts(self, make_contract):
        plain = make_contract(status="active", expiry_date=dt.date(2026, 12, 31), notice_period_days=10)
        run("2026-12-20T12:00:00Z")  # 11 days to expiry, 1 to the notice date
        assert reminder_events(plain) == [("contract.expiring", 30)]

    def test_the_database_refuses_a_second_reminder_for_the_same_window(self, make_contract):
        contract = make_contract(status="active", expiry_date=dt.date(2026, 12, 31))
        fields = {"organization": contract.organization, "contract": contract, "kind": "expiring",
                  "window_days": 30, "due_date": contract.expiry_date}  # fmt: skip
        ContractReminder.objects.create(**fields)
        with pytest.raises(IntegrityError), transaction.atomic():
            ContractReminder.objects.create(**fields)

    def test_a_reminder_recorded_by_another_runner_is_not_sent_again(self, make_contract):
        contract = make_contract(status="active", time_zone="UTC", expiry_date=dt.date(2026, 12, 31))
        for window in (90, 60, 30):
            ContractReminder.objects.create(
                organization=contract.organization, contract=contract, kind="expiring", window_days=window,
                due_date=contract.expiry_date,
            )  # fmt: skip
        assert services.send_reminders(now=at("2026-12-11T00:00:00Z")) == 0
        assert reminder_events(contract) == []


# --- the command's output and arguments ------------------------------------------------------------------


@pytest.mark.django_db
class TestCommand:
    def test_prints_a_header_progress_and_the_summary(self, make_contract):
        scheduled = make_contract(status="scheduled", time_zone=LAX, start_date=dt.date(2026, 3, 1))
        ending = make_contract(status="active", time_zone=LAX, expiry_date=dt.date(2026, 2, 28))
        renewing = make_contract(
            status="active", time_zone=LAX, expiry_date=dt.date(2026, 2, 28), auto_renew=True, renewal_term_months=12
        )
        soon = make_contract(
            status="active", time_zone=LAX, start_date=dt.date(2025, 3, 1), expiry_date=dt.date(2026, 3, 20),
            auto_renew=True, renewal_term_months=12, notice_period_days=5,
        )  # fmt: skip
        output = run("2026-03-01T08:00:00Z")
        lines = output.rstrip("\n").splitlines()
        assert lines[0] == "run_lifecycle at 2026-03-01T08:00:00+00:00"
        renewal = Contract.objects.get(renewed_from=renewing)
        assert lines[1:-1] == [
            f"  activated {scheduled.reference}",
            f"  expired {ending.reference}",
            f"  auto-renewed {renewing.reference} as {renewal.reference}",
            f"  {soon.reference}: expires in 19 days",
            f"  {soon.reference}: notice of non-renewal due in 14 days",
        ]
        assert summary(output) == (1, 1, 1, 2)
        # The steps other apps register (the ledger's prepaid lots) report too; none had work here.
        assert other_steps(output) == {name: 0 for name in services.LIFECYCLE_STEPS}

    def test_the_service_returns_the_same_summary(self, make_contract):
        make_contract(status="scheduled", time_zone=AKL, start_date=dt.date(2026, 3, 1))
        make_contract(status="active", time_zone=AKL, expiry_date=dt.date(2026, 2, 27))
        logged = []
        result = services.run_lifecycle(now=at("2026-02-28T11:00:00+00:00"), log=logged.append)
        assert (result.activated, result.expired, result.auto_renewed, result.reminders) == (1, 1, 0, 0)
        assert set(result.more) == set(services.LIFECYCLE_STEPS)
        assert all(count == 0 for count in result.more.values())
        assert len(logged) == 2

    def test_the_steps_can_be_run_on_their_own(self, make_contract):
        scheduled = make_contract(status="scheduled", time_zone=AKL, start_date=dt.date(2026, 3, 1))
        ending = make_contract(status="active", time_zone=AKL, expiry_date=dt.date(2026, 2, 27))
        now = at("2026-02-28T11:00:00+00:00")
        assert services.expire_due(now=now) == (1, 0)
        assert services.activate_due(now=now) == 1
        assert services.activate_due(now=now) == 0
        assert services.expire_due(now=now) == (0, 0)
        assert (status_of(scheduled), status_of(ending)) == ("active", "expired")

    @pytest.mark.parametrize("value", ["garbage", "tomorrow", "2026/03/01 00:00", "1772323200"])
    def test_a_bad_now_is_a_command_error(self, value):
        with pytest.raises(CommandError, match="not an ISO 8601 timestamp"):
            call_command("run_lifecycle", now=value, stdout=io.StringIO())

    def test_a_bad_now_on_the_command_line_is_a_command_error(self):
        with pytest.raises(CommandError):
            call_command("run_lifecycle", "--now", "not-a-time", stdout=io.StringIO())

    @pytest.mark.parametrize("value", ["2026-02-30T00:00:00", "2026-13-01T00:00:00Z", "2026-03-01T00:00:00+25:00"])
    def test_bug_a_well_formed_but_impossible_now_is_a_command_error_not_a_crash(self, value):
        # parse_datetime() raises ValueError (not None) for a well-formed but impossible date or offset.
        with pytest.raises(CommandError, match="not an ISO 8601 timestamp"):
            call_command("run_lifecycle", now=value, stdout=io.StringIO())

    def test_without_now_it_runs_at_the_current_time(self, make_contract):
        contract = make_contract(status="scheduled", start_date=dt.date(2020, 1, 1), expiry_date=None)
        output = io.StringIO()
        call_command("run_lifecycle", stdout=output)
        assert status_of(contract) == "active"
        assert summary(output.getvalue())[0] == 1


@pytest.mark.django_db
def test_a_contract_that_cannot_be_read_is_skipped_and_reported_the_rest_runs():
    # Found by an outside sweep: one contract whose time zone the machine does not know (a tzdata
    # upgrade that drops a zone) stopped every later expiry, renewal, reminder, billing period and
    # visit of every organization, on every run.
    call_command("seed_demo", "--quiet")
    bad = Contract.objects.get(reference="DEMO-SC-001")
    Contract.objects.filter(pk=bad.pk).update(time_zone="Bogus/Zone")
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"^Skipped \(\d+\): ") as failed:
        call_command("run_lifecycle", now=(timezone.now() + dt.timedelta(days=36)).isoformat(), stdout=out)
    reported = str(failed.value)
    assert f"contract {bad.pk} DEMO-SC-001 (organization demo): ZoneInfoNotFoundError" in reported
    assert "DEMO-" not in reported.replace("DEMO-SC-001", "")  # no other contract failed
    output = out.getvalue()
    activated, expired, renewed, reminders = summary(output)  # the summary is printed first
    assert reminders >= 1 and other_steps(output)["billing periods closed"] >= 1
    assert "DEMO-MA-001: expires in" in output
    assert ContractReminder.objects.exclude(contract=bad).exists()
    assert f"skipped contract {bad.pk} DEMO-SC-001" in output
