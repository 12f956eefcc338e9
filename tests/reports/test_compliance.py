"""`GET /api/v1/reports/sla_compliance`: the SQL report against a slow Python reference.

The reference walks every clock of the random data set (`tests.reports.factories`) in Python,
with its own reading of the rules (decided when stopped, or at the due time if breached while
running; cancelled never, unless past its due time), its own percentiles (`statistics`) and its
own sums; the report must give the same rows, on SQLite and on PostgreSQL (the suite runs on both).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import statistics
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from events.models import Event
from reports.compliance import achieved
from tenancy.currencies import quantize
from tests.reports.factories import build_dataset
from workorders.models import SlaClock

pytestmark = pytest.mark.django_db
URL = "/api/v1/reports/sla_compliance"

CASES = [
    ((), {}),
    (("contract",), {}),
    (("counterparty", "metric"), {}),
    (("sla_rule", "priority"), {}),
    (("month",), {}),
    (("week", "metric"), {}),
    (("contract", "month"), {"metric": "response,resolution"}),
    (("priority",), {"priority": "critical,high"}),
    (("sla_rule",), {"contract_id": "FIRST"}),
    (("sla_rule",), {"contract": "FIRST"}),  # contract_id's older name, kept
]


# --- the slow reference ---------------------------------------------------------------------------


def _decided(clock: SlaClock, now: dt.datetime) -> dt.datetime | None:
    if clock.stopped_at is not None and clock.state == "met":
        return clock.stopped_at
    if clock.state == "breached":
        return clock.due_at  # breached when it passed its due time, whenever it stopped
    if clock.stopped_at is None and clock.state == "running" and clock.due_at and clock.due_at < now:
        return clock.due_at
    if clock.state == "cancelled" and clock.elapsed_seconds > clock.target_minutes * 60:
        return clock.due_at  # cancelled past its due time (the job left the band): breached
    return None


def _label(unit: str, instant: dt.datetime, zone: ZoneInfo) -> str:
    local = instant.astimezone(zone)
    if unit == "month":
        return local.strftime("%Y-%m")
    year, week, _ = local.isocalendar()
    return f"{year}-W{week:02d}"


def _key_of(clock: SlaClock, key: str, instant, zone):
    if key == "contract":
        return clock.rule.contract_id
    if key == "counterparty":
        return clock.rule.contract.counterparty_id
    if key == "sla_rule":
        return clock.rule_id
    if key == "metric":
        return clock.metric
    if key == "priority":
        return clock.work_order.priority
    return _label(key, instant, zone)


def _round(value) -> float:
    return float(Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _percentile(values: list[int], fraction: float) -> float:
    if len(values) == 1:
        return values[0]
    if fraction == 0.5:
        return statistics.median(values)
    return statistics.quantiles(values, n=10, method="inclusive")[int(fraction * 10) - 1]


def _local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=zone)


def _period_start(unit, instant: dt.datetime, zone) -> dt.datetime:
    """The local start of the month or ISO week `instant` falls in."""
    day = instant.astimezone(zone).date()
    day = day.replace(day=1) if unit == "month" else day - dt.timedelta(days=day.weekday())
    return _local_midnight(day, zone)


def _period_ends(unit, start_day: dt.date, end_day: dt.date, zone) -> dict[str, dt.datetime]:
    """Label -> end instant of every month/week touching [start_day, end_day]."""
    ends, day = {}, start_day
    while day <= end_day:
        local = _local_midnight(day, zone)
        label = _label(unit, local, zone)
        if unit == "month":
            following = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        else:
            following = day - dt.timedelta(days=day.weekday()) + dt.timedelta(days=7)
        ends[label] = _local_midnight(following, zone)
        day = following
    return ends


def reference(org, *, date_from, date_to, zone_name, group_by, filters, now) -> list[dict]:
    zone = ZoneInfo(zone_name)
    start = _local_midnight(date_from, zone)
    end = _local_midnight(date_to + dt.timedelta(days=1), zone)
    time_key = next((k for k in group_by if k in ("month", "week")), None)
    ends = _period_ends(time_key, date_from, date_to, zone) if time_key else {None: end}
    groups: dict[tuple, dict] = defaultdict(
        lambda: {
            "decided": 0,
            "met": 0,
            "seconds": [],
            "overage": 0,
            "settled": 0,
            "money": defaultdict(Decimal),
            "waived": 0,
            "open": 0,
        }
    )
    clocks = SlaClock.objects.filter(organization=org).select_related("rule__contract", "work_order")
    for clock in clocks:
        if filters.get("metric") and clock.metric not in filters["metric"]:
            continue
        if filters.get("priority") and clock.work_order.priority not in filters["priority"]:
            continue
        contracts = filters.get("contract_id") or filters.get("contract")
        if contracts and clock.rule.contract_id not in contracts:
            continue
        decided = _decided(clock, now)
        if decided is not None and start <= decided < end:
            key = tuple(_key_of(clock, key, decided, zone) for key in group_by)
            g = groups[key]
            g["decided"] += 1
            g["met"] += clock.state == "met"
        # Minutes to stop: in the row of the period of the stop (whatever period decided it).
        if decided is not None and clock.stopped_at is not None and start <= clock.stopped_at < end:
            key = tuple(_key_of(clock, key, clock.stopped_at, zone) for key in group_by)
            groups[key]["seconds"].append(clock.elapsed_seconds)
        # A breach's overage and penalty count once, in the period of the stop it was settled with
        # (whatever period its clock was decided in), less a waiver by that period's end.
        breach = getattr(clock, "breach", None)
        # (A clock cancelled past its due time has no stop: its breach was settled when it was measured.)
        settled = (breach.clock_stopped_at or breach.measured_at) if breach is not None and breach.final else None
        if decided is not None and settled is not None and start <= settled < end:
            key = tuple(_key_of(clock, key, settled, zone) for key in group_by)
            g = groups[key]
            row_end = ends[_label(time_key, settled, zone)] if time_key else end
            g["settled"] += 1
            g["overage"] += breach.overage_minutes
            if breach.waived_at is None or breach.waived_at >= row_end:
                g["money"][breach.currency] += breach.penalty_amount
        # A waiver counts in the period it was made; a penalty settled in an earlier period (its row
        # closed before the waiver) is subtracted there.
        waived_at = breach.waived_at if breach is not None and breach.state == "waived" else None
        if decided is not None and waived_at is not None and start <= waived_at < end:
            key = tuple(_key_of(clock, key, waived_at, zone) for key in group_by)
            g = groups[key]
            g["waived"] += 1
            row_start = _period_start(time_key, waived_at, zone) if time_key else start
            if settled is not None and settled < row_start:
                g["money"][breach.currency] -= breach.penalty_amount
        # Open until decided; a cancelled clock never decided, until its cancellation was recorded.
        open_until = decided
        if clock.state == "cancelled" and decided is None:
            stops = Event.objects.filter(type="sla_clock.stopped", object_type="slaclock", object_id=clock.pk)
            open_until = max((event.occurred_at for event in stops), default=None)
            if open_until is None:
                continue
        for label, period_end in ends.items():
            if clock.started_at < period_end and (open_until is None or open_until >= period_end):
                key = tuple(label if k == time_key else _key_of(clock, k, None, zone) for k in group_by)
                groups[key]["open"] += 1
    if not group_by:
        groups[()]  # the single row exists even when empty
    rows = []
    for key in sorted(groups, key=lambda k: tuple((0, v) if isinstance(v, int) else (1, str(v)) for v in k)):
        g = groups[key]
        if group_by and not any(g[name] for name in ("decided", "open", "settled", "waived", "seconds")):
            continue
        seconds = g["seconds"]
        rows.append(
            {
                "key": key,
                "decided": g["decided"],
                "met": g["met"],
                "breached": g["decided"] - g["met"],
                "achieved_percent": _round(Decimal(g["met"] * 100) / g["decided"]) if g["decided"] else None,
                "minutes": {
                    "mean": _round(Decimal(sum(seconds)) / len(seconds) / 60) if seconds else None,
                    "p50": _round(Decimal(str(_percentile(seconds, 0.5))) / 60) if seconds else None,
                    "p90": _round(Decimal(str(_percentile(seconds, 0.9))) / 60) if seconds else None,
                    "max": _round(Decimal(max(seconds)) / 60) if seconds else None,
                },
                "overage_minutes": g["overage"],
                "penalties": {c: str(quantize(v, c)) for c, v in sorted(g["money"].items())},
                "waived": g["waived"],
                "open_at_end": g["open"],
            }
        )
    return rows


def _row_key(row: dict, group_by) -> tuple:
    return tuple(row[k]["id"] if isinstance(row[k], dict) else row[k] for k in group_by)


def _assert_same(got: list[dict], want: list[dict], group_by) -> None:
    assert [_row_key(row, group_by) for row in got] == [row["key"] for row in want]
    for row, expected in zip(got, want, strict=True):
        for name in ("decided", "met", "breached", "achieved_percent", "overage_minutes", "penalties", "waived"):
            assert row[name] == expected[name], (group_by, row, expected, name)
        assert row["open_at_end"] == expected["open_at_end"], (group_by, row, expected)
        for stat, value in expected["minutes"].items():
            mine = row["minutes"][stat]
            # Percentiles are interpolated in floating point by the database: a value on a rounding
            # boundary (679.05) may come out one tenth either side.
            assert (mine is None and value is None) or abs(mine - value) < 0.1 + 1e-6, (stat, row, expected)


# --- tests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [11, 12])
def test_the_report_matches_the_slow_reference_on_random_data(api, org, other_org, seed):
    data = build_dataset(org, seed=seed, jobs=45)
    build_dataset(other_org, seed=seed + 100, jobs=10)  # never counted in our report
    client = api("viewer")
    first = data.contracts[0].pk
    for zone_name in ("Europe/Amsterdam", "America/New_York"):
        for group_by, raw_filters in CASES:
            params = {"from": "2026-03-01", "to": "2026-04-30", "time_zone": zone_name}
            if group_by:
                params["group_by"] = ",".join(group_by)
            filters = {}
            for name, value in raw_filters.items():
                value = value.replace("FIRST", str(first))
                params[name] = value
                filters[name] = [int(v) if v.isdigit() else v for v in value.split(",")]
            response = client.get(URL, params)
            assert response.status_code == 200, response.content
            want = reference(
                org,
                date_from=dt.date(2026, 3, 1),
                date_to=dt.date(2026, 4, 30),
                zone_name=zone_name,
                group_by=group_by,
                filters=filters,
                now=timezone.now(),
            )
            _assert_same(response.json(), want, group_by)


def test_a_narrow_period_and_its_edges(api, org):
    build_dataset(org, seed=5, jobs=30)
    client = api("viewer")
    for date_from, date_to in (
        (dt.date(2026, 3, 29), dt.date(2026, 3, 29)),
        (dt.date(2026, 4, 1), dt.date(2026, 4, 7)),
    ):
        response = client.get(URL, {"from": date_from.isoformat(), "to": date_to.isoformat(), "group_by": "week"})
        want = reference(
            org, date_from=date_from, date_to=date_to, zone_name="Europe/Amsterdam", group_by=("week",), filters={},
            now=timezone.now(),
        )  # fmt: skip
        _assert_same(response.json(), want, ("week",))


def test_rows_have_references_and_an_empty_period_is_one_row_of_zeros(api, org):
    data = build_dataset(org, seed=3, jobs=10)
    client = api("viewer")
    body = client.get(URL, {"from": "2026-03-01", "to": "2026-04-30", "group_by": "contract"}).json()
    assert {row["contract"]["id"] for row in body} <= {c.pk for c in data.contracts}
    assert all(set(row["contract"]) == {"id", "name"} for row in body)
    empty = client.get(URL, {"from": "2020-01-01", "to": "2020-01-31"}).json()
    assert empty == [
        {
            "decided": 0, "met": 0, "breached": 0, "achieved_percent": None,
            "minutes": {"mean": None, "p50": None, "p90": None, "max": None},
            "overage_minutes": 0, "penalties": {}, "waived": 0, "open_at_end": 0,
        }
    ]  # fmt: skip


def test_csv_has_the_same_rows_with_reference_columns(api, org):
    build_dataset(org, seed=4, jobs=20)
    client = api("viewer")
    params = {"from": "2026-03-01", "to": "2026-04-30", "group_by": "contract,month"}
    rows = client.get(URL, params).json()
    response = client.get(URL, {**params, "format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(table) == len(rows)
    assert list(table[0])[:4] == ["contract_id", "contract_name", "month", "decided"]
    for line, row in zip(table, rows, strict=True):
        assert int(line["contract_id"]) == row["contract"]["id"] and line["month"] == row["month"]
        assert int(line["decided"]) == row["decided"] and line["minutes_p90"] == (
            "" if row["minutes"]["p90"] is None else str(row["minutes"]["p90"])
        )
    accepted = client.get(URL, params, HTTP_ACCEPT="text/csv")
    assert b"".join(accepted.streaming_content) == b"".join(
        client.get(URL, {**params, "format": "csv"}).streaming_content
    )


def test_the_report_is_a_few_queries_whatever_the_number_of_clocks(api, org):
    build_dataset(org, seed=6, jobs=25)
    client = api("viewer")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL, {"from": "2026-03-01", "to": "2026-04-30", "group_by": "contract,month"})
    assert response.status_code == 200
    report_queries = [q["sql"] for q in queries.captured_queries if "workorders_slaclock" in q["sql"]]
    # The decided clocks' counts, the stopped clocks' minutes (by the period of the stop), the
    # settled breaches' overage and penalties (per currency), the waivers of the period and their
    # corrections (per currency), then the clocks open at each period's end, and the cancelled ones
    # open at a period's end (by the periods of their start and cancellation: thirteenth round).
    assert len(report_queries) == 6, report_queries


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"to": "2026-01-31"}, "from"),
        ({"from": "2026-01-01"}, "to"),
        ({"from": "2026-13-01", "to": "2026-01-31"}, "from"),
        # Python reads these as dates (1 March 2026, 31 January 2026); the API takes YYYY-MM-DD only.
        ({"from": "20260301", "to": "2026-03-31"}, "from"),
        ({"from": "2026-01-01", "to": "2026-W05-6"}, "to"),
        ({"from": "2026-01-01T00:00:00+01:00", "to": "2026-01-31"}, "from"),
        ({"from": "2026-02-01", "to": "2026-01-31"}, "to"),
        ({"from": "2026-01-01", "to": "2026-01-31", "group_by": "colour"}, "group_by"),
        ({"from": "2026-01-01", "to": "2026-01-31", "group_by": "month,week"}, "group_by"),
        ({"from": "2026-01-01", "to": "2026-01-31", "group_by": "month,month"}, "group_by"),
        ({"from": "2026-01-01", "to": "2026-01-31", "contract": "1,x"}, "contract"),
        ({"from": "2026-01-01", "to": "2026-01-31", "contract_id": "1,x"}, "contract_id"),
        ({"from": "2026-01-01", "to": "2026-01-31", "counterparty_id": "0"}, "counterparty_id"),
        ({"from": "2026-01-01", "to": "2026-01-31", "contract_id": "1", "contract": "2"}, "contract"),
        ({"from": "2026-01-01", "to": "2026-01-31", "metric": "speed"}, "metric"),
        ({"from": "2026-01-01", "to": "2026-01-31", "priority": "urgent"}, "priority"),
        ({"from": "2026-01-01", "to": "2026-01-31", "time_zone": "Mars/Base"}, "time_zone"),
        ({"from": "2026-01-01", "to": "2026-01-31", "colour": "red"}, "colour"),
        ({"from": "2026-01-01", "to": "2026-01-31", "format": "xml"}, "format"),
    ],
)
def test_bad_parameters_are_400_naming_them(api, org, params, name):
    response = api("viewer").get(URL, params)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert name in response.json()["errors"]


def test_auth(anon, api, org):
    assert anon.get(URL, {"from": "2026-01-01", "to": "2026-01-31"}).status_code == 401
    assert anon.get(URL, {"from": "2026-01-01", "to": "2026-01-31", "format": "csv"}).status_code == 401


def test_a_narrow_period_is_an_index_range_on_the_decision_instant(org):
    """The period's decided clocks come from the index `clock_decided` (organization, decision
    instant), not from a pass over every clock of the organization; and the indexed expression
    picks exactly the clocks the slow reference calls decided in the period."""
    from reports.compliance import ComplianceQuery, decided_clocks

    build_dataset(org, seed=7, jobs=20)
    now = timezone.now()
    query = ComplianceQuery(dt.date(2026, 3, 9), dt.date(2026, 3, 29), "UTC")
    decided = decided_clocks(organization=org, query=query, now=now)
    expected = {
        clock.pk
        for clock in SlaClock.objects.filter(organization=org)
        if (instant := _decided(clock, now)) is not None and query.start <= instant < query.end
    }
    assert expected and set(decided.values_list("pk", flat=True)) == expected
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET enable_seqscan = off")  # a tiny table: ask whether the index applies
            plan = decided.explain()
            cursor.execute("RESET enable_seqscan")
        assert "clock_decided" in plan, plan
        assert "Index Cond" in plan and "COALESCE" in plan.upper(), plan


def test_contract_id_and_counterparty_id_as_everywhere_else(api, org):
    # Found by an outside integrator: the at-risk report and every collection take `contract_id`
    # and `counterparty_id`; this report took `contract` and `counterparty` only, and
    # `?contract_id=11` was a 400. The older names stay, as aliases (not together with the new).
    data = build_dataset(org, seed=7, jobs=30)
    client = api("viewer")
    contract = data.contracts[0]
    base = {"from": "2026-03-01", "to": "2026-04-30", "group_by": "contract,counterparty"}
    everything = client.get(URL, base).json()
    for new, old, value in (
        ("contract_id", "contract", contract.pk),
        ("counterparty_id", "counterparty", contract.counterparty_id),
    ):
        by_new = client.get(URL, {**base, new: value})
        assert by_new.status_code == 200, by_new.content
        rows = by_new.json()
        assert rows and all(row[new.removesuffix("_id")]["id"] == value for row in rows)
        assert rows == [row for row in everything if row[new.removesuffix("_id")]["id"] == value]
        assert client.get(URL, {**base, old: value}).json() == rows
    response = client.get(URL, {**base, "contract_id": contract.pk, "contract": contract.pk})
    assert response.status_code == 400
    assert response.json()["message"] == "contract is another name of contract_id: give one of them."


def test_the_schema_documents_contract_id_and_the_aliases_as_deprecated(api):
    schema = api("viewer").get("/api/v1/schema?format=json").json()
    parameters = {p["name"]: p for p in schema["paths"][URL]["get"]["parameters"]}
    assert {"contract_id", "counterparty_id", "contract", "counterparty"} <= set(parameters)
    assert not parameters["contract_id"].get("deprecated") and parameters["contract"]["deprecated"] is True
    assert parameters["counterparty"]["deprecated"] is True


def test_a_past_period_keeps_its_answer_when_a_breached_job_is_resolved_later(api, org):
    # Found by an outside test: a clock that ran past its due time in March left March's report
    # (breached, overage, penalty, open_at_end) for April's as soon as the job was resolved in
    # April. A breached clock is decided at its due time; a row counts what was known at its end.
    from breaches.services import scan_breaches
    from tests.breaches.factories import make_rule
    from tests.contracts.factories import make_contract
    from workorders.services import create_work_order, update_work_order

    contract = make_contract(org, status="active", currency="EUR", time_zone="UTC")
    make_rule(contract, metric="resolution", target_minutes=60, penalty={"fixed_amount": "100"})
    reported = dt.datetime(2026, 3, 31, 10, 0, tzinfo=dt.UTC)
    job = create_work_order(
        organization=org, actor=None, now=reported,
        data={"contract_id": contract.pk, "priority": "high", "reported_at": reported, "summary": "Late job"},
    )  # fmt: skip
    scan_breaches(now=reported + dt.timedelta(hours=2))  # the breach, recorded in March
    client = api("viewer")
    march = {"from": "2026-03-01", "to": "2026-03-31", "time_zone": "UTC"}
    both = {"from": "2026-03-01", "to": "2026-04-30", "time_zone": "UTC", "group_by": "month"}
    before = client.get(URL, march).json()
    assert before[0]["decided"] == 1 and before[0]["breached"] == 1 and before[0]["open_at_end"] == 0
    # Still running at the end of March: no time to stop, its overage and penalty not known yet.
    assert before[0]["minutes"]["mean"] is None and before[0]["overage_minutes"] == 0
    before_months = client.get(URL, both).json()

    update_work_order(
        instance=job, actor=None, now=dt.datetime(2026, 4, 2, 10, 0, tzinfo=dt.UTC),
        data={"status": "resolved", "resolved_at": dt.datetime(2026, 4, 2, 10, 0, tzinfo=dt.UTC)},
    )  # fmt: skip
    assert client.get(URL, march).json() == before
    after_months = client.get(URL, both).json()
    # March keeps its answer; the breach's final figures land in April, the month of its stop
    # (they were in no row before the tenth round). 31 March 11:00 to 2 April 10:00 is 2820 minutes.
    assert [row["month"] for row in after_months] == ["2026-03", "2026-04"]
    assert after_months[0] == before_months[0]
    assert after_months[1]["decided"] == 0 and after_months[1]["overage_minutes"] == 2820
    assert after_months[1]["penalties"] == {"EUR": "100.00"}
    # Thirteenth round: its time to stop too (31 March 10:00 to 2 April 10:00, 2880 minutes), in
    # no row before; each month's max now reaches the two months' max.
    assert after_months[1]["minutes"] == {"mean": 2880.0, "p50": 2880.0, "p90": 2880.0, "max": 2880.0}
    # The report over both months (its end after the stop) has the final figures.
    whole = client.get(URL, {"from": "2026-03-01", "to": "2026-04-30", "time_zone": "UTC"}).json()[0]
    assert whole["decided"] == 1 and whole["breached"] == 1 and whole["overage_minutes"] > 0
    assert whole["penalties"] == {"EUR": "100.00"}
    assert whole["minutes"]["max"] == max(row["minutes"]["max"] or 0 for row in after_months)


def test_every_breach_overage_and_penalty_is_in_exactly_one_month(api, org):
    # Tenth round: a breach still running at the end of the month it breached in had its overage and
    # penalty in no monthly row (not October's: it had not stopped; not November's: it was decided
    # in October), so the months' penalties summed to less than the report over both months. Now a
    # breach's figures count in the month of the stop it was settled with. Figures by hand, in
    # Europe/Amsterdam (CEST until 25 October, CET after), a 24x7 rule of 60 minutes, 50 EUR per
    # breach plus 10 EUR per started hour of overage.
    from breaches.models import Breach
    from breaches.services import scan_breaches
    from tests.breaches.factories import make_rule
    from tests.contracts.factories import make_contract
    from workorders.services import create_work_order, update_work_order

    ams = ZoneInfo("Europe/Amsterdam")
    contract = make_contract(org, status="active", currency="EUR", time_zone="Europe/Amsterdam")
    make_rule(contract, metric="resolution", priorities=["high"], target_minutes=60,
              penalty={"fixed_amount": "50", "per_unit_amount": "10", "unit_minutes": 60})  # fmt: skip

    def job(reported, summary):
        return create_work_order(
            organization=org, actor=None, now=reported,
            data={"contract_id": contract.pk, "priority": "high", "reported_at": reported, "summary": summary},
        )  # fmt: skip

    def resolve(work_order, at):
        update_work_order(instance=work_order, actor=None, now=at, data={"status": "resolved", "resolved_at": at})

    # B: 10 October 09:00-10:30 CEST, 90 minutes, 30 over: one started hour, 60.00, all in October.
    b = job(dt.datetime(2026, 10, 10, 9, 0, tzinfo=ams), "B")
    scan_breaches(now=dt.datetime(2026, 10, 10, 10, 15, tzinfo=ams))
    resolve(b, dt.datetime(2026, 10, 10, 10, 30, tzinfo=ams))
    # A: reported 31 October 22:00 CET, due 23:00 (decided in October), still running on 1 November.
    a = job(dt.datetime(2026, 10, 31, 22, 0, tzinfo=ams), "A")
    scan_breaches(now=dt.datetime(2026, 10, 31, 23, 30, tzinfo=ams))
    # C: met in November.
    c = job(dt.datetime(2026, 11, 5, 9, 0, tzinfo=ams), "C")
    resolve(c, dt.datetime(2026, 11, 5, 9, 30, tzinfo=ams))
    client = api("viewer")
    months = {"from": "2026-10-01", "to": "2026-11-30", "time_zone": "Europe/Amsterdam", "group_by": "month"}
    october = client.get(URL, months).json()[0]
    assert (october["month"], october["decided"], october["breached"], october["open_at_end"]) == ("2026-10", 2, 2, 0)
    assert october["overage_minutes"] == 30 and october["penalties"] == {"EUR": "60.00"}

    # A resolved 1 November 02:00 CET: 240 minutes, 180 over, three started hours: 80.00.
    resolve(a, dt.datetime(2026, 11, 1, 2, 0, tzinfo=ams))
    assert Breach.objects.get(work_order=a).penalty_amount == Decimal("80.00")
    rows = client.get(URL, months).json()
    assert [row["month"] for row in rows] == ["2026-10", "2026-11"]
    assert rows[0] == october  # October, closed, keeps its answer
    assert (rows[1]["decided"], rows[1]["met"], rows[1]["breached"]) == (1, 1, 0)
    assert rows[1]["overage_minutes"] == 180 and rows[1]["penalties"] == {"EUR": "80.00"}
    whole = client.get(URL, {**months, "group_by": ""}).json()[0]
    assert whole["overage_minutes"] == 30 + 180 == sum(row["overage_minutes"] for row in rows)
    assert whole["penalties"] == {"EUR": "140.00"}
    # November alone has A's figures (settled then) but not its decision (October's).
    november = client.get(URL, {"from": "2026-11-01", "to": "2026-11-30", "time_zone": "Europe/Amsterdam"}).json()[0]
    assert (november["decided"], november["overage_minutes"], november["penalties"]) == (1, 180, {"EUR": "80.00"})
    # The CSV has the same rows.
    lines = list(csv.DictReader(io.StringIO(b"".join(
        client.get(URL, {**months, "format": "csv"}).streaming_content).decode())))  # fmt: skip
    got = [(line["month"], line["penalties"]) for line in lines]
    assert got == [("2026-10", "60.00 EUR"), ("2026-11", "80.00 EUR")]

    # B waived on 20 November, after October closed: October keeps the 60.00 it knew (and no
    # waiver); November, the month of the waiver, counts it and takes B's 60.00 off (80.00 - 60.00),
    # so the months still add up to the report over both, which leaves B's penalty out (eleventh
    # round: November kept 80.00 and the months summed to 140.00 against the whole's 80.00).
    from breaches.services import waive_breach

    waive_breach(breach=Breach.objects.get(work_order=b), actor=None, reason="Goodwill",
                 now=dt.datetime(2026, 11, 20, 12, 0, tzinfo=ams))  # fmt: skip
    after = client.get(URL, months).json()
    assert after[0] == october
    assert (after[1]["penalties"], after[1]["waived"], after[1]["overage_minutes"]) == ({"EUR": "20.00"}, 1, 180)
    whole = client.get(URL, {**months, "group_by": ""}).json()[0]
    assert (whole["penalties"], whole["waived"], whole["overage_minutes"]) == ({"EUR": "80.00"}, 1, 210)
    # November alone shows the correction too; a report of December (nothing in it) shows nothing.
    november = client.get(URL, {"from": "2026-11-01", "to": "2026-11-30", "time_zone": "Europe/Amsterdam"}).json()[0]
    assert (november["penalties"], november["waived"]) == ({"EUR": "20.00"}, 1)
    december = client.get(URL, {"from": "2026-12-01", "to": "2026-12-31", "time_zone": "Europe/Amsterdam"}).json()
    assert december == [{**december[0], "penalties": {}, "waived": 0, "decided": 0}]
    # A waiver of A in November (settled then) leaves A out, no correction.
    waive_breach(breach=Breach.objects.get(work_order=a), actor=None, reason="Storm",
                 now=dt.datetime(2026, 11, 21, 12, 0, tzinfo=ams))  # fmt: skip
    after = client.get(URL, months).json()
    assert after[0] == october
    assert (after[1]["penalties"], after[1]["waived"]) == ({"EUR": "-60.00"}, 2)
    whole = client.get(URL, {**months, "group_by": ""}).json()[0]
    assert whole["penalties"] == {} and whole["waived"] == 2  # nothing owed
    assert sum(Decimal(row["penalties"]["EUR"]) for row in after) == 0


def test_a_clock_cancelled_past_its_due_time_counts_as_breached_with_its_penalty(api, org):
    """A job that leaves a rule's band after its due time gets a final breach with a penalty (posted
    in the ledger, on the statement). The report took the clock as cancelled, never decided: its
    breach, overage and penalty were in no row, so the report said 0 breached and no penalty where
    the statement and the ledger said 100.00. The breach also had no stop to settle it in a row.

    Amsterdam is UTC+2 since 29 March. Job A (high, 60-minute response target, 100.00 a breach) is
    reported 31 March 20:30Z (22:30 local), due 21:30Z (23:30, still March), and moved to low
    priority at 22:30Z (1 April 00:30 local) without a response: breached in March, 60 minutes over,
    settled in April, where the ledger dates its penalty. Job B leaves the band after 30 minutes,
    within its target: cancelled, never decided."""
    from tests.breaches.factories import active_contract, make_job, make_rule, update_job

    contract = active_contract(org, currency="EUR", time_zone="Europe/Amsterdam")
    make_rule(contract, target_minutes=60, priorities=["high"], penalty={"fixed_amount": "100"})
    late = make_job(contract, dt.datetime(2026, 3, 31, 20, 30, tzinfo=dt.UTC), priority="high")
    update_job(late, dt.datetime(2026, 3, 31, 22, 30, tzinfo=dt.UTC), priority="low")
    early = make_job(contract, dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC), priority="high")
    update_job(early, dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC), priority="low")
    client = api("viewer")
    months = client.get(URL, {"from": "2026-03-01", "to": "2026-04-30", "group_by": "month"}).json()
    assert [
        (row["month"], row["decided"], row["breached"], row["achieved_percent"], row["overage_minutes"],
         row["penalties"], row["open_at_end"])
        for row in months
    ] == [
        ("2026-03", 1, 1, 0.0, 0, {}, 0),
        ("2026-04", 0, 0, None, 60, {"EUR": "100.00"}, 0),
    ]  # fmt: skip
    whole = client.get(URL, {"from": "2026-03-01", "to": "2026-04-30"}).json()
    assert [(r["decided"], r["breached"], r["overage_minutes"], r["penalties"]) for r in whole] == [
        (1, 1, 60, {"EUR": "100.00"})
    ]
    # As the statement of April (its penalty month) and the ledger's penalty of April say.
    april = client.get(f"/api/v1/contracts/{contract.pk}/statement", {"month": "2026-04"}).json()
    assert april["totals"]["EUR"]["penalties"] == "100.00"
    csv_rows = list(
        csv.DictReader(
            io.StringIO(
                b"".join(
                    client.get(
                        URL, {"from": "2026-03-01", "to": "2026-04-30", "group_by": "month", "format": "csv"}
                    ).streaming_content
                ).decode()
            )
        )
    )
    assert [(r["month"], r["breached"], r["penalties"]) for r in csv_rows] == [
        ("2026-03", "1", ""), ("2026-04", "0", "100.00 EUR")
    ]  # fmt: skip


def test_a_clock_cancelled_after_a_period_ended_stays_open_at_that_period_s_end(api, org):
    """A clock open at the end of March and cancelled in April (within its target: never decided)
    was open at March's end. The report read a cancelled clock as never open, so March's
    `open_at_end` dropped it the moment the job was cancelled or left the rule's band in April: a
    closed period's answer moved. The clock stores no cancellation instant; its `sla_clock.stopped`
    event has it (when the report learnt it, so a closed period keeps its answer).

    UTC, a 3-day resolution target for high priority. A and B reported 30 March 10:00, C 31 March
    10:00. C is cancelled 31 March 12:00 (not open at March's end); in April, A is cancelled and B
    moved to low priority (out of the band), each on 2 April, within their targets."""
    from tests.breaches.factories import active_contract, make_job, make_rule, update_job

    contract = active_contract(org, currency="EUR", time_zone="UTC")
    make_rule(contract, metric="resolution", target_minutes=3 * 24 * 60, priorities=["high"])
    a = make_job(contract, dt.datetime(2026, 3, 30, 10, 0, tzinfo=dt.UTC))
    b = make_job(contract, dt.datetime(2026, 3, 30, 10, 0, tzinfo=dt.UTC))
    c = make_job(contract, dt.datetime(2026, 3, 31, 10, 0, tzinfo=dt.UTC))
    at = dt.datetime(2026, 3, 31, 12, 0, tzinfo=dt.UTC)
    update_job(c, at, status="cancelled", status_changed_at=at)
    client = api("viewer")
    march = {"from": "2026-03-01", "to": "2026-03-31", "time_zone": "UTC"}
    months = {"from": "2026-03-01", "to": "2026-04-30", "time_zone": "UTC", "group_by": "month"}
    before = client.get(URL, march).json()
    assert [(row["decided"], row["open_at_end"]) for row in before] == [(0, 2)]

    april = dt.datetime(2026, 4, 2, 10, 0, tzinfo=dt.UTC)
    update_job(a, april, status="cancelled", status_changed_at=april)
    update_job(b, april, priority="low")
    assert client.get(URL, march).json() == before
    # April has nothing open at its end, nor anything else: no row.
    assert [(row["month"], row["decided"], row["open_at_end"]) for row in client.get(URL, months).json()] == [
        ("2026-03", 0, 2)
    ]
    assert client.get(URL, {**march, "group_by": "contract"}).json()[0]["open_at_end"] == 2


@given(st.integers(min_value=-(10**9), max_value=10**9), st.integers(min_value=1, max_value=10**9))
def test_achieved_is_decimal_half_up_to_one_decimal(met, decided):
    # In whole numbers (the at-risk report computes it for every clock of a page): the same figure
    # as Decimal's ROUND_HALF_UP, away from zero at the half, negative values included.
    exact = (Decimal(met * 100) / Decimal(decided)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    assert achieved(met, decided) == float(exact)
    assert achieved(met, 0) is None
