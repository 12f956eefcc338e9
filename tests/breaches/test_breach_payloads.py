"""Every breach event names what it is about (eleventh round's sweep): `breach.waived` named no job,
contract or rule, `breach.acknowledged` only the job, `breach.finalized` no contract, so a webhook
consumer had to GET the breach to know which contract's figures moved. Each now carries
`work_order`, `contract`, `sla_rule` and `metric`, the ids the REST breach shows."""

from __future__ import annotations

import pytest

from events.models import Event
from tests.breaches.factories import T0, active_contract, make_job, make_rule, minutes, scan, update_job

pytestmark = pytest.mark.django_db

NAMED = ("work_order", "contract", "sla_rule", "metric")


def _named(payload: dict) -> dict:
    return {key: payload.get(key) for key in NAMED}


def test_acknowledged_waived_and_finalized_name_the_job_contract_and_rule(org, api):
    contract = active_contract(org, reference="C-PAY-1")
    rule = make_rule(contract, target_minutes=60, penalty={"fixed_amount": "10"})
    job = make_job(contract, T0, reference="WO-P1")
    scan(minutes(75))
    client = api("manager")
    [breach] = client.get("/api/v1/breaches").json()
    expected = {"work_order": job.pk, "contract": contract.pk, "sla_rule": rule.pk, "metric": "response"}
    assert (breach["work_order"]["id"], breach["contract"]["id"]) == (job.pk, contract.pk)

    assert client.post(f"/api/v1/breaches/{breach['id']}/acknowledge", {}, format="json").status_code == 200
    update_job(job, minutes(90), status="in_progress")  # the clock stops: the breach's final figures
    waived = client.post(f"/api/v1/breaches/{breach['id']}/waive", {"reason": "Agreed."}, format="json")
    assert waived.status_code == 200, waived.content

    for kind in ("breach.detected", "breach.acknowledged", "breach.finalized", "breach.waived"):
        [event] = Event.objects.filter(type=kind, object_id=breach["id"])
        assert _named(event.payload) == expected, kind
    waived_payload = Event.objects.get(type="breach.waived").payload
    assert (waived_payload["reason"], waived_payload["penalty_amount"]) == ("Agreed.", "10.00")
