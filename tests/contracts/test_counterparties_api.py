import pytest
from model_bakery import baker

from contracts.models import Counterparty
from events.models import Event
from tests.api_base import WritableResourceAPITests


class TestCounterpartiesAPI(WritableResourceAPITests):
    url = "/api/v1/counterparties"
    create_data = {"name": "Northwind", "kind": "vendor", "email": "ops@northwind.example", "sourceID": "N-1"}
    update_data = {"name": "Northwind Fleet", "remarks": "Renamed"}
    write_role = "manager"
    default_fields = ["id", "name", "kind", "reference", "sourceID", "created_at", "updated_at"]
    sort_keys = ["name", "kind", "reference", "created_at", "updated_at"]
    deletable = True
    # 1 count, 2 the page's ids (issue 15), 3 the page.
    list_queries = 3
    filter_cases = [
        ("name", "Alpha", ["alpha"]),
        ("name", "Alpha,Beta", ["alpha", "beta"]),
        ("name", "!Alpha", ["beta", "gamma"]),
        ("kind", "vendor", ["beta"]),
        ("kind", "customer,both", ["alpha", "gamma"]),
        ("kind", "!customer", ["beta", "gamma"]),
        ("reference", "", ["gamma"]),
        ("reference", "!", ["alpha", "beta"]),
        ("reference", ">=R-2", ["beta"]),
        ("email", "a@example.com", ["alpha"]),
        ("source", "crm", ["alpha", "beta"]),
        ("sourceID", "A-1", ["alpha"]),
        ("sourceID", "", ["gamma"]),
        ("created_at", ">2000-01-01", ["alpha", "beta", "gamma"]),
        ("created_at", "<2000-01-01", []),
        ("created_at", ">=2000-01-01<2999-01-01", ["alpha", "beta", "gamma"]),
        ("updated_at", "<=2999-01-01T00:00:00Z", ["alpha", "beta", "gamma"]),
        ("ids", "alpha,gamma", ["alpha", "gamma"]),
    ]
    malformed_filters = [("created_at", ">not-a-date"), ("kind", "robot"), ("updated_at", ">1<2<3")]

    def factory(self, org, **overrides):
        return baker.make(Counterparty, organization=org, **overrides)

    def filter_objects(self, org):
        return {
            "alpha": self.factory(org, name="Alpha", kind="customer", reference="R-1", email="a@example.com",
                                  source="crm", source_id="A-1"),
            "beta": self.factory(org, name="Beta", kind="vendor", reference="R-2", source="crm", source_id="B-1"),
            "gamma": self.factory(org, name="Gamma", kind="both", reference=""),
        }  # fmt: skip

    def check_created(self, body, data):
        assert body["sourceID"] == "N-1" and body["kind"] == "vendor"


@pytest.mark.django_db
class TestCounterpartyRules:
    url = "/api/v1/counterparties"

    def test_name_is_required_and_bounded(self, api):
        client = api("manager")
        response = client.post(self.url, {"kind": "vendor"}, format="json")
        assert response.status_code == 422 and "name" in response.json()["errors"]
        response = client.post(self.url, {"name": "x" * 161}, format="json")
        assert response.status_code == 422 and "160" in response.json()["errors"]["name"][0]

    def test_wrong_types_are_422(self, api):
        client = api("manager")
        response = client.post(self.url, {"name": "X", "kind": 5, "email": "not-an-email"}, format="json")
        assert response.status_code == 422
        assert set(response.json()["errors"]) == {"kind", "email"}

    def test_source_id_unique_per_source_is_409_naming_the_existing_id(self, api, org, other_org):
        existing = baker.make(Counterparty, organization=org, source="crm", source_id="X-1")
        baker.make(Counterparty, organization=other_org, source="crm", source_id="X-2")
        client = api("manager")
        response = client.post(self.url, {"name": "Dup", "source": "crm", "sourceID": "X-1"}, format="json")
        assert response.status_code == 409
        assert str(existing.pk) in response.json()["message"]
        # Another source, or another organization's record, is no clash.
        assert (
            client.post(self.url, {"name": "B", "source": "erp", "sourceID": "X-1"}, format="json").status_code == 201
        )
        assert (
            client.post(self.url, {"name": "C", "source": "crm", "sourceID": "X-2"}, format="json").status_code == 201
        )
        other = baker.make(Counterparty, organization=org, source="crm", source_id="X-3")
        response = client.patch(f"{self.url}/{other.pk}", {"sourceID": "X-1"}, format="json")
        assert response.status_code == 409

    def test_sourceid_is_bounded(self, api):
        response = api("manager").post(
            self.url, {"name": "X", "source": "s" * 31, "sourceID": "i" * 129}, format="json"
        )
        assert response.status_code == 422
        assert set(response.json()["errors"]) == {"source", "sourceID"}

    def test_writes_record_events_with_actor_and_changes(self, api, org):
        client = api("manager")
        created = client.post(self.url, {"name": "Evented", "kind": "customer"}, format="json").json()
        client.patch(f"{self.url}/{created['id']}", {"name": "Evented 2", "kind": "customer"}, format="json")
        assert client.delete(f"{self.url}/{created['id']}").status_code == 204
        events = list(Event.objects.filter(object_type="counterparty", object_id=created["id"]).order_by("id"))
        assert [e.type for e in events] == ["counterparty.created", "counterparty.updated", "counterparty.deleted"]
        assert events[1].payload == {"changes": {"name": {"before": "Evented", "after": "Evented 2"}}}
        assert all(e.actor == client.membership.user and e.organization == org for e in events)
        assert events[0].payload["name"] == "Evented"

    def test_patch_without_changes_records_no_event(self, api, org):
        obj = baker.make(Counterparty, organization=org, name="Same")
        api("manager").patch(f"{self.url}/{obj.pk}", {"name": "Same"}, format="json")
        assert not Event.objects.filter(object_id=obj.pk, type="counterparty.updated").exists()

    def test_reference_to_other_org_is_not_possible_via_delete(self, api, org):
        obj = baker.make(Counterparty, organization=org)
        assert api("operator").delete(f"{self.url}/{obj.pk}").status_code == 403
        assert Counterparty.objects.filter(pk=obj.pk).exists()

    def test_put_is_405_json(self, api, org):
        obj = baker.make(Counterparty, organization=org)
        response = api("manager").put(f"{self.url}/{obj.pk}", {"name": "x"}, format="json")
        assert response.status_code == 405 and "PUT" in response.json()["message"]

    def test_trailing_slash_is_optional(self, api, org):
        assert api("viewer").get(f"{self.url}/").status_code == 200
