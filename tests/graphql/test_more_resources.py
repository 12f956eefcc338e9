"""The resources GraphQL gained in its second round, through the real view with real JWTs: lists
and gets, filters and ordering, the REST roles, enums for choice fields, the clocks' minutes, and
the computed queries (visits, periods, the reports, notification settings) against REST's answers
and another organization's ids."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from model_bakery import baker

from billing.models import BillingPeriod
from contracts.models import Amendment, Contract, LineItem
from notifications.models import WebhookDelivery
from signing.models import SignatureRequest
from tests.graphql.world import build_world
from workorders.models import SlaClock, VisitPlan, WorkOrder

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(org, make_member):
    return build_world(org, make_member("admin", org))


@pytest.fixture
def theirs(other_org, make_member):
    return build_world(other_org, make_member("admin", other_org))


def ids(rows) -> list[int]:
    return [int(row["id"]) for row in rows]


def bad_request_naming(body) -> set[str]:
    """The input fields a BAD_REQUEST error names."""
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST", error
    return set(error["extensions"]["errors"])


# --- lists, gets, roles -----------------------------------------------------------------------------

LISTS = {
    # root list: (model label, the least role that reads it, as REST)
    "amendments": ("contracts.Amendment", "viewer"),
    "termVersions": ("contracts.TermVersion", "viewer"),
    "signatureRequests": ("signing.SignatureRequest", "viewer"),
    "assets": ("contracts.Asset", "operator"),
    "contractRules": ("workorders.ContractRule", "operator"),
    "visitPlans": ("workorders.VisitPlan", "operator"),
    "billingLines": ("billing.BillingLine", "manager"),
    "billingExports": ("billing.ExportBatch", "manager"),
    "contractTemplates": ("billing.ContractTemplate", "manager"),
    "webhookDeliveries": ("notifications.WebhookDelivery", "manager"),
}
ROLES = ["viewer", "operator", "manager", "admin"]


@pytest.mark.parametrize("field", sorted(LISTS))
def test_each_list_and_get_follows_the_rest_role(gql, world, field):
    label, least = LISTS[field]
    single = field[:-1] if not field.endswith("ies") else field[:-3] + "y"
    single = {"billingExport": "billingExport"}.get(single, single)
    for role in ROLES:
        client = gql(role)
        allowed = ROLES.index(role) >= ROLES.index(least)
        if allowed:
            data = client(f"{{ {field} {{ totalCount results {{ id }} }} }}")[field]
            assert data["totalCount"] == len(world[label]) and sorted(ids(data["results"])) == sorted(world[label])
            got = client(f"{{ {single}(id: {world[label][0]}) {{ id }} }}")[single]
            assert int(got["id"]) == world[label][0]
        else:
            body = client(f"{{ {field} {{ totalCount }} }}", errors=True)
            assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", (field, role)
            assert f"the {least} role" in body["errors"][0]["message"]


def test_contract_children_filter_by_contract_and_nest_under_it(gql, world, org):
    from tests.contracts.factories import make_contract

    contract = Contract.objects.get(pk=world["contracts.Contract"][0])
    other = make_contract(org, name="Other")
    Amendment.objects.create(organization=org, contract=other, number=1, effective_date=dt.date(2026, 5, 1), changes={})
    client = gql("viewer")
    listed = client(
        f"{{ amendments(filters: {{contractId: {contract.pk}}}) {{ results {{ id contract {{ id }} }} }} }}"
    )
    assert ids(listed["amendments"]["results"]) == world["contracts.Amendment"]
    nested = client(f"{{ contract(id: {contract.pk}) {{ amendments {{ id }} termVersions {{ id origin }} }} }}")
    assert ids(nested["contract"]["amendments"]) == world["contracts.Amendment"]
    assert sorted(ids(nested["contract"]["termVersions"])) == sorted(world["contracts.TermVersion"])
    assert client("{ amendments { totalCount } }")["amendments"]["totalCount"] == 2


def test_every_resource_rest_nests_under_a_contract_takes_contract_id(gql, world, org):
    # Found by an outside integrator: `lineItems(filters: {contractId: ..})` was an unknown field,
    # though README says the root list of every resource nested under its contract takes it.
    from config.graphql.base import TenantType
    from config.graphql.schema import schema
    from contracts.api import ContractChild
    from tests.contracts.factories import make_contract

    def types(cls=TenantType):
        for sub in cls.__subclasses__():
            yield sub
            yield from types(sub)

    nested = {t.__name__ for t in types() if issubclass(getattr(t, "rest_view", object), ContractChild)}
    assert {"LineItem", "Amendment", "TermVersion", "VisitPlan", "SignatureRequest"} <= nested
    for name in nested:
        assert "contractId" in schema._schema.type_map[f"{name}Filter"].fields, name
    contract = Contract.objects.get(pk=world["contracts.Contract"][0])
    other = make_contract(org, name="Other")
    baker.make(LineItem, organization=org, contract=other, description="Elsewhere")
    client = gql("viewer")
    listed = client(f"{{ lineItems(filters: {{contractId: {contract.pk}}}) {{ results {{ id contract {{ id }} }} }} }}")
    assert ids(listed["lineItems"]["results"]) == world["contracts.LineItem"]
    assert client("{ lineItems { totalCount } }")["lineItems"]["totalCount"] == len(world["contracts.LineItem"]) + 1


def test_filters_and_order_are_the_rest_ones(gql, world):
    client = gql("manager")
    delivery = WebhookDelivery.objects.get(pk=world["notifications.WebhookDelivery"][0])
    webhook_id = delivery.endpoint_id
    data = client(
        f"""{{ webhookDeliveries(filters: {{webhookId: {webhook_id}, status: {{in: ["pending", "failed"]}}}},
                                  order: [{{field: CREATED_AT, direction: DESC}}]) {{
             results {{ id webhookId status webhook {{ id }} event {{ id }} attemptLog {{ number }} }} }} }}"""
    )["webhookDeliveries"]["results"]
    assert ids(data) == [delivery.pk]
    assert data[0]["webhookId"] == delivery.webhook_id and data[0]["attemptLog"] == [{"number": 1}]
    body = client('{ billingLines(filters: {kind: {eq: "nonsense"}}) { totalCount } }', errors=True)
    assert (
        body["errors"][0]["extensions"]["code"] == "BAD_REQUEST" and "kind" in body["errors"][0]["extensions"]["errors"]
    )
    plans = client("{ visitPlans(order: [{field: SUMMARY}]) { results { id nextOccurrences asset { id } } } }")
    assert ids(plans["visitPlans"]["results"]) == world["workorders.VisitPlan"]


# --- enums --------------------------------------------------------------------------------------------

ENUM_FIELDS = [
    ("Contract", "status", "ContractStatus"),
    ("WorkOrder", "priority", "Priority"),
    ("WorkOrder", "status", "WorkOrderStatus"),
    ("SlaRule", "metric", "Metric"),
    ("SlaClock", "state", "SlaClockState"),
    ("Breach", "state", "BreachState"),
    ("Membership", "role", "MembershipRole"),
    ("Amendment", "status", "AmendmentStatus"),
    ("SignatureRequest", "status", "SignatureRequestStatus"),
    ("WebhookDelivery", "status", "DeliveryStatus"),
]


@pytest.mark.parametrize(("type_name", "field", "enum"), ENUM_FIELDS)
def test_choice_fields_are_enums_with_the_rest_values(gql, type_name, field, enum):
    query = f"""{{ t: __type(name: "{type_name}") {{ fields {{ name type {{ kind name ofType {{ kind name }} }} }} }}
                  e: __type(name: "{enum}") {{ kind enumValues {{ name }} }} }}"""
    data = gql("viewer")(query)
    (found,) = [f for f in data["t"]["fields"] if f["name"] == field]
    named = found["type"]["ofType"] or found["type"]
    assert named == {"kind": "ENUM", "name": enum}
    assert data["e"]["kind"] == "ENUM" and all(v["name"].islower() for v in data["e"]["enumValues"])


def test_an_enum_value_is_the_rest_value(gql, world):
    client = gql("viewer")
    pk = world["contracts.Contract"][0]
    data = client(f"{{ contract(id: {pk}) {{ status workOrders {{ priority status }} }} }}")["contract"]
    rest = client.client.get(f"/api/v1/contracts/{pk}").json()
    assert data["status"] == rest["status"]
    jobs = client.client.get(f"/api/v1/work_orders?contract_id={pk}&fields=priority,status").json()
    assert sorted((j["priority"], j["status"]) for j in data["workOrders"]) == sorted(
        (j["priority"], j["status"]) for j in jobs
    )


# --- clocks ---------------------------------------------------------------------------------------------


def test_clock_minutes_are_the_rest_figures(gql, world):
    client = gql("viewer")
    job = WorkOrder.objects.filter(pk__in=world["workorders.WorkOrder"], sla_clocks__stopped_at__isnull=True).first()
    assert job is not None
    data = client(f"{{ workOrder(id: {job.pk}) {{ slaClocks {{ id state elapsedMinutes remainingMinutes }} }} }}")
    rest = {c["id"]: c for c in client.client.get(f"/api/v1/work_orders/{job.pk}").json()["sla_clocks"]}
    assert data["workOrder"]["slaClocks"]
    for clock in data["workOrder"]["slaClocks"]:
        expected = rest[int(clock["id"])]
        # Read a moment apart: a running clock may have moved by a minute in between.
        assert abs(clock["elapsedMinutes"] - expected["elapsed_minutes"]) <= 1
        assert abs(clock["remainingMinutes"] - expected["remaining_minutes"]) <= 1
        assert clock["state"] == expected["state"]
    stopped = SlaClock.objects.filter(work_order__in=world["workorders.WorkOrder"], stopped_at__isnull=False).first()
    if stopped is not None:
        got = client(f"{{ workOrder(id: {stopped.work_order_id}) {{ slaClocks {{ id elapsedMinutes }} }} }}")
        mine = [c for c in got["workOrder"]["slaClocks"] if int(c["id"]) == stopped.pk]
        assert mine[0]["elapsedMinutes"] == -(-stopped.elapsed_seconds // 60)  # a started minute counts


# --- computed queries -----------------------------------------------------------------------------------


def test_contract_visits_as_rest_and_behind_the_wall(gql, world, theirs):
    client = gql("operator")
    pk = world["contracts.Contract"][0]
    window = '"2026-03-01T00:00:00+00:00"', '"2026-07-01T00:00:00+00:00"'
    query = (
        "{ contractVisits(contractId: %s, from: %s, to: %s) "
        "{ totalCount results { occurrence state visitPlan { id } } } }"
    )
    page = client(query % (pk, *window))["contractVisits"]
    data = page["results"]  # the first page of 20, as REST's
    response = client.client.get(f"/api/v1/contracts/{pk}/visits?from=2026-03-01T00:00:00Z&to=2026-07-01T00:00:00Z")
    rest = response.json()
    assert page["totalCount"] == int(response["X-Pagination-Total-Entries"])
    assert [(v["occurrence"], v["state"]) for v in data] == [(v["occurrence"], v["state"]) for v in rest]
    assert data and {int(v["visitPlan"]["id"]) for v in data} == set(world["workorders.VisitPlan"])
    body = client(query % (theirs["contracts.Contract"][0], *window), errors=True)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    body = client(query % (pk, window[1], window[0]), errors=True)
    assert (
        body["errors"][0]["extensions"]["code"] == "BAD_REQUEST" and "to" in body["errors"][0]["extensions"]["errors"]
    )
    body = gql("viewer")(query % (pk, *window), errors=True)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_contract_periods_as_rest_and_behind_the_wall(gql, world, theirs):
    client = gql("viewer")
    contract = Contract.objects.get(pk=world["contracts.Contract"][0])
    contract.billing_period, contract.period_charge = "monthly", 100
    contract.save(update_fields=["billing_period", "period_charge"])
    as_of = '"2026-05-15T00:00:00+00:00"'
    query = "{ contractPeriods(contractId: %s, asOf: " + as_of + ") { id index number startDate status total } }"
    # One period stored (as run_lifecycle opens them): its id, as billing lines' periodId has it.
    stored = BillingPeriod.objects.create(
        organization=contract.organization, contract=contract, index=1, start_date=dt.date(2026, 2, 1),
        end_date=dt.date(2026, 2, 28),
    )  # fmt: skip
    data = client(query % contract.pk)["contractPeriods"]
    rest = client.client.get(f"/api/v1/contracts/{contract.pk}/periods?as_of=2026-05-15T00:00:00%2B00:00").json()
    shown = [(p["id"], p["index"], p["number"], p["startDate"], p["status"], p["total"]) for p in data]
    assert shown == [
        (p["id"] and str(p["id"]), p["index"], p["number"], p["start_date"], p["status"], p["total"]) for p in rest
    ]
    assert data and [p["id"] for p in data if p["id"]] == [str(stored.pk)]
    assert all(p["number"] == p["index"] + 1 for p in data)
    body = client(query % theirs["contracts.Contract"][0], errors=True)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # Not in the future, as REST (found by an outside sweep: as of 2999, 12,000 periods an alias).
    far = '{ contractPeriods(contractId: %s, asOf: "2999-12-01T00:00:00Z") { index } }'
    assert bad_request_naming(client(far % contract.pk, errors=True)) == {"asOf"}


def test_sla_compliance_as_rest(gql, world, theirs):
    client = gql("viewer")
    query = """{ slaCompliance(from: "2026-01-01", to: "2026-12-31", groupBy: [contract, metric]) {
        contract { id name } metric decided met breached achievedPercent minutes { p50 } penalties openAtEnd } }"""
    data = client(query)["slaCompliance"]
    rest = client.client.get("/api/v1/reports/sla_compliance?from=2026-01-01&to=2026-12-31&group_by=contract,metric")
    rest = rest.json()
    assert [(int(r["contract"]["id"]), r["metric"], r["decided"], r["breached"]) for r in data] == [
        (r["contract"]["id"], r["metric"], r["decided"], r["breached"]) for r in rest
    ]
    assert data and all(int(r["contract"]["id"]) in world["contracts.Contract"] for r in data)
    # Their contract's id is only a filter that matches nothing of ours.
    mine_only = client(
        f'{{ slaCompliance(from: "2026-01-01", to: "2026-12-31", contractIds: [{theirs["contracts.Contract"][0]}]) '
        "{ decided } }"
    )
    assert mine_only["slaCompliance"] == [{"decided": 0}]
    body = client('{ slaCompliance(from: "2026-02-01", to: "2026-01-01") { decided } }', errors=True)
    assert body["errors"][0]["extensions"] == {"code": "BAD_REQUEST", "errors": {"to": ["Must not be before from."]}}
    body = client(
        '{ slaCompliance(from: "2026-01-01", to: "2026-02-01", timeZone: "Mars/Base") { decided } }', errors=True
    )
    assert "timeZone" in body["errors"][0]["extensions"]["errors"]


def test_sla_at_risk_as_rest_and_only_ours(gql, world, theirs, org, other_org):
    from tests.breaches.factories import make_job, make_rule
    from tests.contracts.factories import make_contract

    now = dt.datetime.now(dt.UTC)
    for organization in (org, other_org):  # a running clock due soon in each organization
        contract = make_contract(organization, status="active")
        make_rule(contract, target_minutes=600)
        make_job(contract, reported_at=now - dt.timedelta(minutes=30))
    client = gql("viewer")
    data = client(
        "{ slaAtRisk(withinMinutes: 525600, limit: 100) { totalCount items { remainingMinutes percentUsed "
        "clock { id workOrder { id } } } } }"
    )["slaAtRisk"]
    rest = client.client.get("/api/v1/reports/at_risk?within_minutes=525600&per_page=100").json()
    assert [int(i["clock"]["id"]) for i in data["items"]] == [r["id"] for r in rest]
    assert data["totalCount"] == len(rest) >= 1
    ours = set(WorkOrder.objects.filter(organization=org).values_list("pk", flat=True))
    assert {int(i["clock"]["workOrder"]["id"]) for i in data["items"]} <= ours
    for item, row in zip(data["items"], rest, strict=True):
        assert abs(item["remainingMinutes"] - row["remaining_minutes"]) <= 1
    body = client("{ slaAtRisk(withinMinutes: -1) { totalCount } }", errors=True)
    assert "withinMinutes" in body["errors"][0]["extensions"]["errors"]
    body = client("{ slaAtRisk(limit: 101) { totalCount } }", errors=True)
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def test_notification_settings_for_managers(gql, org):
    org.notification_emails = ["ops@example.com"]
    org.save(update_fields=["notification_emails"])
    data = gql("manager")("{ notificationSettings { notificationEmails } }")
    assert data == {"notificationSettings": {"notificationEmails": ["ops@example.com"]}}
    body = gql("operator")("{ notificationSettings { notificationEmails } }", errors=True)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_a_signature_requests_status_is_computed_as_rest(gql, world):
    client = gql("viewer")
    request = SignatureRequest.objects.get(pk=world["signing.SignatureRequest"][0])
    assert request.status == "pending" and request.expires_at < dt.datetime.now(dt.UTC)
    data = client(f"{{ signatureRequest(id: {request.pk}) {{ status contract {{ id }} }} }}")["signatureRequest"]
    rest = client.client.get(f"/api/v1/contracts/{request.contract_id}/approval_requests/{request.pk}").json()
    assert data["status"] == rest["status"] == "expired"


def test_visit_plans_of_their_contracts_never_show(gql, world, theirs):
    assert VisitPlan.objects.exclude(pk__in=world["workorders.VisitPlan"]).exists()
    data = gql("operator")("{ visitPlans { results { id } } }")["visitPlans"]["results"]
    assert ids(data) == world["workorders.VisitPlan"]


# --- the N+1 wall for the clocks' minutes and the second round's nested lists ---------------------------

MINUTES = """{ contracts(pagination: {limit: 100}) { results {
  workOrders { slaClocks { state elapsedMinutes remainingMinutes } }
  amendments { id effectiveAt } termVersions { id amendment { id } } } } }"""


def _minutes_queries(gql, org, contracts: int) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.breaches.factories import T0, make_job, make_rule
    from tests.contracts.factories import make_contract

    for index in range(contracts):
        contract = make_contract(org, name=f"Minutes {index:03d}", status="active")
        make_rule(contract)
        job = make_job(contract, T0, now=T0)
        from workorders.models import Hold

        Hold.objects.create(organization=org, work_order=job, start=T0, end=T0 + dt.timedelta(minutes=5))
        Amendment.objects.create(
            organization=org, contract=contract, number=1, effective_date=dt.date(2026, 6, 1), changes={}
        )
    client = gql("viewer", org=org)
    with CaptureQueriesContext(connection) as captured:
        data = client(MINUTES)
    clocks = [c for r in data["contracts"]["results"] for w in r["workOrders"] for c in w["slaClocks"]]
    assert len(clocks) >= contracts and all(isinstance(c["remainingMinutes"], int) for c in clocks)
    return len(captured.captured_queries)


def test_clock_minutes_and_new_nested_lists_do_not_grow_with_rows(gql, org, other_org):
    assert _minutes_queries(gql, other_org, 2) == _minutes_queries(gql, org, 12)


def test_visit_plans_next_occurrences_do_not_grow_the_queries(gql, org):
    # Each plan's window reads where its contract's term ends (its term versions): once a page.
    from contracts import terms
    from tests.contracts.factories import make_contract
    from workorders import rules

    client = gql("operator")
    query = "{ visitPlans { results { id nextOccurrences } } }"
    client(query)  # caches the token's membership
    counts = []
    for plans in (1, 4):
        contract = make_contract(org, status="active", start_date=dt.date(2026, 1, 1), expiry_date=dt.date(2099, 1, 1))
        terms.start_versions(contract, origin="creation", now=contract.start_of_day(contract.start_date))
        for _ in range(plans):
            data = {"summary": "Weekly", "recurrence": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9"}
            rules.create_visit_plan(contract=contract, actor=None, data=data)
        with CaptureQueriesContext(connection) as captured:
            results = client(query)["visitPlans"]["results"]
        assert all(len(plan["nextOccurrences"]) == 5 for plan in results)
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1], counts


@pytest.mark.parametrize(
    "query, argument",
    [
        ('contractPeriods(contractId: %s, asOf: "2026-01-01T00:00:00") { index }', "asOf"),
        ('contractBalance(contractId: %s, asOf: "2026-11-01T00:00:00") { remainingHours }', "asOf"),
        ('contractLots(contractId: %s, asOf: "2026-11-01T00:00:00") { id }', "asOf"),
        (
            'contractVisits(contractId: %s, from: "2026-01-01T00:00:00", to: "2026-02-01T00:00:00Z") '
            "{ results { state } }",
            "from",
        ),
    ],
)
def test_instant_arguments_without_an_offset_are_a_bad_request(gql, world, query, argument):
    # Found by an outside sweep: they reached the services naive and failed there (INTERNAL).
    contract = world["contracts.Contract"][0]
    body = gql("operator")("{ " + query % contract + " }", errors=True)
    assert bad_request_naming(body) == {argument}
    assert "offset" in body["errors"][0]["message"]


def test_a_terminated_contracts_visit_plans_have_no_next_occurrences(gql, org):
    # Found by an outside tester: nextOccurrences kept announcing visits after the termination that
    # the visits listing and generation no longer had. The status is read with the page (no query a plan).
    from contracts.services import terminate_contract
    from tests.contracts.factories import make_contract
    from workorders import rules

    client = gql("operator")
    client("{ visitPlans { results { id } } }")  # caches the token's membership
    counts = []
    for plans in (1, 4):
        contract = make_contract(org, status="active", start_date=dt.date(2026, 1, 1), expiry_date=dt.date(2099, 1, 1))
        for _ in range(plans):
            data = {"summary": "Weekly", "recurrence": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9"}
            rules.create_visit_plan(contract=contract, actor=None, data=data)
        query = f"{{ visitPlans(filters: {{contractId: {contract.pk}}}) {{ results {{ id nextOccurrences }} }} }}"
        assert all(len(plan["nextOccurrences"]) == 5 for plan in client(query)["visitPlans"]["results"])
        terminate_contract(contract=contract, actor=None, reason="gone")
        with CaptureQueriesContext(connection) as captured:
            results = client(query)["visitPlans"]["results"]
        assert [plan["nextOccurrences"] for plan in results] == [[]] * plans
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1], counts
