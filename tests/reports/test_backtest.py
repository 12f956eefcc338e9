"""`POST /api/v1/backtests`: a what-if replay of proposed terms, read-only.

- Replaying the current terms reproduces the live clocks the product stored (met, breached,
  still open, cancelled), job for job;
- a longer response target on a 24x7 rule turns exactly the jobs answered between the old and
  the new target from breached to met (checked by hand from the jobs' instants);
- penalties follow the proposed clause and monthly cap; nothing stored changes.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal

import pytest
from django.utils import timezone

from breaches.models import Breach
from events.models import Event
from tests.reports.factories import FIRST, OFFICE, build_dataset
from workorders.models import SlaClock

pytestmark = pytest.mark.django_db
URL = "/api/v1/backtests"
WINDOW = {"from": "2026-03-01T00:00:00Z", "to": "2026-05-01T00:00:00+02:00"}


def _stored_outcomes(rules) -> Counter:
    now = timezone.now()
    counts = Counter()
    for clock in SlaClock.objects.filter(rule__in=rules, work_order__reported_at__gte=FIRST):
        if clock.state == "met":
            counts["met"] += 1
        elif clock.state == "breached" or (clock.state == "running" and clock.due_at and clock.due_at < now):
            counts["breached"] += 1
        elif clock.state == "cancelled":
            counts["cancelled"] += 1
        else:
            counts["open"] += 1
    return counts


def _snapshot():
    return (
        Event.objects.count(),
        sorted(SlaClock.objects.values_list("pk", "state", "due_at", "elapsed_seconds", "updated_at")),
        sorted(Breach.objects.values_list("pk", "penalty_amount", "actual_minutes", "updated_at")),
    )


def test_replaying_the_current_terms_reproduces_the_stored_clocks(api, org):
    data = build_dataset(org, seed=41, jobs=50)
    contract = data.contracts[0]
    before = _snapshot()
    response = api("manager").post(
        URL, {"contract_id": contract.pk, **WINDOW, "proposed": {"pause_on_hold": False}}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    stored = _stored_outcomes([r for r in data.rules if r.contract_id == contract.pk])
    current = body["current"]
    assert (current["met"], current["breached"], current["open"], current["cancelled"]) == (
        stored["met"],
        stored["breached"],
        stored["open"],
        stored["cancelled"],
    )
    assert current["decided"] == stored["met"] + stored["breached"]
    assert [rule["id"] for rule in body["sla_rules"]] == [r.pk for r in data.rules if r.contract_id == contract.pk]
    assert _snapshot() == before  # read-only


def test_a_longer_response_target_turns_exactly_the_right_jobs_to_met(api, org):
    data = build_dataset(org, seed=42, jobs=60)
    respond = data.rules[0]  # response, 60 minutes, 24x7, critical and high
    response = api("manager").post(
        URL, {"sla_rule_id": respond.pk, **WINDOW, "proposed": {"target_minutes": 150}}, format="json"
    )
    body = response.json()
    expected = set()
    for job in data.jobs:
        if job.contract_id != respond.contract_id or job.priority not in ("critical", "high"):
            continue
        if job.responded_at is not None:
            stop = job.responded_at  # the clock stops: met within the target
        elif job.status == "cancelled":
            stop = job.status_changed_at  # ended without a response: breached only if past due
        elif job.status in ("resolved", "closed"):
            stop = job.resolved_at
        else:
            continue  # still running, long past both targets
        if 3600 < (stop - job.reported_at).total_seconds() <= 9000:
            expected.add(job.pk)
    changed = {item["work_order"]["id"] for item in body["changed"]}
    assert changed == expected, (body["changed_counts"], sorted(changed ^ expected))
    assert set(body["changed_counts"]) <= {"breached_to_met", "breached_to_open", "breached_to_cancelled"}
    assert body["changed_total"] == len(body["changed"]) == sum(body["changed_counts"].values())
    assert body["proposed"]["met"] >= body["current"]["met"]
    assert Decimal(body["proposed"]["penalties"].get("EUR", "0")) <= Decimal(body["current"]["penalties"]["EUR"])
    item = body["changed"][0]
    assert item["work_order"]["name"].startswith("JOB-") and item["sla_rule"]["id"] == respond.pk
    assert item["proposed_due_at"] > item["current_due_at"]


def test_proposed_penalties_calendar_and_priorities(api, org, other_org):
    data = build_dataset(org, seed=43, jobs=50)
    contract = data.contracts[0]
    client = api("manager")
    capped = client.post(
        URL,
        {
            "contract_id": contract.pk,
            **WINDOW,
            "proposed": {"penalty": {"fixed_amount": "1000"}, "monthly_penalty_cap": "1500.00"},
        },
        format="json",
    ).json()
    # Three rules, two months, 1,500 a rule and month at most.
    assert Decimal(capped["proposed"]["penalties"]["EUR"]) <= 3 * 2 * 1500
    assert capped["proposed"]["breached"] == capped["current"]["breached"] and capped["changed"] == []
    office_hours = {
        "time_zone": "Europe/Amsterdam",
        "hours": [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(1, 6)],
        "holidays": ["2026-04-03"],
    }
    inline = client.post(
        URL,
        {"sla_rule_id": data.rules[0].pk, **WINDOW, "proposed": {"calendar": office_hours, "priorities": ["critical"]}},
        format="json",
    )
    assert inline.status_code == 200, inline.content
    body = inline.json()
    assert body["changed_total"] > 0
    assert any(key.endswith("_to_not_covered") for key in body["changed_counts"])  # high is no longer covered
    by_id = client.post(
        URL,
        {"sla_rule_id": data.rules[0].pk, **WINDOW, "proposed": {"calendar_id": None}},  # 24x7, as it is
        format="json",
    ).json()
    assert by_id["changed"] == [] and by_id["current"] == by_id["proposed"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"proposed": {"target_minutes": 30}}, "sla_rule_id"),
        ({"sla_rule_id": "RULE", "contract_id": "CONTRACT", "proposed": {"target_minutes": 30}}, "sla_rule_id"),
        ({"sla_rule_id": "THEIR_RULE", "proposed": {"target_minutes": 30}}, "sla_rule_id"),
        ({"contract_id": "THEIR_CONTRACT", "proposed": {"target_minutes": 30}}, "contract_id"),
        ({"sla_rule_id": "RULE", "proposed": {"calendar_id": "THEIR_CALENDAR"}}, "proposed.calendar_id"),
        ({"sla_rule_id": "RULE", "proposed": {}}, "proposed"),
        ({"sla_rule_id": "RULE", "proposed": {"target_minutes": 0}}, "proposed.target_minutes"),
        ({"sla_rule_id": "RULE", "proposed": {"colour": "red"}}, "proposed.colour"),
        ({"sla_rule_id": "RULE", "proposed": {"penalty": {"fixed_amount": -5}}}, "proposed.penalty"),
        (
            {"sla_rule_id": "RULE", "proposed": {"calendar": {"time_zone": "Mars/Base", "hours": []}}},
            "proposed.calendar",
        ),
        (
            {"sla_rule_id": "RULE", "proposed": {"calendar": {"time_zone": "UTC", "hours": [{"weekday": 9}]}}},
            "proposed.calendar.hours[0]",
        ),
        # Twelfth round: a proposed calendar is judged as a stored one (these were backtested): no
        # working time, the server's own zone or tzdata's placeholder, a holiday out of range.
        (
            {"sla_rule_id": "RULE", "proposed": {"calendar": {"time_zone": "UTC", "hours": []}}},
            "proposed.calendar.hours",
        ),
        (
            {"sla_rule_id": "RULE", "proposed": {"calendar": {"time_zone": "localtime", "hours": OFFICE}}},
            "proposed.calendar.time_zone",
        ),
        (
            {"sla_rule_id": "RULE", "proposed": {"calendar": {"time_zone": "Factory", "hours": OFFICE}}},
            "proposed.calendar.time_zone",
        ),
        (
            {
                "sla_rule_id": "RULE",
                "proposed": {"calendar": {"time_zone": "UTC", "hours": OFFICE, "holidays": ["0001-01-01"]}},
            },
            "proposed.calendar.holidays",
        ),
        ({"sla_rule_id": "RULE", "from": "2026-03-01T00:00:00", "proposed": {"target_minutes": 30}}, "from"),
        ({"sla_rule_id": "RULE", "to": "2026-02-01T00:00:00Z", "proposed": {"target_minutes": 30}}, "to"),
        ({"sla_rule_id": "RULE", "to": "2024-01-01T12:99:00Z", "proposed": {"target_minutes": 30}}, "to"),  # a 500 once
        ({"sla_rule_id": "RULE", "from": "2026-02-30T00:00:00Z", "proposed": {"target_minutes": 30}}, "from"),
        ({"sla_rule_id": "RULE", "proposed": {"target_minutes": 30}, "colour": 1}, "colour"),
    ],
)
def test_bad_input_is_422_naming_the_field(api, org, other_org, body, field):
    mine = build_dataset(org, seed=44, jobs=2)
    theirs = build_dataset(other_org, seed=45, jobs=2)
    from slas.models import Calendar

    values = {
        "RULE": mine.rules[0].pk,
        "CONTRACT": mine.contracts[0].pk,
        "THEIR_RULE": theirs.rules[0].pk,
        "THEIR_CONTRACT": theirs.contracts[0].pk,
        "THEIR_CALENDAR": Calendar.objects.filter(organization=other_org).first().pk,
    }

    def fill(value):
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return values.get(value, value) if isinstance(value, str) else value

    payload = {**WINDOW, **fill(body)}
    response = api("manager").post(URL, payload, format="json")
    assert response.status_code == 422, response.content
    errors = response.json()["errors"]
    assert any(key == field or key.startswith(field) for key in errors), errors


def test_auth_and_malformed_json(api, anon, org):
    data = build_dataset(org, seed=46, jobs=2)
    payload = {"sla_rule_id": data.rules[0].pk, **WINDOW, "proposed": {"target_minutes": 30}}
    assert anon.post(URL, payload, format="json").status_code == 401
    response = api("operator").post(URL, payload, format="json")
    assert response.status_code == 403 and "manager" in response.json()["message"]
    assert api("manager").post(URL, '{"sla_rule_id": ', content_type="application/json").status_code == 400
    assert api("manager").get(URL).status_code == 405


def test_a_window_ending_in_the_future_counts_open_clocks(api, org):
    data = build_dataset(org, seed=47, jobs=30)
    window = {"from": "2026-01-01T00:00:00Z", "to": (timezone.now() + dt.timedelta(days=1)).isoformat()}
    body = (
        api("manager")
        .post(URL, {"contract_id": data.contracts[1].pk, **window, "proposed": {"target_minutes": 15}}, format="json")
        .json()
    )
    assert body["jobs"] == sum(1 for job in data.jobs if job.contract_id == data.contracts[1].pk)
