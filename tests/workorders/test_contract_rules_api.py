"""`/api/v1/contract_rules` (issue 13): the shared conventions, then the shape of criteria."""

from __future__ import annotations

import pytest
from model_bakery import baker

from contracts.models import Asset, Counterparty
from events.models import Event
from tests.api_base import WritableResourceAPITests
from tests.contracts.factories import make_contract
from workorders.models import ContractRule

URL = "/api/v1/contract_rules"
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[4.8, 52.3], [5.0, 52.3], [5.0, 52.4], [4.8, 52.4], [4.8, 52.3]]],
}


def make_contract_rule(org, **fields) -> ContractRule:
    if "contract" not in fields and fields.get("outcome") != "not_covered":
        fields["contract"] = make_contract(org, status="active")
    return ContractRule.objects.create(organization=org, **{"name": "Rule", "sequence": 10, **fields})


class TestContractRulesAPI(WritableResourceAPITests):
    url = URL
    read_role = "operator"
    write_role = "manager"
    update_data = {"name": "Pumps first", "sequence": 5, "enabled": False}
    default_fields = [
        "id", "name", "sequence", "enabled", "criteria", "outcome", "contract", "created_at", "updated_at",
    ]  # fmt: skip
    sort_keys = ["name", "sequence", "created_at", "updated_at"]
    default_sort = "sequence"
    deletable = True
    # 1 count, 2 the page's ids (issue 15), 3 the page joined with the contract.
    list_queries = 3
    filter_cases = [
        ("name", "Warranty", ["warranty"]),
        ("sequence", "<20", ["warranty"]),
        ("enabled", "false", ["off"]),
        ("outcome", "not_covered", ["off"]),
        ("contract_id", lambda objs: str(objs["warranty"].contract_id), ["warranty"]),
        ("contract_id", "", ["off"]),
        ("created_at", ">2000-01-01", ["warranty", "maintenance", "off"]),
        ("updated_at", "<2000-01-01", []),
        ("ids", "off", ["off"]),
    ]
    malformed_filters = [("enabled", "perhaps"), ("outcome", "maybe"), ("sequence", ">x")]

    @pytest.fixture(autouse=True)
    def _data(self, org):
        self.contract = make_contract(org, status="active", coverage_areas=SQUARE)
        self.counterparty = self.contract.counterparty
        self.asset = baker.make(Asset, organization=org, counterparty=self.counterparty, kind="pump")
        self.create_data = {
            "name": "Pumps at the harbour",
            "sequence": 10,
            "criteria": [
                {"field": "counterparty", "operator": "equals", "value": self.counterparty.pk},
                {"field": "asset", "operator": "in", "value": [self.asset.pk]},
                {"field": "asset_kind", "operator": "contains", "value": "pump"},
                {"field": "priority", "operator": "in", "value": ["critical", "high"]},
                {"field": "summary", "operator": "contains", "value": "leak"},
                {"field": "location", "operator": "within", "value": self.contract.pk},
            ],
            "contract_id": self.contract.pk,
        }

    def factory(self, org, **overrides):
        return make_contract_rule(org, **overrides)

    def filter_objects(self, org):
        return {
            "warranty": make_contract_rule(org, name="Warranty", sequence=10),
            "maintenance": make_contract_rule(org, name="Maintenance", sequence=20),
            "off": make_contract_rule(org, name="Off", sequence=30, enabled=False, outcome="not_covered"),
        }

    def check_created(self, body, data):
        assert body["outcome"] == "contract" and body["enabled"] is True
        assert body["contract"] == {"id": self.contract.pk, "name": self.contract.name}
        assert body["criteria"] == data["criteria"]
        assert Event.objects.filter(type="contract_rule.created", object_id=body["id"]).count() == 1


