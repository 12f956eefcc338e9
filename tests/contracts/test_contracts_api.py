import datetime as dt

import pytest
from model_bakery import baker

from contracts.models import Contract, Counterparty, LineItem
from events.models import Event
from tests.api_base import WritableResourceAPITests
from tests.contracts.factories import make_contract

SQUARE = {"type": "Polygon", "coordinates": [[[4.0, 52.0], [5.0, 52.0], [5.0, 53.0], [4.0, 53.0], [4.0, 52.0]]]}


class TestContractsAPI(WritableResourceAPITests):
    url = "/api/v1/contracts"
    update_data = {"name": "Fleet maintenance 2026", "remarks": "Priority customer"}
    write_role = "manager"
    default_fields = [
        "id", "reference", "name", "contract_type", "status", "counterparty",
        "start_date", "expiry_date", "created_at", "updated_at",
    ]  # fmt: skip
    sort_keys = [
        "name", "reference", "status", "contract_type", "start_date", "expiry_date", "notice_date",
        "created_at", "updated_at",
    ]  # fmt: skip
    deletable = True
    detail_actions = [
        ("submit", {}),
        ("approve", {}),
        ("reject", {"reason": "x"}),
        ("suspend", {"reason": "x"}),
        ("resume", {}),
        ("terminate", {"reason": "x"}),
        ("give_notice", {}),
        ("renew", {}),
    ]
    # 1 count, 2 the page's ids (issue 15), 3 the page joined with counterparty, renewed_from, renewed_by, submitted_by.
    list_queries = 3
    filter_cases = [
        ("reference", "A-1", ["a"]),
        ("status", "active", ["a"]),
        ("status", "draft,expired", ["b", "c"]),
        ("status", "!draft", ["a", "c"]),
        ("contract_type", "warranty", ["b"]),
        ("counterparty_id", lambda objs: str(objs["a"].counterparty_id), ["a"]),
        ("counterparty_role", "vendor", ["c"]),
        ("start_date", ">=2026-03-01", ["b", "c"]),
        ("expiry_date", "", ["b"]),
        ("expiry_date", "<2026-07-01", ["a"]),
        ("notice_date", ">=2026-06-01<2026-07-01", ["a"]),
        ("auto_renew", "true", ["a"]),
        ("auto_renew", "false", ["b", "c"]),
        ("currency", "JPY", ["c"]),
        ("service_territory_id", "north", ["a"]),
        ("dispatch_agreement_id", "!", ["a", "c"]),
        ("dispatch_agreement_id", "", ["b"]),
        ("source", "erp", ["a", "b"]),
        ("sourceID", "E-2", ["b"]),
        ("created_at", ">2000-01-01", ["a", "b", "c"]),
        ("updated_at", "<2000-01-01", []),
        ("ids", "a,c", ["a", "c"]),
        ("covers", "4.5,52.5", ["a"]),
        ("covers", "10,10", []),
        ("requires_counterparty_signature", "true", ["b"]),
        ("requires_counterparty_signature", "false", ["a", "c"]),
    ]
    malformed_filters = [
        ("start_date", ">2026-13-45"),
        ("status", "flying"),
        ("auto_renew", "perhaps"),
        ("counterparty_id", "abc"),
        ("covers", "4.5"),
        ("covers", "200,10"),
    ]

    @pytest.fixture(autouse=True)
    def _create_data(self, org):
        party = baker.make(Counterparty, organization=org)
        self.create_data = {
            "reference": "NEW-1",
            "name": "New service contract",
            "contract_type": "service_contract",
            "counterparty_id": party.pk,
            "counterparty_role": "customer",
            "start_date": "2027-01-01",
            "expiry_date": "2027-12-31",
            "notice_period_days": 60,
            "contract_value": "12000.5",
            "hours_budget": "250.00",
            "sourceID": "N-1",
        }

    def factory(self, org, **overrides):
        return make_contract(org, **overrides)

    def filter_objects(self, org):
        return {
            "a": make_contract(org, reference="A-1", status="active", start_date=dt.date(2026, 1, 1),
                               expiry_date=dt.date(2026, 6, 30), auto_renew=True, renewal_term_months=12,
                               service_territory_id="north", dispatch_agreement_id="D-1", source="erp",
                               source_id="E-1", coverage_areas=SQUARE, coverage_min_lon=4.0, coverage_min_lat=52.0,
                               coverage_max_lon=5.0, coverage_max_lat=53.0),
            "b": make_contract(org, reference="B-1", status="draft", contract_type="warranty",
                               start_date=dt.date(2026, 3, 1), expiry_date=None, source="erp", source_id="E-2",
                               requires_counterparty_signature=True),
            "c": make_contract(org, reference="C-1", status="expired", counterparty_role="vendor", currency="JPY",
                               start_date=dt.date(2026, 4, 1), expiry_date=dt.date(2026, 9, 30),
                               dispatch_agreement_id="D-3"),
        }  # fmt: skip

    def check_created(self, body, data):
        assert body["status"] == "draft"
        assert body["contract_value"] == "12000.50"  # EUR: written in cents
        assert body["notice_date"] == "2027-11-01"
        assert body["currency"] == "EUR" and body["time_zone"] == "Europe/Amsterdam"  # the organization's
        assert body["counterparty"]["id"] == data["counterparty_id"]


