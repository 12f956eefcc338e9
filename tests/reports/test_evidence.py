"""`GET /api/v1/breaches/{id}/evidence`: the derivation agrees with the stored breach.

Every breach of a random data set is recomputed here independently of `slas.clock`: the
calendar's working intervals are expanded day by day from the stored calendar (local wall time
to UTC with zoneinfo, holidays dropped), the pauses taken out by plain interval arithmetic,
the due time found by walking the intervals, the penalty priced from the clause by hand. The
pack, the stored breach and this recomputation must all agree.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import math
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from breaches.models import Breach
from events.models import Event
from tests.reports.factories import build_dataset

pytestmark = pytest.mark.django_db
UTC = dt.UTC


def url(breach) -> str:
    return f"/api/v1/breaches/{breach.pk}/evidence"


# --- an independent recomputation -----------------------------------------------------------------


def working_intervals(calendar, a: dt.datetime, b: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    if calendar is None:
        return [(a, b)]
    zone = ZoneInfo(calendar.time_zone)
    holidays = {h["date"] for h in calendar.holidays}
    out = []
    day = a.astimezone(zone).date() - dt.timedelta(days=1)
    while day <= b.astimezone(zone).date():
        if day.isoformat() not in holidays:
            for hours in calendar.hours:
                if hours["weekday"] != day.isoweekday():
                    continue
                sh, sm = map(int, hours["start"].split(":"))
                eh, em = map(int, hours["end"].split(":"))
                start = dt.datetime(day.year, day.month, day.day, sh, sm, tzinfo=zone)
                # Python adds to an aware datetime in wall-clock time: "24:00" is the next midnight.
                end = dt.datetime(day.year, day.month, day.day, tzinfo=zone) + dt.timedelta(hours=eh, minutes=em)
                lo, hi = max(start, a), min(end, b)
                if hi > lo:
                    out.append((lo.astimezone(UTC), hi.astimezone(UTC)))
        day += dt.timedelta(days=1)
    return sorted(out)


def minus(intervals, pauses):
    """Interval arithmetic: the parts of `intervals` outside every pause."""
    pieces = list(intervals)
    for p_start, p_end in pauses:
        cut = []
        for s, e in pieces:
            if p_end <= s or p_start >= e:
                cut.append((s, e))
                continue
            if s < p_start:
                cut.append((s, p_start))
            if p_end < e:
                cut.append((p_end, e))
        pieces = cut
    return pieces


def seconds_of(pieces) -> int:
    return sum(int(e.timestamp()) - int(s.timestamp()) for s, e in pieces)


def independent(breach: Breach) -> dict:
    clock_row = breach.clock
    rule, job = clock_row.rule, clock_row.work_order
    until = breach.clock_stopped_at or breach.measured_at  # the stop the breach was settled with
    pauses = []
    for hold in job.holds.all():
        # A reopened job's hold pauses every clock (docs/decisions.md), an on-hold one by the rule.
        pauses_rule = (hold.kind == "on_hold" and rule.pause_on_hold) or hold.kind == "reopened"
        if pauses_rule and hold.start < until:
            pauses.append((hold.start, min(hold.end or until, until)))
    start = clock_row.started_at
    pieces = minus(working_intervals(rule.calendar, start, until), pauses)
    business = seconds_of(pieces)
    # Due: walk the counted pieces (extended past `until` if needed) until the target is reached.
    horizon = max(until, start) + dt.timedelta(days=60)
    all_pieces = minus(working_intervals(rule.calendar, start, horizon), pauses)
    remaining, due = clock_row.target_minutes * 60, None
    for s, e in all_pieces:
        length = int(e.timestamp()) - int(s.timestamp())
        if length >= remaining:
            due = dt.datetime.fromtimestamp(int(s.timestamp()) + remaining, UTC)
            break
        remaining -= length
    actual = math.ceil(business / 60)
    overage = max(0, actual - clock_row.target_minutes)
    clause = rule.penalty or {}
    amount = Decimal(clause.get("fixed_amount") or 0)
    if clause.get("per_unit_amount"):
        amount += Decimal(clause["per_unit_amount"]) * -(-overage // int(clause["unit_minutes"]))
    amount = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if clause.get("per_breach_cap") is not None:
        amount = min(amount, Decimal(clause["per_breach_cap"]))
    if rule.monthly_penalty_cap is not None:
        priced_at = breach.measured_at
        month = list(Breach.objects.filter(sla_rule=rule, penalty_month=breach.penalty_month))
        # The order in which the month's breaches were last priced: the settled ones in the order
        # the log recorded their settlement, then the running ones in id order.
        settled = {
            e.object_id: e.id
            for e in Event.objects.filter(
                object_type="breach", type="breach.finalized", object_id__in=[b.pk for b in month]
            )
        }

        def position(b):
            return (0, settled.get(b.pk, 0), b.pk) if b.final else (1, 0, b.pk)

        others = sum(
            (
                other.penalty_amount
                for other in month
                if other.pk != breach.pk
                and position(other) < position(breach)
                and (other.state != "waived" or other.waived_at > priced_at)
            ),
            Decimal(0),
        )
        amount = min(amount, max(Decimal(0), rule.monthly_penalty_cap - others))
    return {"due_at": due, "business_seconds": business, "actual": actual, "overage": overage, "penalty": amount}


def iso(value: dt.datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- tests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [21, 22])
def test_every_breach_of_a_random_data_set_agrees_with_an_independent_recomputation(api, org, seed):
    build_dataset(org, seed=seed, jobs=45)
    client = api("viewer")
    breaches = list(
        Breach.objects.filter(organization=org).select_related("clock__rule__calendar", "clock__work_order")
    )
    assert len(breaches) > 10 and any(b.state == "waived" for b in breaches)
    for breach in breaches:
        pack = client.get(url(breach)).json()
        want = independent(breach)
        assert pack["agrees_with_stored"] == {
            "due_at": True,
            "actual_minutes": True,
            "overage_minutes": True,
            "penalty_amount": True,
        }, (breach.pk, pack["recomputed"], pack["breach"])
        assert iso(want["due_at"]) == pack["clock"]["due_at"] == iso(breach.due_at)
        assert want["business_seconds"] == pack["clock"]["business_seconds"]
        assert want["actual"] == pack["clock"]["actual_minutes"] == breach.actual_minutes
        assert want["overage"] == pack["clock"]["overage_minutes"] == breach.overage_minutes
        assert want["penalty"] == breach.penalty_amount
        assert Decimal(pack["penalty"]["after_monthly_cap"]) == breach.penalty_amount
        counted = sum(row["business_seconds"] for row in pack["clock"]["working_intervals"])
        assert counted == pack["clock"]["business_seconds"]
        body = {key: value for key, value in pack.items() if key != "sha256"}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        assert pack["sha256"] == hashlib.sha256(canonical).hexdigest()
        if breach.state == "waived":
            assert pack["penalty"]["owed"] in ("0.00", "0") and pack["penalty"]["waived"]


def test_the_pack_is_stable_and_shows_holidays_dst_and_holds(api, org):
    build_dataset(org, seed=23, jobs=45)
    client = api("viewer")
    packs = [client.get(url(b)).json() for b in Breach.objects.filter(organization=org)]
    again = [client.get(url(b)).json() for b in Breach.objects.filter(organization=org)]
    assert [p["sha256"] for p in packs] == [p["sha256"] for p in again]
    on_calendar = [p for p in packs if p["rule"]["calendar"]]
    assert on_calendar, "the data set has breaches of the office-hours rule"
    for pack in on_calendar:
        for row in pack["clock"]["working_intervals"]:
            start = dt.datetime.fromisoformat(row["start"]).astimezone(ZoneInfo("Europe/Amsterdam"))
            assert start.isoweekday() <= 5 and start.date().isoformat() not in ("2026-04-03", "2026-04-06")
    spans_dst = [p for p in on_calendar if p["clock"]["dst_changes"]]
    for pack in spans_dst:
        assert pack["clock"]["dst_changes"][0] == {
            "at": "2026-03-29T01:00:00Z",
            "offset_before": "+01:00",
            "offset_after": "+02:00",
        }


def test_html_has_an_svg_timeline_and_no_scripts(api, org):
    build_dataset(org, seed=24, jobs=20)
    breach = Breach.objects.filter(organization=org).first()
    response = api("viewer").get(url(breach), HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    pack = api("viewer").get(url(breach)).json()
    assert 'aria-label="Breach timeline"' in html and pack["sha256"] in html
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_pdf_reads_back_with_the_figures(api, org):
    build_dataset(org, seed=25, jobs=20)
    breaches = Breach.objects.filter(organization=org)
    breach = breaches.filter(state="open").first() or breaches.first()
    client = api("viewer")
    pack = client.get(url(breach)).json()
    response = client.get(url(breach), HTTP_ACCEPT="application/pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert f"Breach evidence #{breach.pk}" in text
    assert pack["sha256"][:32] in text.replace("\n", "")
    assert pack["clock"]["due_at"] in text and str(pack["clock"]["overage_minutes"]) in text
    assert pack["penalty"]["owed"] in text


def test_another_organizations_breach_is_404_and_roles(api, anon, org, other_org):
    build_dataset(other_org, seed=26, jobs=10)
    theirs = Breach.objects.filter(organization=other_org).first()
    assert api("viewer").get(url(theirs)).status_code == 404
    assert api("viewer").get("/api/v1/breaches/999999/evidence").status_code == 404
    assert anon.get(url(theirs)).status_code == 401
    response = api("viewer").get(url(theirs), HTTP_ACCEPT="application/pdf")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    mine = build_dataset(org, seed=27, jobs=10) and Breach.objects.filter(organization=org).first()
    response = api("viewer").get(url(mine) + "?colour=red")
    assert response.status_code == 400 and "colour" in response.json()["errors"]


@pytest.mark.django_db
def test_a_reopened_hold_is_shown_pausing_a_response_rule(api, org):
    """Found by an outside sweep: the pack said the reopened hold did not pause the response clock
    while its figures used it (the rule changed: it pauses every clock)."""
    from tests.breaches.factories import active_contract, make_job, make_rule, minutes, scan, update_job

    contract = active_contract(org, currency="EUR")
    make_rule(contract, metric="response", target_minutes=60)
    job = make_job(contract)
    update_job(job, minutes(30), status="resolved")
    update_job(job, minutes(600), status="open")
    scan(minutes(700))  # 30 + 100 minutes counted: 70 over
    breach = Breach.objects.get()
    pack = api("viewer").get(url(breach)).json()
    assert [(h["kind"], h["pauses_this_rule"]) for h in pack["holds"]] == [("reopened", True)]
    assert all(pack["agrees_with_stored"].values()) and breach.overage_minutes == 70


@pytest.mark.django_db
def test_the_penalty_steps_show_the_clauses_amounts_as_it_states_them(api, org):
    """Found by an outside tester: the clause's amounts were rounded to the minor unit before they
    were shown (KWD 1.235 + 6 x 0.334 = 3.239, but "Before caps 3.236"). Now they are shown as the
    clause states them, like unit prices, and the steps add up to before_caps before its rounding."""
    from tests.breaches.factories import active_contract, make_job, make_rule, minutes, update_job

    contract = active_contract(org, currency="KWD")
    clause = {"fixed_amount": "1.2345", "per_unit_amount": "0.3335", "unit_minutes": 5}
    make_rule(contract, metric="response", target_minutes=60, penalty=clause)
    job = make_job(contract)
    update_job(job, minutes(90), status="in_progress")  # 30 minutes over: 6 started units of 5
    breach = Breach.objects.get()
    client = api("viewer")
    steps = client.get(url(breach)).json()["penalty"]
    shown = {key: steps[key] for key in ("fixed_amount", "per_unit_amount", "started_units", "before_caps")}
    assert shown == {"fixed_amount": "1.2345", "per_unit_amount": "0.3335", "started_units": 6, "before_caps": "3.236"}
    total = Decimal(steps["fixed_amount"]) + Decimal(steps["per_unit_amount"]) * steps["started_units"]
    assert total.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP) == Decimal(steps["before_caps"])
    assert steps["owed"] == "3.236" and Decimal(steps["owed"]) == breach.penalty_amount
    html = client.get(url(breach), HTTP_ACCEPT="text/html").content.decode()
    assert "<td>1.2345</td>" in html and "<td>0.3335 &times; 6 unit(s)" in html
    pdf = client.get(url(breach), HTTP_ACCEPT="application/pdf").content
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "1.2345" in text and "0.3335 x 6 unit(s)" in text
    # An amount in whole minor units is written in them, as before.
    make_rule(contract, metric="resolution", target_minutes=60, penalty={"fixed_amount": "3"})
    job = make_job(contract)
    update_job(job, minutes(90), status="resolved")
    steps = client.get(url(Breach.objects.get(sla_rule__metric="resolution"))).json()["penalty"]
    assert (steps["fixed_amount"], steps["per_unit_amount"]) == ("3.000", "0.000")


@pytest.mark.django_db
def test_the_rules_monthly_cap_reads_as_the_rule_does(api, org):
    """Found by an outside integrator: the pack's `rule.monthly_penalty_cap` read "5000.0000" (as
    stored) while `/sla_rules/{id}`, GraphQL and the pack's own `penalty.monthly_cap` read
    "5000.00". It is the rule's text now, in the minor unit as enforced (rounded down), and in the
    digest as such."""
    from tests.breaches.factories import active_contract, make_job, make_rule, minutes, update_job

    contract = active_contract(org, currency="JPY")
    rule = make_rule(contract, penalty={"fixed_amount": "100"}, monthly_penalty_cap="2500.9")
    update_job(make_job(contract), minutes(90), status="in_progress")
    client = api("viewer")
    pack = client.get(url(Breach.objects.get())).json()
    cap = client.get(f"/api/v1/sla_rules/{rule.pk}").json()["monthly_penalty_cap"]
    assert pack["rule"]["monthly_penalty_cap"] == cap == pack["penalty"]["monthly_cap"] == "2500"
    body = {key: value for key, value in pack.items() if key != "sha256"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert pack["sha256"] == hashlib.sha256(canonical).hexdigest()


@pytest.mark.django_db
def test_a_settled_breach_keeps_the_version_it_was_priced_under_after_a_back_dated_one(api, org):
    """Found by an outside tester: a back-dated amendment of the target moved the job's clock to the
    new version, and the pack of the settled breach was recomputed under it (due 08:00, overage 240)
    while the breach and the statement kept the old one (due 07:00, overage 300): the pack said it
    disagreed with what it documents. An open breach still follows its clock."""
    from slas.services import amend_rule
    from tests.breaches.factories import T0, active_contract, make_job, make_rule, minutes, scan, update_job

    contract = active_contract(org, currency="EUR")
    rule = make_rule(
        contract, metric="resolution", target_minutes=60, pause_on_hold=True, penalty={"fixed_amount": "10"}
    )
    settled = make_job(contract, T0)
    update_job(settled, minutes(360), status="resolved")  # 300 minutes over, final
    running = make_job(contract, minutes(10), now=minutes(10))
    scan(minutes(100))  # 30 minutes over the old target, still open
    successor = amend_rule(
        rule=rule,
        actor=None,
        data={"target_minutes": 120, "pause_on_hold": False, "penalty": {"fixed_amount": "40"}},
        effective_from=T0 - dt.timedelta(days=1),
    )
    scan(minutes(200))  # the open breach follows its clock: 190 minutes, 70 over the new target
    client = api("viewer")
    breach = Breach.objects.get(work_order=settled)
    assert (breach.final, breach.sla_rule_id, breach.target_minutes, breach.overage_minutes) == (True, rule.pk, 60, 300)
    pack = client.get(url(breach)).json()
    assert all(pack["agrees_with_stored"].values()), pack["agrees_with_stored"]
    assert (pack["rule"]["id"], pack["rule"]["target_minutes"], pack["rule"]["pause_on_hold"]) == (rule.pk, 60, True)
    assert pack["rule"]["penalty"] == {"fixed_amount": "10"} and pack["penalty"]["owed"] == "10.00"
    assert pack["recomputed"]["due_at"] == iso(minutes(60)) and pack["recomputed"]["overage_minutes"] == 300
    assert pack["clock"]["rule_now"] == successor.pk  # and it says which version the clock follows now
    statement = client.get(f"/api/v1/contracts/{contract.pk}/statement?month=2026-03").json()
    [line] = [row for row in statement["breaches"] if row["id"] == breach.pk]
    assert (line["sla_rule"]["id"], line["target_minutes"]) == (rule.pk, pack["rule"]["target_minutes"])
    html = client.get(url(breach), HTTP_ACCEPT="text/html").content.decode()
    assert "DIFFERS" not in html
    open_breach = Breach.objects.get(work_order=running)
    assert (open_breach.final, open_breach.sla_rule_id) == (False, successor.pk)
    pack = client.get(url(open_breach)).json()
    assert (pack["rule"]["id"], pack["rule"]["target_minutes"], pack["clock"]["rule_now"]) == (
        successor.pk,
        120,
        successor.pk,
    )
    assert all(pack["agrees_with_stored"].values()) and pack["recomputed"]["overage_minutes"] == 70


def _a_and_settled_b(org):
    """A 100.00-per-breach rule capped at 150.00 a month; A reported on 5 October, not scanned yet;
    B reported on 20 October and settled at once by its late response (100.00)."""
    from tests.breaches.factories import make_job, make_rule, update_job
    from tests.contracts.factories import make_contract

    contract = make_contract(org, status="active", currency="EUR", time_zone="Europe/Amsterdam")
    make_rule(
        contract, metric="response", target_minutes=60, penalty={"fixed_amount": "100"}, monthly_penalty_cap="150"
    )
    a = make_job(contract, dt.datetime(2026, 10, 5, 9, 0, tzinfo=UTC), summary="A")
    b = make_job(contract, dt.datetime(2026, 10, 20, 9, 0, tzinfo=UTC), summary="B")
    late = dt.datetime(2026, 10, 20, 10, 30, tzinfo=UTC)
    update_job(b, late, responded_at=late)  # B: settled at once, 100.00
    return contract, a, b


def test_the_monthly_cap_after_a_replayed_scan_follows_the_order_breaches_were_priced(api, org):
    """Ninth round's known defect, tenth round's fix. B breached on 20 October and was settled at
    once (its job responded late) with the full 100.00 of a 150.00 monthly cap; A had breached on
    5 October, but no scan ran until cron caught up with `scan_breaches --now 2026-10-06` and then
    `--now 2026-10-07`: A got the 50.00 left. The pack counted the others *measured* before A (the
    replay's past instants: none) and showed A 100.00 (disagreeing with the stored 50.00), and B's
    pack counted A, which did not exist when B was settled."""
    from tests.breaches.factories import scan, update_job

    contract, a, b = _a_and_settled_b(org)
    scan("2026-10-06T00:00:00Z")  # cron catching up: A recorded now, priced against B
    scan("2026-10-07T00:00:00Z")  # and refreshed
    breach_a, breach_b = Breach.objects.get(work_order=a), Breach.objects.get(work_order=b)
    assert (breach_a.penalty_amount, breach_b.penalty_amount) == (Decimal("50.00"), Decimal("100.00"))
    assert breach_a.measured_at < breach_b.measured_at  # the replay's instants
    client = api("viewer")
    pack_a, pack_b = client.get(url(breach_a)).json(), client.get(url(breach_b)).json()
    assert pack_a["agrees_with_stored"]["penalty_amount"] and pack_b["agrees_with_stored"]["penalty_amount"]
    assert [o["id"] for o in pack_a["penalty"]["month_other_breaches"]] == [breach_b.pk]
    assert (pack_a["penalty"]["month_others_total"], pack_a["penalty"]["after_monthly_cap"]) == ("100.00", "50.00")
    assert pack_b["penalty"]["month_other_breaches"] == []
    assert pack_b["penalty"]["after_monthly_cap"] == "100.00"
    # A settles later: it keeps its 50.00 and still comes after B.
    update_job(a, dt.datetime(2026, 10, 8, 9, 0, tzinfo=UTC), responded_at=dt.datetime(2026, 10, 8, 9, 0, tzinfo=UTC))
    breach_a.refresh_from_db()
    pack_a = client.get(url(breach_a)).json()
    assert breach_a.final and breach_a.penalty_amount == Decimal("50.00")
    assert pack_a["agrees_with_stored"]["penalty_amount"] and pack_a["penalty"]["after_monthly_cap"] == "50.00"
    assert client.get(url(breach_b)).json()["penalty"]["month_other_breaches"] == []


def test_a_waiver_before_a_replayed_scan_freed_the_cap_in_the_pack_too(api, org):
    """Eleventh round: the pack compared another breach's waiver with this breach's `measured_at`.
    B (20 October, 100.00 of a 150.00 cap) was settled at once and waived on 21 October; then cron
    caught up with `scan_breaches --now 2026-10-06`: A was recorded with B already waived, so the
    whole cap was free and the scan stored 100.00. The pack counted B (waived on the 21st, "after"
    A's measurement on the 6th) and showed A at 50.00, disagreeing with the stored 100.00. Same for
    C, settled by a job update entered with a past instant after the waiver."""
    from breaches.services import waive_breach
    from tests.breaches.factories import make_job, scan, update_job

    contract, a, b = _a_and_settled_b(org)
    breach_b = Breach.objects.get(work_order=b)
    waive_breach(breach=breach_b, actor=None, reason="Goodwill", now=dt.datetime(2026, 10, 21, 9, 0, tzinfo=UTC))
    scan("2026-10-06T00:00:00Z")  # cron catching up: A recorded now, B already waived
    breach_a = Breach.objects.get(work_order=a)
    assert breach_a.penalty_amount == Decimal("100.00") and not breach_a.final
    client = api("viewer")
    pack_a = client.get(url(breach_a)).json()
    assert pack_a["penalty"]["month_other_breaches"] == []
    assert (pack_a["penalty"]["after_monthly_cap"], pack_a["recomputed"]["penalty_amount"]) == ("100.00", "100.00")
    assert pack_a["agrees_with_stored"]["penalty_amount"]
    # C: a job of 4 October whose late response is entered with a past instant: settled at once, with
    # A's 100.00 counted (B's waived): 50.00.
    c = make_job(contract, dt.datetime(2026, 10, 4, 9, 0, tzinfo=UTC), now=dt.datetime(2026, 10, 4, 9, 0, tzinfo=UTC))
    entered = dt.datetime(2026, 10, 4, 12, 0, tzinfo=UTC)
    update_job(c, entered, responded_at=entered)
    breach_c = Breach.objects.get(work_order=c)
    assert breach_c.final and breach_c.penalty_amount == Decimal("50.00")
    pack_c = client.get(url(breach_c)).json()
    assert [o["id"] for o in pack_c["penalty"]["month_other_breaches"]] == [breach_a.pk]
    assert pack_c["penalty"]["after_monthly_cap"] == "50.00" and pack_c["agrees_with_stored"]["penalty_amount"]
    # A settles: priced again with C counted (50.00 left), still without B.
    update_job(a, dt.datetime(2026, 10, 7, 9, 0, tzinfo=UTC), responded_at=dt.datetime(2026, 10, 7, 9, 0, tzinfo=UTC))
    breach_a.refresh_from_db()
    pack_a = client.get(url(breach_a)).json()
    assert pack_a["agrees_with_stored"]["penalty_amount"], pack_a["penalty"]
