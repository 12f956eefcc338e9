"""Payloads beside REST (eleventh round): an integrator reads `sourceID` in the REST work order (and
contract, counterparty, asset); the event payloads named it `source_id` only. Both now, the old
key kept (webhook consumers filter on it), in a snapshot and in an update's `changes`."""

from __future__ import annotations

import pytest

from tests.breaches.factories import active_contract

pytestmark = pytest.mark.django_db


def _event(client, type_: str, object_id: int) -> dict:
    [event] = client.get(f"/api/v1/events?type={type_}&object_id={object_id}").json()
    return event["payload"]


def test_work_order_events_name_source_id_as_the_rest_work_order_does(org, api):
    contract = active_contract(org, reference="C-SRC-1")
    client = api("operator")
    created = client.post(
        "/api/v1/work_orders",
        {"contract_id": contract.pk, "reported_at": "2026-03-10T09:00:00Z", "priority": "high",
         "summary": "Pump", "source": "dispatch", "sourceID": "D-1"},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.content
    job = created.json()
    payload = _event(client, "work_order.created", job["id"])
    assert payload["sourceID"] == payload["source_id"] == job["sourceID"] == "D-1"
    assert payload["source"] == job["source"] and payload["summary"] == job["summary"]

    patched = client.patch(f"/api/v1/work_orders/{job['id']}", {"sourceID": "D-2"}, format="json")
    assert patched.status_code == 200, patched.content
    changes = _event(client, "work_order.updated", job["id"])["changes"]
    assert changes["sourceID"] == changes["source_id"] == {"before": "D-1", "after": "D-2"}


def test_counterparty_snapshots_carry_source_id_both_ways(org, api):
    client = api("manager")
    made = client.post(
        "/api/v1/counterparties",
        {"name": "Pumps Ltd", "kind": "customer", "source": "crm", "sourceID": "CRM-9"},
        format="json",
    )
    assert made.status_code == 201, made.content
    payload = _event(client, "counterparty.created", made.json()["id"])
    assert payload["sourceID"] == payload["source_id"] == "CRM-9"