@pytest.mark.django_db
class TestContractWrites:
    url = "/api/v1/contracts"

    def body(self, counterparty, **overrides):
        return {
            "reference": "K-1",
            "name": "K",
            "contract_type": "project",
            "counterparty_id": counterparty.pk,
            "counterparty_role": "customer",
            **overrides,
        }

    @pytest.mark.parametrize(
        ("kind", "role", "ok"),
        [
            ("customer", "customer", True),
            ("customer", "vendor", False),
            ("vendor", "vendor", True),
            ("vendor", "customer", False),
            ("both", "customer", True),
            ("both", "vendor", True),
        ],
    )
    def test_the_counterpartys_kind_and_its_role_agree(self, api, org, kind, role, ok):
        party = baker.make(Counterparty, organization=org, kind=kind)
        client = api("manager")
        response = client.post(self.url, self.body(party, counterparty_role=role), format="json")
        if ok:
            assert response.status_code == 201, response.content
            return
        assert response.status_code == 422, response.content
        assert "counterparty_role" in response.json()["errors"]
        # ... and a PATCH cannot bring the two apart either.
        fitting = "vendor" if role == "customer" else "customer"
        contract = client.post(self.url, self.body(party, counterparty_role=fitting), format="json").json()
        response = client.patch(f"{self.url}/{contract['id']}", {"counterparty_role": role}, format="json")
        assert response.status_code == 422 and "counterparty_role" in response.json()["errors"]

    def test_required_fields_and_choices(self, api):
        response = api("manager").post(self.url, {"contract_type": "lease"}, format="json")
        assert response.status_code == 422
        errors = response.json()["errors"]
        assert {"reference", "name", "counterparty_id", "counterparty_role", "contract_type"} <= set(errors)

    def test_other_organizations_counterparty_is_422_naming_the_field(self, api, counterparty, other_org):
        theirs = baker.make(Counterparty, organization=other_org)
        response = api("manager").post(self.url, self.body(counterparty, counterparty_id=theirs.pk), format="json")
        assert response.status_code == 422
        assert response.json()["errors"] == {"counterparty_id": [f"Counterparty {theirs.pk} does not exist."]}

    def test_reference_unique_per_organization(self, api, counterparty, make_contract, other_org):
        existing = make_contract(reference="K-1")
        make_contract(organization=other_org, reference="K-2")
        client = api("manager")
        response = client.post(self.url, self.body(counterparty), format="json")
        assert response.status_code == 422
        assert str(existing.pk) in response.json()["errors"]["reference"][0]
        assert client.post(self.url, self.body(counterparty, reference="K-2"), format="json").status_code == 201

    def test_expiry_before_start_is_422(self, api, counterparty):
        body = self.body(counterparty, start_date="2027-01-01", expiry_date="2026-12-31")
        response = api("manager").post(self.url, body, format="json")
        assert response.status_code == 422 and "expiry_date" in response.json()["errors"]

    def test_invalid_time_zone_is_422(self, api, counterparty):
        response = api("manager").post(self.url, self.body(counterparty, time_zone="Mars/Olympus"), format="json")
        assert response.status_code == 422 and "time_zone" in response.json()["errors"]

    def test_negative_money_and_hours_are_422(self, api, counterparty):
        body = self.body(counterparty, contract_value="-1", hours_budget="-5", renewal_term_months=0)
        response = api("manager").post(self.url, body, format="json")
        assert set(response.json()["errors"]) == {"contract_value", "hours_budget", "renewal_term_months"}

    def test_status_and_notice_date_are_read_only(self, api, counterparty):
        body = self.body(counterparty, status="active", notice_date="2026-01-01")
        response = api("manager").post(self.url, body, format="json")
        assert response.status_code == 422
        assert set(response.json()["errors"]) == {"status", "notice_date"}

    @pytest.mark.parametrize("status", ["pending_approval", "scheduled", "active", "suspended"])
    def test_terms_are_409_after_draft_but_descriptive_fields_stay_editable(self, api, make_contract, status):
        contract = make_contract(status=status)
        client = api("manager")
        response = client.patch(f"{self.url}/{contract.pk}", {"currency": "USD", "hours_budget": "5"}, format="json")
        assert response.status_code == 409
        assert "draft" in response.json()["message"] and "currency" in response.json()["message"]
        response = client.patch(
            f"{self.url}/{contract.pk}",
            {"name": "Renamed", "description": "d", "remarks": "r", "service_territory_id": "t",
             "dispatch_agreement_id": "x", "coverage_areas": SQUARE},
            format="json",
        )  # fmt: skip
        assert response.status_code == 200, response.content
        assert response.json()["name"] == "Renamed"

    def test_unchanged_terms_in_a_patch_are_not_a_conflict(self, api, make_contract):
        contract = make_contract(status="active", currency="EUR")
        response = api("manager").patch(f"{self.url}/{contract.pk}", {"currency": "EUR", "name": "N"}, format="json")
        assert response.status_code == 200

    @pytest.mark.parametrize("status", ["expired", "terminated", "renewed"])
    def test_closed_contracts_are_not_editable(self, api, make_contract, status):
        contract = make_contract(status=status)
        response = api("manager").patch(f"{self.url}/{contract.pk}", {"name": "Too late"}, format="json")
        assert response.status_code == 409 and status in response.json()["message"]

    @pytest.mark.parametrize("status", [s for s in Contract.Status.values if s != "draft"])
    def test_only_a_draft_can_be_deleted(self, api, make_contract, status):
        contract = make_contract(status=status)
        response = api("manager").delete(f"{self.url}/{contract.pk}")
        assert response.status_code == 409
        assert Contract.objects.filter(pk=contract.pk).exists()

    def test_deleting_a_draft_records_an_event(self, api, make_contract):
        contract = make_contract()
        assert api("manager").delete(f"{self.url}/{contract.pk}").status_code == 204
        assert Event.objects.filter(type="contract.deleted", object_id=contract.pk).exists()

    def test_create_and_update_events_carry_the_changed_fields(self, api, counterparty):
        client = api("manager")
        created = client.post(self.url, self.body(counterparty), format="json").json()
        client.patch(f"{self.url}/{created['id']}", {"name": "K2", "notice_period_days": 10}, format="json")
        events = Event.objects.filter(object_type="contract", object_id=created["id"]).order_by("id")
        assert [e.type for e in events] == ["contract.created", "contract.updated"]
        assert events[1].payload["changes"] == {
            "name": {"before": "K", "after": "K2"},
            "notice_period_days": {"before": 0, "after": 10},
        }

    def test_counterparty_in_use_cannot_be_deleted(self, api, make_contract, counterparty):
        make_contract()
        response = api("manager").delete(f"/api/v1/counterparties/{counterparty.pk}")
        assert response.status_code == 409 and "contracts" in response.json()["message"]

    def test_expiring_lists_active_and_suspended_soonest_first(self, api, make_contract):
        today = dt.date.today()
        later = make_contract(status="active", expiry_date=today + dt.timedelta(days=40))
        sooner = make_contract(status="suspended", expiry_date=today + dt.timedelta(days=20))
        by_notice = make_contract(
            status="active", expiry_date=today + dt.timedelta(days=200), notice_period_days=190, auto_renew=True
        )
        make_contract(status="draft", expiry_date=today + dt.timedelta(days=10))
        make_contract(status="active", expiry_date=today + dt.timedelta(days=120))
        client = api("viewer")
        body = client.get(f"{self.url}/expiring").json()
        assert [c["id"] for c in body] == [by_notice.pk, sooner.pk, later.pk]
        assert body[1]["days_to_expiry"] in (19, 20, 21)  # the contract's local today may differ from UTC's
        assert body[0]["days_to_notice"] in (9, 10, 11)
        assert [c["id"] for c in client.get(f"{self.url}/expiring?within_days=30").json()] == [by_notice.pk, sooner.pk]
        assert client.get(f"{self.url}/expiring?within_days=abc").status_code == 400
        assert client.get(f"{self.url}/expiring?bogus=1").status_code == 400

    def test_active_sub_path(self, api, make_contract):
        active = make_contract(status="active")
        make_contract(status="draft")
        body = api("viewer").get(f"{self.url}/active").json()
        assert [c["id"] for c in body] == [active.pk]

    def test_active_and_expiring_return_the_default_fields_in_json_and_csv(self, api, make_contract):
        # Found by an outside sweep: the sub-paths' actions are not `list`, and they returned every field.
        from contracts.api import ExpiringContractSerializer

        make_contract(status="active", expiry_date=dt.date.today() + dt.timedelta(days=20))
        client = api("viewer")
        assert set(client.get(f"{self.url}/active").json()[0]) == set(TestContractsAPI.default_fields)
        expiring = client.get(f"{self.url}/expiring").json()
        assert set(expiring[0]) == set(ExpiringContractSerializer.Meta.default_fields)

        def csv_header(path):
            return b"".join(client.get(path).streaming_content).decode().splitlines()[0]

        header = csv_header(f"{self.url}?format=csv")
        assert "description" not in header
        assert csv_header(f"{self.url}/active?format=csv") == header
        head = client.head(f"{self.url}/active")
        assert head.status_code == 200 and head["X-Pagination-Total-Entries"] == "1"