@pytest.mark.django_db
class TestCriteria:
    def post(self, api, criteria, **extra):
        return api("manager").post(
            URL, {"name": "R", "criteria": criteria, "outcome": "not_covered", **extra}, format="json"
        )

    @pytest.mark.parametrize(
        "criterion, field",
        [
            ({"field": "colour", "operator": "equals", "value": "red"}, "criteria[0].field"),
            ({"field": "priority", "operator": "within", "value": "high"}, "criteria[0].operator"),
            ({"field": "priority", "operator": "equals", "value": "urgent"}, "criteria[0].value"),
            ({"field": "priority", "operator": "in", "value": "high"}, "criteria[0].value"),
            ({"field": "counterparty", "operator": "equals", "value": "1"}, "criteria[0].value"),
            ({"field": "counterparty", "operator": "equals", "value": 999999}, "criteria[0].value"),
            ({"field": "asset", "operator": "in", "value": []}, "criteria[0].value"),
            ({"field": "summary", "operator": "contains", "value": ""}, "criteria[0].value"),
            ({"field": "summary", "operator": "contains", "value": 5}, "criteria[0].value"),
            ({"field": "location", "operator": "within", "value": 999999}, "criteria[0].value"),
            ({"field": "summary", "operator": "contains", "value": "x", "extra": 1}, "criteria[0].extra"),
        ],
    )
    def test_a_malformed_criterion_is_a_422_at_its_path(self, api, criterion, field):
        response = self.post(api, [criterion])
        assert response.status_code == 422, response.content
        assert field in response.json()["errors"], response.json()

    def test_ids_of_another_organization_are_a_422(self, api, org, other_org):
        theirs = baker.make(Counterparty, organization=other_org)
        their_contract = make_contract(other_org, status="active", coverage_areas=SQUARE)
        for criterion in (
            {"field": "counterparty", "operator": "in", "value": [theirs.pk]},
            {"field": "location", "operator": "within", "value": their_contract.pk},
        ):
            response = self.post(api, [criterion])
            assert response.status_code == 422 and "criteria[0].value" in response.json()["errors"]
        response = api("manager").post(URL, {"name": "R", "contract_id": their_contract.pk}, format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"contract_id"}

    def test_within_needs_a_contract_with_coverage(self, api, org):
        bare = make_contract(org, status="active")
        response = self.post(api, [{"field": "location", "operator": "within", "value": bare.pk}])
        assert response.status_code == 422 and "no coverage" in response.json()["errors"]["criteria[0].value"][0]

    def test_the_outcome_and_the_contract_agree(self, api, org):
        contract = make_contract(org, status="active")
        client = api("manager")
        response = client.post(URL, {"name": "R", "outcome": "contract"}, format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"contract_id"}
        response = client.post(URL, {"name": "R", "outcome": "not_covered", "contract_id": contract.pk}, format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"contract_id"}
        created = client.post(URL, {"name": "R", "contract_id": contract.pk}, format="json").json()
        response = client.patch(f"{URL}/{created['id']}", {"outcome": "not_covered"}, format="json")
        assert response.status_code == 200 and response.json()["contract"] is None


@pytest.mark.django_db
def test_what_a_rule_names_is_not_deleted_from_under_it(api, org):
    # Twelfth round: a counterparty, an asset or a draft contract named by a rule's criteria (by id, in
    # its JSON) was deleted (204), and the rule then named nothing: it silently matched no job, and
    # sending its criteria back unchanged was a 422. Now a 409 naming the rule, through REST and the
    # admin alike, until the rule no longer names it.
    from django.contrib.auth import get_user_model
    from django.test import Client

    from contracts.models import Contract

    manager = api("manager")
    party = baker.make(Counterparty, organization=org, name="Harbour Fire", kind="customer")
    asset = baker.make(Asset, organization=org, counterparty=party, name="Pump")
    area = make_contract(org, counterparty=party, status="draft", coverage_areas=SQUARE)
    other = baker.make(Counterparty, organization=org, name="Mutual aid")  # nothing else uses it
    criteria = [
        {"field": "counterparty", "operator": "in", "value": [party.pk, other.pk]},
        {"field": "asset", "operator": "equals", "value": asset.pk},
        {"field": "location", "operator": "within", "value": area.pk},
    ]
    created = manager.post(URL, {"name": "Harbour", "outcome": "not_covered", "criteria": criteria}, format="json")
    assert created.status_code == 201, created.content
    rule = created.json()["id"]
    staff = Client()
    staff.force_login(get_user_model().objects.create_superuser(username="staff", password="pw"))
    for path, obj in (("assets", asset), ("contracts", area), ("counterparties", other)):
        response = manager.delete(f"/api/v1/{path}/{obj.pk}")
        assert response.status_code == 409, response.content
        assert f"contract rules {rule}" in response.json()["message"]
        admin_url = f"/admin/contracts/{obj._meta.model_name}/{obj.pk}/delete/"
        page = staff.post(admin_url, {"post": "yes"}, follow=True)
        assert page.status_code == 200 and f"contract rules {rule}" in page.content.decode()
        assert type(obj).objects.filter(pk=obj.pk).exists()
    assert not Event.objects.filter(type__endswith=".deleted").exists()
    assert manager.delete(f"{URL}/{rule}").status_code == 204
    assert manager.delete(f"/api/v1/contracts/{area.pk}").status_code == 204
    assert manager.delete(f"/api/v1/assets/{asset.pk}").status_code == 204
    assert manager.delete(f"/api/v1/counterparties/{other.pk}").status_code == 204
    assert not Contract.objects.filter(pk=area.pk).exists()
