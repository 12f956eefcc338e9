"""A stored time zone that this server's tzdata no longer has (an upgrade dropped or renamed it).

Found by an outside sweep: a calendar whose zone had gone made `GET /work_orders`,
`/calendars/{id}/ical` and `/reports/at_risk` answer 500. Every face now answers a conflict that
names the zone (and the calendar), so the caller and the admin know what to fix; the scheduled
commands skip such a rule and report it (tests/breaches/test_scan.py).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from contracts.models import Contract
from slas.models import Calendar
from tests.breaches.factories import active_contract, make_job, make_rule
from tests.graphql.conftest import GraphQLClient

GONE = "Bogus/Zone"


@pytest.fixture
def gone_calendar(org):
    """An office calendar, a rule on it and a job running against it; then the zone goes (with
    `updated_at`, as a freshly started process would not have the calendar compiled)."""
    calendar = Calendar.objects.create(
        organization=org,
        name="Office",
        time_zone="Europe/Amsterdam",
        hours=[{"weekday": day, "start": "00:00", "end": "24:00"} for day in range(1, 8)],
    )
    contract = active_contract(org)
    rule = make_rule(contract, calendar=calendar, target_minutes=600)
    now = timezone.now()
    make_job(contract, now - dt.timedelta(minutes=30), now=now)
    Calendar.objects.filter(pk=calendar.pk).update(time_zone=GONE, updated_at=now + dt.timedelta(seconds=1))
    return calendar, rule


def _says_the_zone_is_unknown(response, calendar=None):
    assert response.status_code == 409, response.content
    message = response.json()["message"]
    assert f"unknown time zone '{GONE}'" in message and "tzdata" in message
    if calendar is not None:
        assert message.startswith(f"Calendar {calendar.pk} ")


@pytest.mark.parametrize("url", ["/api/v1/work_orders", "/api/v1/reports/at_risk?within_minutes=100000"])
def test_lists_computing_clocks_on_it_answer_a_conflict_naming_the_calendar(api, gone_calendar, url):
    calendar, _ = gone_calendar
    _says_the_zone_is_unknown(api("viewer").get(url), calendar)


def test_its_icalendar_export_answers_a_conflict(api, gone_calendar):
    calendar, _ = gone_calendar
    _says_the_zone_is_unknown(api("viewer").get(f"/api/v1/calendars/{calendar.pk}/ical"), calendar)


def test_the_calendar_itself_can_still_be_read_and_given_a_known_zone(api, gone_calendar):
    calendar, _ = gone_calendar
    client = api("manager")
    assert client.get(f"/api/v1/calendars/{calendar.pk}").json()["time_zone"] == GONE
    fixed = client.patch(f"/api/v1/calendars/{calendar.pk}", {"time_zone": "Europe/Brussels"}, format="json")
    assert fixed.status_code == 200, fixed.content
    assert client.get("/api/v1/work_orders").status_code == 200


def test_graphql_answers_a_conflict_not_an_internal_error(api, gone_calendar):
    calendar, _ = gone_calendar
    query = "{ workOrders { results { reference slaClocks { state elapsedMinutes } } } }"
    body = GraphQLClient(api("viewer"))(query, errors=True)
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "CONFLICT"
    assert error["message"].startswith(f"Calendar {calendar.pk} has an unknown time zone '{GONE}'")


def test_a_contract_whose_zone_is_gone_answers_a_conflict_on_its_statement(api, org):
    contract = active_contract(org)
    Contract.objects.filter(pk=contract.pk).update(time_zone=GONE)
    _says_the_zone_is_unknown(api("viewer").get(f"/api/v1/contracts/{contract.pk}/statement?month=2026-03"))