class TestLineItemsAPI(WritableResourceAPITests):
    create_data = {"kind": "part", "description": "Pump seal", "sku": "PS-1", "quantity": "4", "unit_price": "12.5"}
    update_data = {"description": "Pump seal kit", "covered": False}
    write_role = "manager"
    default_fields = [
        "id", "kind", "description", "sku", "quantity", "unit", "unit_price", "covered", "notes",
        "created_at", "updated_at",
    ]  # fmt: skip
    sort_keys = ["description", "kind", "sku", "created_at"]
    default_sort = "id"
    deletable = True
    # 1 count, 2 the page's ids (issue 15), 3 the page (the route's contract: only for an empty list).
    list_queries = 3
    filter_cases = [
        ("kind", "service", ["labour"]),
        ("sku", "PS-1", ["part"]),
        ("covered", "false", ["part"]),
        ("created_at", ">2000-01-01", ["labour", "part"]),
        ("ids", "part", ["part"]),
    ]
    malformed_filters = [("covered", "maybe"), ("kind", "robot")]

    @pytest.fixture(autouse=True)
    def _contract(self, org):
        self.contract = make_contract(org)
        self.url = f"/api/v1/contracts/{self.contract.pk}/line_items"

    def factory(self, org, **overrides):
        contract = self.contract if org == self.contract.organization else make_contract(org)
        return baker.make(LineItem, organization=org, contract=contract, **{"description": "Item", **overrides})

    def detail(self, obj):
        return f"/api/v1/contracts/{obj.contract_id}/line_items/{obj.pk}"

    def filter_objects(self, org):
        return {
            "labour": self.factory(org, kind="service", description="Labour", sku="", covered=True),
            "part": self.factory(org, kind="part", description="Seal", sku="PS-1", covered=False),
        }


