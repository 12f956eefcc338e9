"""`/api/v1/breaches`: a read-only resource (through the shared API test base) plus the
`acknowledge` (operators and up) and `waive` (managers and up, reason required) actions.

Breaches are never made by hand here: each comes from a real job on a real rule, recorded by the
work-order service (a job stopped after its due time) or by the scan.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest

from breaches.models import Breach
from breaches.services import acknowledge_breach, waive_breach
from config.api.exceptions import Unprocessable
from contracts.models import Contract
from events.models import Event
from tests.api_base import ResourceAPITests
from tests.breaches.factories import T0, active_contract, make_job, make_rule, minutes, scan, update_job

URL = "/api/v1/breaches"
CLAUSE = {"fixed_amount": "10", "per_unit_amount": "2.5", "unit_minutes": 10}
_sequence = itertools.count()


def late_breach(org, *, currency="EUR", penalty=CLAUSE, late_by=30, reported_at=T0, contract=None) -> Breach:
    """A response breach recorded at once: the job is answered `late_by` minutes after its 60-minute target."""
    contract = contract or active_contract(org, currency=currency)
    rule = contract.sla_rules.first() or make_rule(contract, target_minutes=60, penalty=penalty)
    job = make_job(contract, reported_at)
    update_job(job, minutes(60 + late_by, reported_at), status="in_progress")
    return Breach.objects.get(work_order=job, sla_rule=rule)


class TestBreachesAPI(ResourceAPITests):
    url = URL
    read_role = "viewer"
    default_fields = [
        "id", "contract", "sla_rule", "work_order", "metric", "overage_minutes", "penalty_amount", "currency",
        "detected_at", "final", "state",
    ]  # fmt: skip
    sort_keys = ["detected_at", "due_at", "overage_minutes", "penalty_amount", "state"]
    default_sort = "-id"
    detail_actions = [("acknowledge", {}), ("waive", {"reason": "Customer agreed."})]
    # 1 count, 2 the page's ids (issue 15), 3 the page with contract, rule, job and both users joined.
    list_queries = 3
    filter_cases = [
        ("ids", "a,c", ["a", "c"]),
        ("state", "open", ["b"]),
        ("state", "acknowledged,waived", ["a", "c"]),
        ("state", "!waived", ["b", "c"]),
        ("metric", "resolution", ["b"]),
        ("metric", "!resolution", ["a", "c"]),
        ("final", "true", ["a"]),
        ("final", "false", ["b", "c"]),
        ("contract_id", lambda o: str(o["c"].contract_id), ["c"]),
        ("contract_id", lambda o: f"!{o['c'].contract_id}", ["a", "b"]),
        ("sla_rule_id", lambda o: str(o["b"].sla_rule_id), ["b"]),
        ("work_order_id", lambda o: str(o["a"].work_order_id), ["a", "b"]),
        ("work_order_id", lambda o: f"{o['c'].work_order_id}", ["c"]),
        ("detected_at", "<2026-03-10T12:00:00Z", ["a"]),
        ("detected_at", ">=2026-03-10T12:00:00Z<2026-03-11", ["b", "c"]),
        ("due_at", ">2026-03-10T10:30:00Z", ["b", "c"]),
        ("due_at", "<=2026-03-10T11:00:00Z", ["a", "c"]),
        ("currency", "JPY", ["c"]),
    ]
    malformed_filters = [
        ("state", "closed"),
        ("metric", "speed"),
        ("final", "maybe"),
        ("detected_at", ">yesterday"),
        ("contract_id", "abc"),
        ("work_order_id", "1,x"),
    ]

    def factory(self, org, **overrides):
        # One contract (and rule) per organization; each breach is a job answered a varying time late.
        contract = Contract.objects.filter(organization=org).first() or active_contract(org)
        n = next(_sequence)
        return late_breach(org, contract=contract, reported_at=minutes(7 * n), late_by=1 + 13 * (n % 5))

    def sort_value(self, key, item):
        return Decimal(item[key]) if key == "penalty_amount" else item[key]

    def filter_objects(self, org):
        """a: a response breach (final, waived) of job 1 on a EUR contract; b: the resolution breach
        of job 1, still running; c: a running response breach (acknowledged) on a JPY contract."""
        eur, jpy = active_contract(org, currency="EUR"), active_contract(org, currency="JPY")
        make_rule(eur, metric="response", target_minutes=60, penalty=CLAUSE)
        make_rule(eur, metric="resolution", target_minutes=240, penalty=CLAUSE)
        make_rule(jpy, metric="response", target_minutes=60, penalty={"fixed_amount": "1000"})
        job1 = make_job(eur, T0)
        update_job(job1, minutes(90), status="in_progress")  # a: due 10:00Z, answered 10:30Z
        job2 = make_job(jpy, minutes(60))  # c: due 11:00Z
        scan(minutes(300), org=org.slug)  # 14:00Z: b (due 13:00Z) and c are past due
        a = Breach.objects.get(work_order=job1, metric="response")
        b = Breach.objects.get(work_order=job1, metric="resolution")
        c = Breach.objects.get(work_order=job2)
        waive_breach(breach=a, actor=None, reason="Agreed with the customer.", now=minutes(301))
        acknowledge_breach(breach=c, actor=None, now=minutes(301))
        return {label: Breach.objects.get(pk=breach.pk) for label, breach in {"a": a, "b": b, "c": c}.items()}


@pytest.mark.django_db
class TestRepresentation:
    def test_a_single_breach_has_every_field(self, api, org):
        breach = late_breach(org, late_by=25)
        body = api("viewer").get(f"{URL}/{breach.pk}").json()
        job = breach.work_order
        assert body == {
            "id": breach.pk,
            "contract": {"id": breach.contract_id, "name": breach.contract.name},
            "sla_rule": {"id": breach.sla_rule_id, "name": breach.sla_rule.name},
            "work_order": {"id": job.pk, "name": str(job)},
            "metric": "response",
            "target_minutes": 60,
            "actual_minutes": 85,
            "overage_minutes": 25,
            "penalty_amount": "17.50",  # 10 + 3 started units of 10 minutes at 2.50
            "currency": "EUR",
            "due_at": "2026-03-10T10:00:00Z",
            "detected_at": "2026-03-10T10:25:00Z",
            "clock_stopped_at": "2026-03-10T10:25:00Z",
            "final": True,
            "state": "open",
            "acknowledged_by": None,
            "acknowledged_at": None,
            "waived_by": None,
            "waived_at": None,
            "waiver_reason": "",
            "updated_at": body["updated_at"],
        }

    @pytest.mark.parametrize(
        ("currency", "clause", "expected"),
        [
            ("JPY", {"fixed_amount": "1000.5"}, "1001"),
            ("EUR", {"fixed_amount": "0.125"}, "0.13"),
            ("KWD", {"fixed_amount": "1.2345"}, "1.235"),
            ("KWD", {"fixed_amount": "3"}, "3.000"),
        ],
    )
    def test_the_penalty_is_a_string_in_the_currencys_minor_unit(self, api, org, currency, clause, expected):
        breach = late_breach(org, currency=currency, penalty=clause)
        body = api("viewer").get(f"{URL}/{breach.pk}").json()
        assert (body["penalty_amount"], body["currency"]) == (expected, currency)
        listed = api("viewer").get(f"{URL}?fields=penalty_amount,currency").json()
        assert listed == [{"id": breach.pk, "penalty_amount": expected, "currency": currency}]

    def test_the_collection_is_read_only(self, api, org):
        breach = late_breach(org)
        client = api("admin")
        assert client.post(URL, {"metric": "response"}, format="json").status_code == 405
        assert client.patch(f"{URL}/{breach.pk}", {"state": "waived"}, format="json").status_code == 405
        assert client.delete(f"{URL}/{breach.pk}").status_code == 405
        assert Breach.objects.get(pk=breach.pk).state == "open"

    def test_a_job_pushed_in_through_the_api_after_its_due_time_has_its_breach_at_once(self, api, org):
        contract = active_contract(org)
        make_rule(contract, target_minutes=60, penalty={"fixed_amount": "50"})
        client = api("operator")
        job = client.post(
            "/api/v1/work_orders",
            {
                "contract_id": contract.pk,
                "priority": "high",
                "reported_at": "2026-03-10T09:00:00Z",
                "responded_at": "2026-03-10T10:45:00Z",
            },
            format="json",
        )
        assert job.status_code == 201, job.content
        found = client.get(f"{URL}?work_order_id={job.json()['id']}&fields=overage_minutes,penalty_amount,final")
        assert [{k: v for k, v in b.items() if k != "id"} for b in found.json()] == [
            {"overage_minutes": 45, "penalty_amount": "50.00", "final": True}
        ]
        assert Event.objects.filter(type="breach.detected", object_id=found.json()[0]["id"]).count() == 1


@pytest.mark.django_db
class TestAcknowledge:
    def test_an_operator_acknowledges_an_open_breach(self, api, org):
        breach = late_breach(org)
        client = api("operator")
        response = client.post(f"{URL}/{breach.pk}/acknowledge", format="json")
        assert response.status_code == 200, response.content
        body = response.json()
        user = client.membership.user
        assert body["state"] == "acknowledged"
        assert body["acknowledged_by"] == {"id": user.pk, "name": user.username}
        assert body["acknowledged_at"].endswith("Z")
        assert body["waived_by"] is None and body["penalty_amount"] == "17.50"
        event = Event.objects.get(type="breach.acknowledged")
        assert (event.object_type, event.object_id, event.actor_id) == ("breach", breach.pk, user.pk)
        assert event.payload == {
            "work_order": breach.work_order_id, "contract": breach.contract_id, "sla_rule": breach.sla_rule_id,
            "metric": breach.metric,
        }  # fmt: skip
        assert api("viewer").get(f"{URL}/{breach.pk}").json() == body

    def test_a_viewer_may_not_acknowledge(self, api, org):
        breach = late_breach(org)
        response = api("viewer").post(f"{URL}/{breach.pk}/acknowledge", format="json")
        assert response.status_code == 403
        assert "operator" in response.json()["message"]
        assert Breach.objects.get(pk=breach.pk).state == "open"
        assert not Event.objects.filter(type="breach.acknowledged").exists()

    def test_acknowledging_twice_or_a_waived_breach_is_409(self, api, org):
        first, second = late_breach(org), late_breach(org)
        client = api("operator")
        assert client.post(f"{URL}/{first.pk}/acknowledge").status_code == 200
        again = client.post(f"{URL}/{first.pk}/acknowledge")
        assert again.status_code == 409
        assert again.json() == {"message": "Only an open breach can be acknowledged; this one is acknowledged."}
        api("manager").post(f"{URL}/{second.pk}/waive", {"reason": "Goodwill."}, format="json")
        waived = client.post(f"{URL}/{second.pk}/acknowledge")
        assert waived.status_code == 409 and "waived" in waived.json()["message"]
        assert Event.objects.filter(type="breach.acknowledged").count() == 1

    def test_a_body_with_fields_is_422(self, api, org):
        breach = late_breach(org)
        response = api("operator").post(f"{URL}/{breach.pk}/acknowledge", {"state": "acknowledged"}, format="json")
        assert response.status_code == 422
        assert "state" in response.json()["errors"]
        assert Breach.objects.get(pk=breach.pk).state == "open"


@pytest.mark.django_db
class TestWaive:
    def test_a_manager_waives_with_a_reason(self, api, org):
        breach = late_breach(org)
        client = api("manager")
        response = client.post(f"{URL}/{breach.pk}/waive", {"reason": "  Road closed by the police.  "}, format="json")
        assert response.status_code == 200, response.content
        body = response.json()
        user = client.membership.user
        assert body["state"] == "waived"
        assert body["waived_by"] == {"id": user.pk, "name": user.username}
        assert body["waiver_reason"] == "Road closed by the police."
        assert body["waived_at"].endswith("Z")
        event = Event.objects.get(type="breach.waived")
        assert (event.object_type, event.object_id, event.actor_id) == ("breach", breach.pk, user.pk)
        assert event.payload == {
            "work_order": breach.work_order_id, "contract": breach.contract_id, "sla_rule": breach.sla_rule_id,
            "metric": breach.metric, "reason": "Road closed by the police.", "penalty_amount": "17.50",
            "currency": "EUR",
        }  # fmt: skip

    def test_an_acknowledged_breach_can_be_waived(self, api, org):
        breach = late_breach(org)
        assert api("operator").post(f"{URL}/{breach.pk}/acknowledge").status_code == 200
        response = api("manager").post(f"{URL}/{breach.pk}/waive", {"reason": "Agreed."}, format="json")
        assert response.status_code == 200
        body = response.json()
        assert body["state"] == "waived" and body["acknowledged_by"] is not None

    @pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": None}, {"reason": "x" * 2001}])
    def test_the_reason_is_required_and_not_empty(self, api, org, body):
        breach = late_breach(org)
        response = api("manager").post(f"{URL}/{breach.pk}/waive", body, format="json")
        assert response.status_code == 422, response.content
        assert "reason" in response.json()["errors"]
        assert Breach.objects.get(pk=breach.pk).state == "open"
        assert not Event.objects.filter(type="breach.waived").exists()

    def test_an_unknown_field_is_422(self, api, org):
        breach = late_breach(org)
        response = api("manager").post(f"{URL}/{breach.pk}/waive", {"reason": "ok", "penalty": 0}, format="json")
        assert response.status_code == 422 and "penalty" in response.json()["errors"]

    def test_an_operator_may_not_waive(self, api, org):
        breach = late_breach(org)
        response = api("operator").post(f"{URL}/{breach.pk}/waive", {"reason": "Please."}, format="json")
        assert response.status_code == 403
        assert "manager" in response.json()["message"]
        assert Breach.objects.get(pk=breach.pk).state == "open"

    def test_waiving_twice_is_409_and_keeps_the_first_waiver(self, api, org):
        breach = late_breach(org)
        client = api("manager")
        client.post(f"{URL}/{breach.pk}/waive", {"reason": "First."}, format="json")
        again = client.post(f"{URL}/{breach.pk}/waive", {"reason": "Second."}, format="json")
        assert again.status_code == 409
        assert "already waived" in again.json()["message"]
        assert Breach.objects.get(pk=breach.pk).waiver_reason == "First."
        assert Event.objects.filter(type="breach.waived").count() == 1

    def test_the_service_refuses_a_blank_reason_too(self, org):
        # The admin and scripts call the service directly: the API's validation is not the only guard.
        breach = late_breach(org)
        with pytest.raises(Unprocessable) as caught:
            waive_breach(breach=breach, actor=None, reason="  ", now=minutes(200))
        assert caught.value.errors == {"reason": ["This field may not be blank."]}
        assert Breach.objects.get(pk=breach.pk).state == "open"


@pytest.mark.django_db
def test_breach_events_are_listed_in_order(api, org):
    """breach.detected, breach.acknowledged and breach.waived, each once, readable from /events."""
    contract = active_contract(org)
    make_rule(contract, target_minutes=60)
    make_job(contract, T0)
    scan(minutes(75))
    breach = Breach.objects.get()
    assert api("operator").post(f"{URL}/{breach.pk}/acknowledge").status_code == 200
    assert api("manager").post(f"{URL}/{breach.pk}/waive", {"reason": "Agreed."}, format="json").status_code == 200
    events = api("viewer").get(f"/api/v1/events?object_type=breach&object_id={breach.pk}&sort=id").json()
    assert [e["type"] for e in events] == ["breach.detected", "breach.acknowledged", "breach.waived"]
    assert events[0]["occurred_at"] == (T0 + dt.timedelta(minutes=75)).isoformat().replace("+00:00", "Z")
