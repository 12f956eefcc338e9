"""`GET /api/v1/contracts/{id}/statement?month=YYYY-MM`: JSON, CSV and PDF.

The statement is compared with a reference summed here in Python from the stored breaches
and ledger entries of the month (in the contract's time zone).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pypdf import PdfReader

from breaches.models import Breach
from ledger.models import LedgerEntry
from ledger.services import expire_lots
from tests.billing.helpers import d, local, office_calendar, plan_contract, work_at
from tests.ledger.helpers import credit, post, work
from tests.reports.factories import build_dataset

pytestmark = pytest.mark.django_db
UTC = dt.UTC


def url(contract, month="2026-03") -> str:
    return f"/api/v1/contracts/{contract.pk}/statement?month={month}"


def _ledger(contract, jobs):
    """Hours around and inside March 2026 (Amsterdam): a lot that expires in March, work, an adjustment."""
    credit(contract, 40, at=dt.datetime(2026, 2, 10, 9, tzinfo=UTC), expires_at=dt.datetime(2026, 3, 20, tzinfo=UTC))
    credit(contract, 100, at=dt.datetime(2026, 2, 28, 23, 30, tzinfo=UTC))  # 1 March 00:30 in Amsterdam
    mine = [job for job in jobs if job.contract_id == contract.pk]
    work(contract, "3.5", at=dt.datetime(2026, 3, 3, 10, tzinfo=UTC), work_order=mine[0])
    work(contract, "2.25", at=dt.datetime(2026, 3, 12, 10, tzinfo=UTC), work_order=mine[1])
    work(contract, 1, at=dt.datetime(2026, 3, 14, 10, tzinfo=UTC), work_order=mine[0])
    work(contract, 4, at=dt.datetime(2026, 3, 31, 22, 30, tzinfo=UTC), work_order=mine[1])  # 1 April locally
    post(contract, LedgerEntry.Type.ADJUSTMENT, -2, at=dt.datetime(2026, 3, 15, 9, tzinfo=UTC))
    expire_lots(now=dt.datetime(2026, 3, 21, tzinfo=UTC))


def _reference_hours(contract, month: str) -> dict:
    zone = ZoneInfo(contract.time_zone)
    first = dt.date.fromisoformat(f"{month}-01")
    start = dt.datetime(first.year, first.month, 1, tzinfo=zone)
    end = dt.datetime(first.year + (first.month == 12), first.month % 12 + 1, 1, tzinfo=zone)
    sums = defaultdict(Decimal)
    jobs = defaultdict(Decimal)
    for entry in LedgerEntry.objects.filter(contract=contract):
        hours = entry.charged_hours  # what the balance moves by
        effect = -hours if entry.entry_type == "work" else hours
        if entry.occurred_at < start:
            sums["opening"] += effect
        elif entry.occurred_at < end:
            if entry.entry_type in ("initial_allocation", "renewal", "credit"):
                sums["allocations"] += hours
            elif entry.entry_type == "work":
                sums["work"] += hours
                jobs[entry.work_order_id] += hours
            elif entry.reason_code == "lot_expired":
                sums["expiries"] += hours
            elif entry.entry_type == "adjustment":
                sums["adjustments"] += hours
    closing = sums["opening"] + sums["allocations"] - sums["work"] + sums["adjustments"] + sums["expiries"]
    return {
        "opening_balance": f"{sums['opening']:.2f}",
        "allocations": f"{sums['allocations']:.2f}",
        "work": f"{sums['work']:.2f}",
        "adjustments": f"{sums['adjustments']:.2f}",
        "expiries": f"{sums['expiries']:.2f}",
        "closing_balance": f"{closing:.2f}",
        "jobs": {pk: f"{hours:.2f}" for pk, hours in jobs.items()},
    }


def test_the_statement_lists_the_months_breaches_and_hours(api, org):
    data = build_dataset(org, seed=31, jobs=45)
    contract = data.contracts[0]
    _ledger(contract, data.jobs)
    body = api("viewer").get(url(contract)).json()
    assert body["month"] == "2026-03" and body["time_zone"] == "Europe/Amsterdam"
    assert body["period"] == {"from": "2026-02-28T23:00:00Z", "to": "2026-03-31T22:00:00Z"}
    expected = Breach.objects.filter(contract=contract, penalty_month="2026-03").order_by("detected_at", "id")
    assert [line["id"] for line in body["breaches"]] == [b.pk for b in expected]
    assert expected.exists() and expected.filter(state="waived").exists()
    owed, waived = Decimal(0), Decimal(0)
    for line, breach in zip(body["breaches"], expected, strict=True):
        assert line["work_order"]["id"] == breach.work_order_id and line["sla_rule"]["id"] == breach.sla_rule_id
        assert (line["target_minutes"], line["actual_minutes"], line["overage_minutes"]) == (
            breach.target_minutes,
            breach.actual_minutes,
            breach.overage_minutes,
        )
        before, after_cap, after_month = (
            Decimal(line["penalty_before_caps"]),
            Decimal(line["penalty_after_breach_cap"]),
            Decimal(line["penalty_after_monthly_cap"]),
        )
        assert before >= after_cap >= after_month == breach.penalty_amount
        if breach.state == "waived" and breach.waived_at < dt.datetime(2026, 3, 31, 22, tzinfo=UTC):
            assert line["penalty"] == "0.00" and line["waiver_reason"] and line["waived_by"]["name"]
            waived += breach.penalty_amount
        else:
            assert Decimal(line["penalty"]) == breach.penalty_amount
            owed += breach.penalty_amount
    assert body["totals"] == {
        "EUR": {"penalties": f"{owed:.2f}", "posted": "0.00", "waived": f"{waived:.2f}", "corrections": "0.00"}
    }
    assert body["posted_penalties"] == []
    want = _reference_hours(contract, "2026-03")
    hours = body["hours"]
    for name in ("opening_balance", "allocations", "work", "adjustments", "expiries", "closing_balance"):
        assert hours[name] == want[name], name
    assert {row["work_order"]["id"]: row["hours"] for row in hours["work_by_job"]} == want["jobs"]
    assert (hours["allocations"], hours["work"], hours["adjustments"]) == ("100.00", "6.75", "-2.00")
    assert hours["opening_balance"] == "40.00" and Decimal(hours["expiries"]) < 0


def test_csv_and_pdf(api, org):
    data = build_dataset(org, seed=32, jobs=45)
    contract = data.contracts[0]
    _ledger(contract, data.jobs)
    client = api("viewer")
    body = client.get(url(contract)).json()
    response = client.get(url(contract) + "&format=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [int(row["id"]) for row in rows] == [line["id"] for line in body["breaches"]]
    assert {"work_order_id", "work_order_name", "sla_rule_id", "penalty_after_monthly_cap", "waived_by_name"} <= set(
        rows[0]
    )
    pdf = client.get(url(contract), HTTP_ACCEPT="application/pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Service-credit statement 2026-03" in text and contract.reference in text
    assert body["totals"]["EUR"]["penalties"] in text and body["hours"]["closing_balance"] in text
    for line in body["breaches"]:
        assert line["work_order"]["name"] in text
    assert "Goodwill: access road closed" in text


@pytest.mark.parametrize(
    ("reference", "disposition"),
    [
        ("LINE\nBREAK", 'filename="statement-LINE_BREAK-2026-03.{}"'),
        ('R\u00c9F/\u00fc"1;x', "filename*=utf-8''statement-R%C3%89F_%C3%BC%221%3Bx-2026-03.{}"),
        ("\u0416\u0401-\u20ac-1", "filename*=utf-8''statement-%D0%96%D0%81-%E2%82%AC-1-2026-03.{}"),
    ],
)
def test_a_download_is_named_safely_after_any_reference(api, org, reference, disposition):
    # Found by an outside sweep: a line break in the reference made both downloads a 500; a quote,
    # a slash or a letter outside Latin-1 made a header clients misread.
    contract = build_dataset(org, seed=35, jobs=3).contracts[0]
    contract.reference = reference
    contract.save(update_fields=["reference"])
    client = api("viewer")
    response = client.get(url(contract) + "&format=csv")
    assert response.status_code == 200
    assert response["Content-Disposition"] == "attachment; " + disposition.format("csv")
    pdf = client.get(url(contract), HTTP_ACCEPT="application/pdf")
    assert pdf.status_code == 200
    assert pdf["Content-Disposition"] == "inline; " + disposition.format("pdf")


def test_an_empty_month_and_bad_input(api, org, other_org):
    data = build_dataset(org, seed=33, jobs=5)
    contract = data.contracts[0]
    client = api("viewer")
    body = client.get(url(contract, "2025-01")).json()
    assert body["breaches"] == [] and body["totals"] == {} and body["hours"]["closing_balance"] == "0.00"
    empty_csv = client.get(url(contract, "2025-01") + "&format=csv")
    assert b"".join(empty_csv.streaming_content).decode().startswith("id,work_order_id,work_order_name")
    assert client.get(url(contract, "2025-01"), HTTP_ACCEPT="application/pdf").status_code == 200
    for month in ("2026-13", "2026-3", "", "march"):
        response = client.get(f"/api/v1/contracts/{contract.pk}/statement?month={month}")
        assert response.status_code == 400 and "month" in response.json()["errors"]
    assert client.get(f"/api/v1/contracts/{contract.pk}/statement").status_code == 400
    theirs = build_dataset(other_org, seed=34, jobs=2).contracts[0]
    assert client.get(url(theirs)).status_code == 404
    assert client.get(url(theirs), HTTP_ACCEPT="application/pdf").status_code == 404


def test_the_pdf_prints_any_script_and_a_long_reason_in_full(api, org):
    """Found by an outside sweep: with Helvetica (Latin-1) a Cyrillic name printed as "??????",
    and a long waiver reason was cut at its table cell."""
    data = build_dataset(org, seed=32, jobs=45)
    contract = data.contracts[0]
    _ledger(contract, data.jobs)
    contract.counterparty.name = "Сервис Москва Ελλάδα"
    contract.counterparty.save(update_fields=["name"])
    waived = Breach.objects.filter(contract=contract, state="waived").first()
    reason = "Дорога закрыта 🚧 " + " ".join(f"word{n}" for n in range(300)) + " THE END"
    Breach.objects.filter(pk=waived.pk).update(waiver_reason=reason)
    pdf = api("viewer").get(url(contract), HTTP_ACCEPT="application/pdf")
    assert pdf.status_code == 200
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages).split())
    assert "Сервис Москва Ελλάδα" in text and "Дорога закрыта" in text
    assert "word299 THE END" in text


def test_work_counts_as_charged_so_a_months_closing_is_the_next_ones_opening(api, org):
    """With a minimum charge and an out-of-hours multiplier the balance moves by the charged
    hours; the statement counts those, with the hours worked beside them."""
    calendar = office_calendar(org)
    contract = plan_contract(
        org, minimum_charge_minutes=60, out_of_hours_multiplier=d("1.5"), billing_calendar=calendar, allow_overrun=True
    )
    credit(contract, 10, at=local(2026, 3, 1, 9))
    minimum = work_at(contract, "0.25", local(2026, 3, 3, 15))  # the minimum hour: 1.00 charged
    saturday = work_at(contract, 2, local(2026, 3, 7, 12))  # all out of hours: 3.00 charged
    work_at(contract, 1, local(2026, 4, 2, 10))
    viewer = api("viewer")
    march = viewer.get(url(contract, "2026-03")).json()["hours"]
    april = viewer.get(url(contract, "2026-04")).json()["hours"]
    assert (march["work"], march["worked"]) == ("4.00", "2.25")
    assert march["closing_balance"] == april["opening_balance"] == "6.00"
    balance = viewer.get(f"/api/v1/contracts/{contract.pk}/balance?as_of=2026-03-31T22:00:00Z").json()
    assert balance["remaining_hours"] == "6.00"
    jobs = {row["work_order"]["id"]: (row["hours"], row["worked"]) for row in march["work_by_job"]}
    assert jobs == {minimum.work_order_id: ("1.00", "0.25"), saturday.work_order_id: ("3.00", "2.00")}


def test_penalties_posted_by_hand_are_listed_and_counted(api, org):
    """Found by an outside tester: a penalty posted by hand (no breach) is in the period's service
    credit, but the statement listed breaches only and its totals left it out. It lists the month's
    posted penalties (who posted them, when, why) and counts them in the totals, in JSON, CSV and PDF."""
    data = build_dataset(org, seed=31, jobs=45)
    contract = data.contracts[0]
    manager, viewer = api("manager"), api("viewer")
    before = viewer.get(url(contract)).json()
    owed = Decimal(before["totals"]["EUR"]["penalties"])

    def penalty(amount: str, at: str, description: str) -> dict:
        body = {"contract_id": contract.pk, "entry_type": "penalty", "hours": "0", "amount": amount,
                "currency": "EUR", "occurred_at": at, "description": description}  # fmt: skip
        response = manager.post("/api/v1/ledger_entries", body, format="json")
        assert response.status_code == 201, response.content
        return response.json()

    penalty("40.00", "2026-02-28T22:30:00Z", "February, locally")  # 23:30 in Amsterdam
    first = penalty("250.00", "2026-03-10T09:00:00Z", "Goodwill: access road closed")
    penalty("9.00", "2026-03-31T22:30:00Z", "April, locally")
    queries = []
    for extra in range(2):  # the query count does not grow with the posted penalties
        with CaptureQueriesContext(connection) as captured:
            body = viewer.get(url(contract)).json()
        queries.append(len(captured.captured_queries))
        if extra == 0:
            second = penalty("12.50", "2026-03-20T09:00:00Z", "Late report")
    assert queries[0] == queries[1], queries
    [posted_first, posted_second] = body["posted_penalties"]
    assert (posted_first["id"], posted_first["description"], posted_first["amount"], posted_first["currency"]) == (
        first["id"], "Goodwill: access road closed", "250.00", "EUR",
    )  # fmt: skip
    assert posted_first["occurred_at"] == "2026-03-10T09:00:00Z" and posted_first["posted_by"]["name"]
    assert posted_first["posted_at"] and posted_second["id"] == second["id"]
    assert body["breaches"] == before["breaches"]
    assert body["totals"]["EUR"] == {
        "penalties": f"{owed + Decimal('262.50'):.2f}",
        "posted": "262.50",
        "waived": before["totals"]["EUR"]["waived"],
        "corrections": "0.00",
    }
    response = viewer.get(url(contract) + "&format=csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["kind"] for row in rows] == ["breach"] * len(body["breaches"]) + ["posted_penalty"] * 2
    assert [(row["id"], row["penalty"], row["description"], row["posted_by_name"]) for row in rows[-2:]] == [
        (str(first["id"]), "250.00", "Goodwill: access road closed", posted_first["posted_by"]["name"]),
        (str(second["id"]), "12.50", "Late report", posted_first["posted_by"]["name"]),
    ]
    pdf = viewer.get(url(contract), HTTP_ACCEPT="application/pdf")
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages).split())
    assert "Penalties posted by hand" in text and "Goodwill: access road closed" in text and "250.00 EUR" in text
    assert body["totals"]["EUR"]["penalties"] in text and "262.50" in text
    # A month with only a posted penalty has totals for its currency.
    only = viewer.get(url(contract, "2026-02")).json()
    assert [p["amount"] for p in only["posted_penalties"]] == ["40.00"] and only["breaches"] == []
    assert only["totals"] == {"EUR": {"penalties": "40.00", "posted": "40.00", "waived": "0.00", "corrections": "0.00"}}


def test_a_waiver_after_the_month_leaves_the_month_and_corrects_the_month_it_was_made_in(api, org):
    """Eleventh round: a breach waived after its month was over turned that month's statement to
    zero (its total fell, its waived rose), so October's statement no longer said what October's
    did when it was sent, and no month showed the correction. Hand figures in KWD (3 minor digits),
    Europe/Amsterdam (CET from 25 October: October ends at 2026-10-31T23:00Z): 12.345 KWD per
    breach."""
    from breaches.services import waive_breach
    from tests.breaches.factories import make_job, make_rule, update_job
    from tests.contracts.factories import make_contract

    contract = make_contract(org, status="active", currency="KWD", time_zone="Europe/Amsterdam")
    make_rule(contract, metric="response", target_minutes=60, penalty={"fixed_amount": "12.345"})

    def breach(reported: dt.datetime, responded: dt.datetime) -> Breach:
        job = make_job(contract, reported)
        update_job(job, responded, responded_at=responded)  # late: recorded and settled at once
        return Breach.objects.get(work_order=job)

    # B: 31 October 23:30 local (22:30Z), October's. W: 10 October, waived in October.
    late = breach(dt.datetime(2026, 10, 31, 21, 0, tzinfo=UTC), dt.datetime(2026, 10, 31, 22, 30, tzinfo=UTC))
    early = breach(dt.datetime(2026, 10, 10, 9, 0, tzinfo=UTC), dt.datetime(2026, 10, 10, 11, 0, tzinfo=UTC))
    assert (late.penalty_month, late.penalty_amount) == ("2026-10", Decimal("12.345"))
    waive_breach(breach=early, actor=None, reason="Road closed", now=dt.datetime(2026, 10, 20, 9, 0, tzinfo=UTC))
    client = api("viewer")
    october = client.get(url(contract, "2026-10")).json()
    assert october["totals"] == {
        "KWD": {"penalties": "12.345", "posted": "0.000", "waived": "12.345", "corrections": "0.000"}
    }
    # B waived at 1 November 00:30 local (31 October 23:30Z): after October's end.
    waive_breach(breach=late, actor=None, reason="Storm", now=dt.datetime(2026, 10, 31, 23, 30, tzinfo=UTC))
    # A month once over does not change its money: B's line keeps its penalty (and tells of the waiver).
    after = client.get(url(contract, "2026-10")).json()
    assert after["totals"] == october["totals"]
    assert [line["penalty"] for line in after["breaches"]] == [line["penalty"] for line in october["breaches"]]
    [line_b] = [line for line in after["breaches"] if line["id"] == late.pk]
    assert (line_b["state"], line_b["waived_at"]) == ("waived", "2026-10-31T23:30:00Z")
    november = client.get(url(contract, "2026-11")).json()
    assert november["breaches"] == []
    [correction] = november["waiver_corrections"]
    assert (correction["id"], correction["month"], correction["amount"], correction["currency"]) == (
        late.pk, "2026-10", "-12.345", "KWD",
    )  # fmt: skip
    assert correction["waived_at"] == "2026-10-31T23:30:00Z" and correction["waiver_reason"] == "Storm"
    assert november["totals"] == {
        "KWD": {"penalties": "-12.345", "posted": "0.000", "waived": "12.345", "corrections": "-12.345"}
    }
    assert line_b["penalty"] == "12.345"
    [line_w] = [line for line in after["breaches"] if line["id"] == early.pk]
    assert (line_w["penalty"], line_w["penalty_after_monthly_cap"]) == ("0.000", "12.345")  # waived in October
    # The months add up to the ledger's penalties dated in them (the posting, then its reversal).
    for month, body in (("2026-10", october), ("2026-11", november)):
        start, end = (dt.datetime.fromisoformat(body["period"][k].replace("Z", "+00:00")) for k in ("from", "to"))
        entries = LedgerEntry.objects.filter(contract=contract, entry_type="penalty", occurred_at__gte=start,
                                             occurred_at__lt=end)  # fmt: skip
        assert sum((e.amount for e in entries), Decimal(0)) == Decimal(body["totals"]["KWD"]["penalties"]), month
    # CSV and PDF say the same.
    rows = list(csv.DictReader(io.StringIO(b"".join(client.get(url(contract, "2026-11") + "&format=csv")
                                                     .streaming_content).decode())))  # fmt: skip
    assert [(row["kind"], row["id"], row["breach_id"], row["penalty"], row["waiver_reason"]) for row in rows] == [
        ("waiver_correction", str(late.pk), str(late.pk), "-12.345", "Storm")
    ]
    pdf = client.get(url(contract, "2026-11"), HTTP_ACCEPT="application/pdf")
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages).split())
    assert "earlier months' penalties" in text and "-12.345 KWD" in text and "Storm" in text


def test_a_penalty_posted_by_hand_for_a_breach_is_on_the_statement_as_in_the_service_credit(api, org):
    """A manager may post a penalty by hand with a `breach_id` (an extra amount agreed for that
    breach). The ledger owes it on top of the breach's own penalty: the balance's accrued penalties
    and March's service-credit line say 150.00 + 75.00 = 225.00. The statement listed only penalties
    without a breach, so March's totals said 150.00 and the line was nowhere on it (and the billing
    line called it a breach's penalty, "for SLA breaches" alone)."""
    from billing.models import BillingLine
    from tests.billing.helpers import lifecycle
    from tests.ledger.helpers import T0, final_breach, penalty_rule

    contract = plan_contract(org, period_charge=d(300))
    penalty_rule(contract)  # 150.00 a breach
    lifecycle(local(2026, 3, 1, 1))
    breach = final_breach(contract, reported_at=T0)  # 2 March
    manager = api("manager")
    body = {"contract_id": contract.pk, "entry_type": "penalty", "hours": "0", "amount": "75.00", "currency": "EUR",
            "breach_id": breach.pk, "occurred_at": "2026-03-12T09:00:00Z",
            "description": "Agreed extra: site shut"}  # fmt: skip
    response = manager.post("/api/v1/ledger_entries", body, format="json")
    assert response.status_code == 201, response.content
    extra = response.json()
    viewer = api("viewer")
    statement = viewer.get(url(contract)).json()
    assert [line["penalty"] for line in statement["breaches"]] == ["150.00"]
    [posted] = statement["posted_penalties"]
    assert (posted["id"], posted["amount"], posted["breach"]["id"]) == (extra["id"], "75.00", breach.pk)
    assert statement["totals"] == {
        "EUR": {"penalties": "225.00", "posted": "75.00", "waived": "0.00", "corrections": "0.00"}
    }
    rows = list(
        csv.DictReader(io.StringIO(b"".join(viewer.get(url(contract) + "&format=csv").streaming_content).decode()))
    )
    assert [(row["kind"], row["penalty"]) for row in rows] == [("breach", "150.00"), ("posted_penalty", "75.00")]
    # Each row names its breach in one column, the hand penalty's too (its `id` is the entry's): the
    # CSV left it out, where the JSON and the PDF name the breach.
    assert [(row["id"], row["breach_id"]) for row in rows] == [(str(breach.pk), str(breach.pk)),
                                                               (str(extra["id"]), str(breach.pk))]  # fmt: skip
    pdf = viewer.get(url(contract), HTTP_ACCEPT="application/pdf")
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages).split())
    assert "Agreed extra: site shut" in text and "225.00" in text
    # The ledger and the bill say the same.
    balance = viewer.get(f"/api/v1/contracts/{contract.pk}/balance?as_of=2026-03-31T12:00:00Z").json()
    assert balance["penalties"] == {"EUR": {"accrued": "225.00", "waived": "0.00"}}
    lifecycle(local(2026, 4, 1, 1))
    line = BillingLine.objects.get(contract=contract, kind="service_credit")
    assert line.amount == d("-225.0000")
    assert line.description.endswith("for SLA breaches and penalties posted by hand in period 3")