@pytest.mark.django_db
class TestLineItemRules:
    @pytest.mark.parametrize("status", [s for s in Contract.Status.values if s != "draft"])
    def test_line_items_are_editable_only_in_draft(self, api, make_contract, status):
        contract = make_contract(status=status)
        item = baker.make(LineItem, organization=contract.organization, contract=contract, description="x")
        client = api("manager")
        url = f"/api/v1/contracts/{contract.pk}/line_items"
        assert client.post(url, {"description": "y"}, format="json").status_code == 409
        assert client.patch(f"{url}/{item.pk}", {"description": "z"}, format="json").status_code == 409
        assert client.delete(f"{url}/{item.pk}").status_code == 409
        assert client.get(url).status_code == 200

    def test_other_organizations_contract_route_is_404(self, api, other_org):
        theirs = make_contract(other_org)
        client = api("manager")
        assert client.get(f"/api/v1/contracts/{theirs.pk}/line_items").status_code == 404
        assert (
            client.post(f"/api/v1/contracts/{theirs.pk}/line_items", {"description": "x"}, format="json").status_code
            == 404
        )

    def test_list_looks_the_contract_up_only_when_empty(self, api, make_contract, other_org, django_assert_num_queries):
        # A list filters on the route's contract id (issue 15); no rows: the contract is looked up,
        # so another organization's contract, with line items of its own, is still a 404.
        theirs = make_contract(other_org)
        baker.make(LineItem, organization=other_org, contract=theirs, description="theirs")
        empty = make_contract()
        client = api("viewer")
        assert client.get(f"/api/v1/contracts/{empty.pk}/line_items").status_code == 200  # caches the membership
        with django_assert_num_queries(3):  # 1 count, 2 the page's ids, 3 the contract
            assert client.get(f"/api/v1/contracts/{empty.pk}/line_items").json() == []
        assert client.get(f"/api/v1/contracts/{theirs.pk}/line_items").status_code == 404
        assert client.get(f"/api/v1/contracts/{theirs.pk}/line_items", {"format": "csv"}).status_code == 404
        assert client.get(f"/api/v1/contracts/{theirs.pk}/line_items", {"page": 2}).status_code == 404

    def test_item_of_another_contract_is_404_on_this_route(self, api, make_contract):
        one, two = make_contract(), make_contract()
        item = baker.make(LineItem, organization=one.organization, contract=one, description="x")
        assert api("viewer").get(f"/api/v1/contracts/{two.pk}/line_items/{item.pk}").status_code == 404
