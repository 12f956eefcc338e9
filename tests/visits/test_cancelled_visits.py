"""Thirteenth round, known gaps: a visit whose job was cancelled (by a termination, a suspension,
an expiry brought forward, or the dispatcher) reads `cancelled` in the visits listing (REST's
field and `?state=` filter, its CSV, GraphQL's `contractVisits`), not `generated` and then
`missed` as an owed visit nobody came to."""

from __future__ import annotations

import datetime as dt

import pytest

from events.models import Event
from tests.graphql.conftest import GraphQLClient
from tests.workorders.factories import change
from tests.workorders.test_visit_generation import daily_visits_generated_ahead

pytestmark = pytest.mark.django_db


def test_visits_cancelled_by_a_termination_or_the_dispatcher_read_cancelled(org, api):
    contract, plan, jobs, now = daily_visits_generated_ahead(org)
    # The dispatcher called off the first visit (three days ago): not missed, cancelled.
    called_off = jobs.order_by("occurrence").first()
    change(called_off, status="cancelled", now=called_off.occurrence)
    manager = api("manager")
    terminated = manager.post(f"/api/v1/contracts/{contract.pk}/terminate", {"reason": "Sold"}, format="json")
    assert terminated.status_code == 200, terminated.content
    ended = Event.objects.get(type="contract.state_changed", object_id=contract.pk).occurred_at
    expected = {job.occurrence: "cancelled" if job.occurrence > ended or job == called_off else None for job in jobs}
    window = {"from": (now - dt.timedelta(days=4)).isoformat(), "to": (now + dt.timedelta(days=8)).isoformat()}
    url = f"/api/v1/contracts/{contract.pk}/visits"
    listed = api("operator").get(url, {**window, "per_page": 100}).json()
    assert len(listed) == jobs.count()
    states = {dt.datetime.fromisoformat(v["occurrence"]): v["state"] for v in listed}
    cancelled = {o for o, state in expected.items() if state == "cancelled"}
    assert {o for o, state in states.items() if state == "cancelled"} == cancelled
    assert len(cancelled) >= 4 and "cancelled" not in {s for o, s in states.items() if o not in cancelled}
    only = api("operator").get(url, {**window, "state": "cancelled", "per_page": 100}).json()
    assert {dt.datetime.fromisoformat(v["occurrence"]) for v in only} == cancelled
    assert {v["work_order"]["status"] for v in only} == {"cancelled"}
    query = """query($id: ID!, $from: DateOrInstant, $to: DateOrInstant) {
      contractVisits(contractId: $id, from: $from, to: $to, states: [cancelled], pagination: {limit: 100}) {
        totalCount results { occurrence state } } }"""
    found = GraphQLClient(manager)(query, {"id": contract.pk, **window})["contractVisits"]
    assert found["totalCount"] == len(cancelled)
    assert {r["state"] for r in found["results"]} == {"cancelled"}
    # The OpenAPI document and the GraphQL enum name the state.
    assert "cancelled" in manager.get(url, {**window, "state": "nope"}).json()["message"]