def test_a_breach_no_longer_past_due_shows_no_penalty_at_any_step(api, org):
    """A scan records a running breach; the dispatch system then corrects the job's response to
    before the due time: the breach is final with no penalty (its clock is met). The statement still
    derived 100.00 before caps and 100.00 after the per-breach cap, then 0.00 after the monthly cap
    (500.00, nothing else that month): as if the cap had taken it. The evidence pack says 0.00 at
    every step (`past_due` false). A stop after the due time in closed hours adds no business minute
    (overage 0) but is late: it keeps its fixed penalty at every step."""
    from breaches.models import Breach
    from tests.breaches.factories import active_contract, make_job, make_rule, scan, update_job

    contract = active_contract(org, currency="EUR", time_zone="Europe/Amsterdam")
    clause = {"fixed_amount": "100"}
    make_rule(
        contract, name="Anytime", target_minutes=60, priorities=["high"], penalty=clause, monthly_penalty_cap="500"
    )
    make_rule(contract, name="Office", target_minutes=60, priorities=["critical"], penalty=clause,
              calendar=office_calendar(org))  # fmt: skip
    corrected = make_job(contract, dt.datetime(2026, 3, 10, 9, 0, tzinfo=UTC), priority="high")
    scan(dt.datetime(2026, 3, 10, 10, 30, tzinfo=UTC))  # 30 minutes past due: a running breach
    update_job(
        corrected,
        dt.datetime(2026, 3, 10, 10, 40, tzinfo=UTC),
        responded_at=dt.datetime(2026, 3, 10, 9, 30, tzinfo=UTC),
    )
    # Tuesday 16:00 in Amsterdam, due at 17:00 (closing), answered at 17:30: late, 60 business minutes.
    closing = make_job(contract, dt.datetime(2026, 3, 10, 15, 0, tzinfo=UTC), priority="critical")
    update_job(
        closing, dt.datetime(2026, 3, 10, 16, 30, tzinfo=UTC), responded_at=dt.datetime(2026, 3, 10, 16, 30, tzinfo=UTC)
    )
    viewer = api("viewer")
    lines = {line["work_order"]["id"]: line for line in viewer.get(url(contract)).json()["breaches"]}
    steps = (
        "overage_minutes",
        "penalty_before_caps",
        "penalty_after_breach_cap",
        "penalty_after_monthly_cap",
        "penalty",
    )
    assert [lines[corrected.pk][step] for step in steps] == [0, "0.00", "0.00", "0.00", "0.00"]
    assert [lines[closing.pk][step] for step in steps] == [0, "100.00", "100.00", "100.00", "100.00"]
    for job in (corrected, closing):
        pack = viewer.get(f"/api/v1/breaches/{Breach.objects.get(work_order=job).pk}/evidence").json()["penalty"]
        line = lines[job.pk]
        assert (pack["before_caps"], pack["after_breach_cap"], pack["after_monthly_cap"]) == (
            line["penalty_before_caps"], line["penalty_after_breach_cap"], line["penalty_after_monthly_cap"]
        )  # fmt: skip
    rows = list(
        csv.DictReader(io.StringIO(b"".join(viewer.get(url(contract) + "&format=csv").streaming_content).decode()))
    )
    assert {row["work_order_id"]: row["penalty_before_caps"] for row in rows} == {
        str(corrected.pk): "0.00", str(closing.pk): "100.00"
    }  # fmt: skip


