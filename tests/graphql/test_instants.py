"""GraphQL writes an instant as REST does (DESIGN §5: UTC with `Z` on output), also one computed in a
contract's own time zone, and still reads one given with any offset."""

from __future__ import annotations

import datetime as dt

import pytest

from contracts.models import Amendment, Contract
from events.models import Event
from tests.breaches.factories import make_job, make_rule
from tests.contracts.factories import make_contract
from tests.graphql.world import build_world
from workorders.models import WorkOrder

pytestmark = pytest.mark.django_db

UTC_TEXT = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$"


@pytest.fixture
def world(org, make_member):
    world = build_world(org, make_member("admin", org))
    # Instants computed in the contract's zone (an amendment's start of day, a visit's occurrence).
    Contract.objects.filter(pk=world["contracts.Contract"][0]).update(time_zone="Europe/Amsterdam")
    return world


def _assert_same_instants(shown: dict, rest: dict, names: dict[str, str]) -> None:
    for graphql_name, rest_name in names.items():
        assert shown[graphql_name] == rest[rest_name], (graphql_name, shown[graphql_name], rest[rest_name])
        assert rest[rest_name] is None or rest[rest_name].endswith("Z")


def test_stored_instants_read_as_rest_writes_them(gql, world):
    client = gql("admin")
    contract_id = world["contracts.Contract"][0]
    shown = client(f"{{ contract(id: {contract_id}) {{ createdAt updatedAt }} }}")["contract"]
    rest = client.client.get(f"/api/v1/contracts/{contract_id}").json()
    _assert_same_instants(shown, rest, {"createdAt": "created_at", "updatedAt": "updated_at"})

    job = WorkOrder.objects.filter(pk__in=world["workorders.WorkOrder"]).order_by("id").first()
    fields = "reportedAt respondedAt createdAt updatedAt holds { start end } slaClocks { startedAt dueAt stoppedAt }"
    shown = client(f"{{ workOrder(id: {job.pk}) {{ {fields} }} }}")["workOrder"]
    rest = client.client.get(f"/api/v1/work_orders/{job.pk}").json()
    _assert_same_instants(shown, rest, {"reportedAt": "reported_at", "respondedAt": "responded_at",
                                        "createdAt": "created_at", "updatedAt": "updated_at"})  # fmt: skip
    for mine, theirs in zip(shown["slaClocks"], rest["sla_clocks"], strict=True):
        _assert_same_instants(mine, theirs, {"startedAt": "started_at", "dueAt": "due_at", "stoppedAt": "stopped_at"})
    for mine, theirs in zip(shown["holds"], rest["holds"], strict=True):
        _assert_same_instants(mine, theirs, {"start": "start", "end": "end"})
    assert shown["slaClocks"] and shown["slaClocks"][0]["dueAt"]

    breach_id = world["breaches.Breach"][0]
    shown = client(f"{{ breach(id: {breach_id}) {{ dueAt detectedAt clockStoppedAt }} }}")["breach"]
    rest = client.client.get(f"/api/v1/breaches/{breach_id}").json()
    _assert_same_instants(shown, rest, {"dueAt": "due_at", "detectedAt": "detected_at",
                                        "clockStoppedAt": "clock_stopped_at"})  # fmt: skip

    event = Event.objects.filter(organization_id=job.organization_id).order_by("id").first()
    shown = client(f"{{ event(id: {event.pk}) {{ occurredAt }} }}")["event"]
    rest = client.client.get(f"/api/v1/events/{event.pk}").json()
    _assert_same_instants(shown, rest, {"occurredAt": "occurred_at"})


def test_instants_computed_in_a_contracts_zone_read_in_utc(gql, world):
    client = gql("operator")
    contract_id = world["contracts.Contract"][0]
    amendment = Amendment.objects.get(pk=world["contracts.Amendment"][0])
    shown = client(f"{{ amendment(id: {amendment.pk}) {{ effectiveAt }} }}")["amendment"]
    rest = client.client.get(f"/api/v1/contracts/{contract_id}/amendments/{amendment.pk}").json()
    assert shown["effectiveAt"] == rest["effective_at"]
    midnight = dt.datetime.combine(amendment.effective_date, dt.time(), dt.UTC)
    assert shown["effectiveAt"] in {f"{(midnight - dt.timedelta(hours=h)).isoformat()[:19]}Z" for h in (1, 2)}

    query = """{ contractVisits(contractId: %s, from: "2026-03-01T01:00:00+01:00", to: "2026-07-01T00:00:00Z")
                 { results { occurrence endsAt } } }"""
    shown = client(query % contract_id)["contractVisits"]["results"]  # a page of 20, as REST's first
    window = {"from": "2026-03-01T00:00:00Z", "to": "2026-07-01T00:00:00Z"}
    rest = client.client.get(f"/api/v1/contracts/{contract_id}/visits", window).json()
    assert shown and [(v["occurrence"], v["endsAt"]) for v in shown] == [(v["occurrence"], v["ends_at"]) for v in rest]

    plan_id = world["workorders.VisitPlan"][0]
    shown = client(f"{{ visitPlan(id: {plan_id}) {{ nextOccurrences }} }}")["visitPlan"]["nextOccurrences"]
    rest = client.client.get(f"/api/v1/contracts/{contract_id}/visit_plans/{plan_id}").json()["next_occurrences"]
    assert shown == rest and all(text.endswith("Z") for text in shown)


def test_an_escalation_instant_in_a_report_reads_as_rest(gql, org):
    now = dt.datetime.now(dt.UTC)
    contract = make_contract(org, status="active", time_zone="Asia/Tokyo")
    make_rule(contract, target_minutes=600, escalation=[{"at_percent": 50, "name": "Dispatcher"}])
    make_job(contract, reported_at=now - dt.timedelta(minutes=30))
    client = gql("viewer")
    data = client("{ slaAtRisk(withinMinutes: 600) { items { nextEscalation clock { dueAt } } } }")["slaAtRisk"]
    rest = client.client.get("/api/v1/reports/at_risk?within_minutes=600").json()
    assert [(i["nextEscalation"], i["clock"]["dueAt"]) for i in data["items"]] == [
        (r["next_escalation"], r["due_at"]) for r in rest
    ]
    assert data["items"][0]["nextEscalation"]["at"].endswith("Z")


def test_inputs_still_take_any_offset(gql, org):
    contract = make_contract(org, status="active")
    client = gql("operator")
    mutation = """mutation { createWorkOrder(input: {contractId: %s, reportedAt: "2026-03-10T10:00:00+01:00",
        priority: "high"}) { ... on WorkOrder { id reportedAt } } }"""
    created = client(mutation % contract.pk)["createWorkOrder"]
    assert created["reportedAt"] == "2026-03-10T09:00:00Z"
    rest = client.client.get(f"/api/v1/work_orders/{created['id']}").json()
    assert rest["reported_at"] == created["reportedAt"]
    for bound, count in (('"2026-03-10T10:00:00+01:00"', 1), ('"2026-03-10T10:00:01+01:00"', 0)):
        query = f"{{ workOrders(filters: {{reportedAt: {{gte: {bound}}}}}) {{ totalCount }} }}"
        assert client(query)["workOrders"]["totalCount"] == count
    variables = {"at": "2026-03-10T04:00:00-05:00"}
    query = "query ($at: DateTime!) { workOrders(filters: {reportedAt: {eq: $at}}) { results { reportedAt } } }"
    assert client(query, variables)["workOrders"]["results"] == [{"reportedAt": "2026-03-10T09:00:00Z"}]
