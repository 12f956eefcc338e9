"""A write or a delete whose object a concurrent DELETE removed is the 404 a later request gets.

The views read the object, then the service re-reads it under its lock (`events.feed.locked`). A
DELETE that commits between the two left the re-read raising `DoesNotExist`, a 500, and a second
DELETE answered 204 and wrote a second `*.deleted` event (found by an outside tester). Played here
in order on any database: the view's read happens, then the row goes (as the other DELETE commits),
then the service runs. tests/events/test_gone_rows_race.py plays the real race on PostgreSQL.
"""

from __future__ import annotations

import pytest
from model_bakery import baker
from rest_framework.generics import GenericAPIView

from billing.models import ContractTemplate
from contracts import services as contract_services
from contracts.models import Asset, Contract, Counterparty
from events.models import Event
from notifications.models import WebhookEndpoint
from tests.contracts.factories import make_contract
from tests.graphql.conftest import GraphQLClient
from tests.slas.factories import make_calendar, make_rule
from tests.visits.test_visits_api import long_contract, make_plan, plans_url
from tests.workorders.test_contract_rules_api import make_contract_rule

pytestmark = pytest.mark.django_db


def _draft(org):
    return make_contract(org, status=Contract.Status.DRAFT)


def _line_item(org):
    contract = _draft(org)
    item = contract_services.create_line_item(contract=contract, actor=None, data={"description": "Inspection"})
    return f"/api/v1/contracts/{contract.pk}/line_items/{item.pk}", item


def _plan(org):
    plan = make_plan(long_contract(org))
    return f"{plans_url(plan.contract)}/{plan.pk}", plan


# name -> (make(org) -> (detail URL, object), a PATCH body)
RESOURCES = {
    "counterparty": (
        lambda org: (lambda o: (f"/api/v1/counterparties/{o.pk}", o))(
            baker.make(Counterparty, organization=org, name="Gone")
        ),
        {"remarks": "r"},
    ),
    "calendar": (lambda org: (lambda o: (f"/api/v1/calendars/{o.pk}", o))(make_calendar(org)), {"name": "Renamed"}),
    "asset": (
        lambda org: (lambda o: (f"/api/v1/assets/{o.pk}", o))(
            baker.make(Asset, organization=org, counterparty=baker.make(Counterparty, organization=org), name="A")
        ),
        {"name": "zz"},
    ),
    "draft contract": (lambda org: (lambda o: (f"/api/v1/contracts/{o.pk}", o))(_draft(org)), {"remarks": "r"}),
    "sla rule": (lambda org: (lambda o: (f"/api/v1/sla_rules/{o.pk}", o))(make_rule(_draft(org))), {"name": "x"}),
    "line item": (_line_item, {"sku": "X-1"}),
    "contract template": (
        lambda org: (lambda o: (f"/api/v1/contract_templates/{o.pk}", o))(
            ContractTemplate.objects.create(
                organization=org, name="T", contract_type="service_contract", currency="EUR"
            )
        ),
        {"name": "T2"},
    ),
    "contract rule": (
        lambda org: (lambda o: (f"/api/v1/contract_rules/{o.pk}", o))(make_contract_rule(org)),
        {"name": "R2"},
    ),
    "visit plan": (_plan, {"summary": "Renamed"}),
    "webhook": (
        lambda org: (lambda o: (f"/api/v1/webhooks/{o.pk}", o))(
            WebhookEndpoint.objects.create(organization=org, url="https://hooks.example.com/1", event_types=["*"])
        ),
        {"description": "x"},
    ),
}


@pytest.fixture
def gone_after_read(monkeypatch):
    """The object a view reads is deleted right after (a concurrent DELETE commits there)."""
    original = GenericAPIView.get_object

    def get_object(self):
        obj = original(self)
        type(obj).objects.filter(pk=obj.pk).delete()
        return obj

    monkeypatch.setattr(GenericAPIView, "get_object", get_object)


def _events_of(obj) -> list[str]:
    return list(Event.objects.filter(object_id=obj.pk, type__endswith=".deleted").values_list("type", flat=True))


@pytest.mark.parametrize("name", RESOURCES)
def test_a_patch_of_an_object_deleted_meanwhile_is_404(name, org, api, gone_after_read):
    make, body = RESOURCES[name]
    url, obj = make(org)

    response = api("admin").patch(url, body, format="json")

    assert response.status_code == 404, response.content
    assert response.json() == {"message": "Not found."}


@pytest.mark.parametrize("name", [name for name in RESOURCES if name != "sla rule"])  # past draft: amend
def test_a_delete_that_lost_to_another_is_404_and_writes_no_second_event(name, org, api, gone_after_read):
    make, _ = RESOURCES[name]
    url, obj = make(org)

    response = api("admin").delete(url)

    assert response.status_code == 404, response.content
    assert response.json() == {"message": "Not found."}
    assert _events_of(obj) == []  # the DELETE that won wrote its own (here: the hook's delete, none)


def test_an_action_on_a_draft_deleted_meanwhile_is_404(org, api, gone_after_read):
    contract = _draft(org)

    response = api("admin").post(f"/api/v1/contracts/{contract.pk}/submit", {}, format="json")

    assert response.status_code == 404, response.content
    assert response.json() == {"message": "Not found."}


def test_graphql_says_not_found_as_rest_does(org, api, gone_after_read):
    client = GraphQLClient(api("admin"))
    cp = baker.make(Counterparty, organization=org)
    data = client(
        f'mutation {{ updateCounterparty(id: {cp.pk}, input: {{remarks: "x"}}) '
        "{ ... on OperationError { kind message } } }"
    )
    assert data["updateCounterparty"] == {"kind": "NOT_FOUND", "message": "Not found."}
    cp = baker.make(Counterparty, organization=org)
    data = client(f"mutation {{ deleteCounterparty(id: {cp.pk}) {{ ... on OperationError {{ kind message }} }} }}")
    assert data["deleteCounterparty"] == {"kind": "NOT_FOUND", "message": "Not found."}
    assert _events_of(cp) == []