def test_an_expiry_not_posted_yet_counts_in_the_month_as_the_balance_counts_it(api, org):
    """A credit of 40 hours expiring on 20 March (Amsterdam), 10 of them worked on 5 March: 30
    expire on the 20th. Before `run_lifecycle` posts that expiry, March's statement read expiries
    0.00 and a closing balance of 30.00 (and April opened with them), while `/balance` at the end of
    March said 0.00 remaining: the month's figures depended on when cron ran. They are the same
    before and after the posting."""
    from tests.breaches.factories import active_contract

    contract = active_contract(org, currency="EUR", time_zone="Europe/Amsterdam")
    credit(contract, 40, at=dt.datetime(2026, 3, 2, 9, tzinfo=UTC), expires_at=dt.datetime(2026, 3, 20, 11, tzinfo=UTC))
    work(contract, 10, at=dt.datetime(2026, 3, 5, 10, tzinfo=UTC))
    credit(
        contract,
        5,
        at=dt.datetime(2026, 3, 31, 21, 59, tzinfo=UTC),
        expires_at=dt.datetime(2026, 3, 31, 22, tzinfo=UTC),
    )
    viewer = api("viewer")
    keys = ("opening_balance", "allocations", "work", "expiries", "closing_balance")

    def hours(month: str) -> tuple:
        return tuple(viewer.get(url(contract, month)).json()["hours"][key] for key in keys)

    # The 5 hours expiring at the end of March (1 April 00:00 local) are April's expiry.
    assert hours("2026-03") == ("0.00", "45.00", "10.00", "-30.00", "5.00")
    assert hours("2026-04") == ("5.00", "0.00", "0.00", "-5.00", "0.00")
    balance = viewer.get(f"/api/v1/contracts/{contract.pk}/balance?as_of=2026-03-31T21:59:30Z").json()
    assert (balance["remaining_hours"], balance["expired_hours"]) == ("5.00", "30.00")
    assert expire_lots(now=dt.datetime(2026, 4, 2, tzinfo=UTC)) == 2
    assert LedgerEntry.objects.filter(contract=contract, reason_code="lot_expired").count() == 2
    assert hours("2026-03") == ("0.00", "45.00", "10.00", "-30.00", "5.00")
    assert hours("2026-04") == ("5.00", "0.00", "0.00", "-5.00", "0.00")
