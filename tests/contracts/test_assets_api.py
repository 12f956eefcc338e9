"""`/api/v1/assets` (issue 13) and contracts' `covered_asset_ids` term."""

from __future__ import annotations

import pytest
from model_bakery import baker

from contracts.models import Asset, Counterparty
from events.models import Event
from tests.api_base import WritableResourceAPITests
from tests.contracts.factories import make_contract

URL = "/api/v1/assets"
PUMP_POINT = {"type": "Point", "coordinates": [4.9041, 52.3676]}


class TestAssetsAPI(WritableResourceAPITests):
    url = URL
    read_role = "operator"
    write_role = "manager"
    update_data = {"name": "Fire pump 2", "site": "Station 4", "location": PUMP_POINT}
    default_fields = [
        "id", "name", "kind", "serial_number", "counterparty", "site", "sourceID", "created_at", "updated_at",
    ]  # fmt: skip
    sort_keys = ["name", "kind", "serial_number", "site", "created_at", "updated_at"]
    deletable = True
    # 1 count, 2 the page's ids (issue 15), 3 the page joined with its counterparty.
    list_queries = 3
    filter_cases = [
        ("name", "Pump", ["pump"]),
        ("name", "!Pump", ["hydrant", "truck"]),
        ("kind", "pump,hydrant", ["pump", "hydrant"]),
        ("serial_number", "SN-1", ["pump"]),
        ("serial_number", "", ["truck"]),
        ("site", "Station 1", ["pump", "hydrant"]),
        ("source", "cmms", ["pump"]),
        ("sourceID", "A-1", ["pump"]),
        ("counterparty_id", lambda objs: str(objs["truck"].counterparty_id), ["truck"]),
        ("created_at", ">2000-01-01", ["pump", "hydrant", "truck"]),
        ("updated_at", "<2000-01-01", []),
        ("ids", "pump,truck", ["pump", "truck"]),
    ]
    malformed_filters = [("created_at", ">yesterday"), ("counterparty_id", "x")]

    @pytest.fixture(autouse=True)
    def _counterparty(self, org):
        self.counterparty = baker.make(Counterparty, organization=org, name="Harbour Fire")
        self.create_data = {
            "name": "Fire pump",
            "kind": "pump",
            "serial_number": "FP-100",
            "counterparty_id": self.counterparty.pk,
            "site": "Station 1",
            "location": PUMP_POINT,
            "remarks": "Diesel",
            "source": "cmms",
            "sourceID": "P-1",
        }

    def factory(self, org, **overrides):
        counterparty = overrides.pop("counterparty", None) or baker.make(Counterparty, organization=org)
        return baker.make(Asset, organization=org, counterparty=counterparty, **{"name": "Asset", **overrides})

    def filter_objects(self, org):
        party = baker.make(Counterparty, organization=org)
        return {
            "pump": self.factory(org, counterparty=party, name="Pump", kind="pump", serial_number="SN-1",
                                 site="Station 1", source="cmms", source_id="A-1"),
            "hydrant": self.factory(org, counterparty=party, name="Hydrant", kind="hydrant", serial_number="SN-2",
                                    site="Station 1"),
            "truck": self.factory(org, name="Truck", kind="vehicle", serial_number="", site="Depot"),
        }  # fmt: skip

    def check_created(self, body, data):
        assert body["counterparty"] == {"id": self.counterparty.pk, "name": "Harbour Fire"}
        assert body["location"] == PUMP_POINT and body["covering_contracts"] == []
        assert Event.objects.filter(type="asset.created", object_id=body["id"]).count() == 1


@pytest.mark.django_db
class TestAssetRules:
    def test_location_is_validated_like_coverage(self, api, counterparty):
        client = api("manager")
        for location, message in [
            ({"type": "Point", "coordinates": [200, 10]}, "Longitude 200"),
            ({"type": "Point", "coordinates": [10, -91]}, "Latitude -91"),
            ({"type": "Polygon", "coordinates": []}, "GeoJSON Point"),
            ({"type": "Point", "coordinates": ["4", "52"]}, "numbers"),
            ({"type": "Point", "coordinates": [4, 52], "crs": {"type": "name", "properties": {"name": "EPSG:3857"}}},
             "WGS 84"),
            ("POINT(4 52)", "GeoJSON Point"),
        ]:  # fmt: skip
            body = {"name": "X", "counterparty_id": counterparty.pk, "location": location}
            response = client.post(URL, body, format="json")
            assert response.status_code == 422, location
            assert set(response.json()["errors"]) == {"location"}
            assert message in response.json()["errors"]["location"][0], response.json()

    def test_another_organizations_counterparty_is_a_422_naming_the_field(self, api, other_org):
        theirs = baker.make(Counterparty, organization=other_org)
        response = api("manager").post(URL, {"name": "X", "counterparty_id": theirs.pk}, format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"counterparty_id"}

    def test_a_covered_asset_keeps_its_counterparty_and_cannot_be_deleted(self, api, org, counterparty):
        asset = baker.make(Asset, organization=org, counterparty=counterparty)
        contract = make_contract(org, counterparty=counterparty)
        contract.covered_assets.add(asset)
        other = baker.make(Counterparty, organization=org)
        client = api("manager")
        response = client.patch(f"{URL}/{asset.pk}", {"counterparty_id": other.pk}, format="json")
        assert response.status_code == 422 and contract.reference in response.json()["errors"]["counterparty_id"][0]
        assert client.get(f"{URL}/{asset.pk}").json()["covering_contracts"] == [contract.pk]
        response = client.delete(f"{URL}/{asset.pk}")
        assert response.status_code == 409 and Asset.objects.filter(pk=asset.pk).exists()

    def test_a_counterparty_with_assets_cannot_be_deleted(self, api, org, counterparty):
        baker.make(Asset, organization=org, counterparty=counterparty)
        response = api("manager").delete(f"/api/v1/counterparties/{counterparty.pk}")
        assert response.status_code == 409 and "assets" in response.json()["message"]


@pytest.mark.django_db
class TestCoveredAssets:
    url = "/api/v1/contracts"

    def body(self, counterparty, **extra):
        return {
            "reference": "K-1", "name": "Pumps", "contract_type": "maintenance_agreement",
            "counterparty_id": counterparty.pk, "counterparty_role": "customer", **extra,
        }  # fmt: skip

    def test_covered_asset_ids_in_references_out_and_in_the_event(self, api, org, counterparty):
        pumps = [baker.make(Asset, organization=org, counterparty=counterparty, name=f"P{n}") for n in (1, 2)]
        client = api("manager")
        response = client.post(
            self.url, self.body(counterparty, covered_asset_ids=[p.pk for p in pumps]), format="json"
        )
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["covered_assets"] == [{"id": p.pk, "name": p.name} for p in pumps]
        created = Event.objects.get(type="contract.created", object_id=body["id"])
        assert created.payload["covered_assets"] == [p.pk for p in pumps]
        response = client.patch(f"{self.url}/{body['id']}", {"covered_asset_ids": [pumps[1].pk]}, format="json")
        assert response.status_code == 200 and response.json()["covered_assets"] == [{"id": pumps[1].pk, "name": "P2"}]
        updated = Event.objects.get(type="contract.updated", object_id=body["id"])
        assert updated.payload == {
            "changes": {"covered_assets": {"before": [p.pk for p in pumps], "after": [pumps[1].pk]}}
        }

    def test_assets_of_another_counterparty_or_organization_are_a_422(self, api, org, other_org, counterparty):
        stranger = baker.make(Asset, organization=org, counterparty=baker.make(Counterparty, organization=org))
        theirs = baker.make(
            Asset, organization=other_org, counterparty=baker.make(Counterparty, organization=other_org)
        )
        client = api("manager")
        # Another counterparty's asset: the domain rule; another organization's: no such asset (at its index).
        for asset, field in ((stranger, "covered_asset_ids"), (theirs, "covered_asset_ids[0]")):
            response = client.post(self.url, self.body(counterparty, covered_asset_ids=[asset.pk]), format="json")
            assert response.status_code == 422, response.content
            assert set(response.json()["errors"]) == {field}
        response = client.post(self.url, self.body(counterparty, covered_asset_ids="1"), format="json")
        assert response.status_code == 422

    def test_changing_the_counterparty_of_a_contract_with_covered_assets_is_a_422(self, api, org, counterparty):
        asset = baker.make(Asset, organization=org, counterparty=counterparty)
        contract = make_contract(org, counterparty=counterparty)
        contract.covered_assets.add(asset)
        other = baker.make(Counterparty, organization=org)
        response = api("manager").patch(f"{self.url}/{contract.pk}", {"counterparty_id": other.pk}, format="json")
        assert response.status_code == 422 and "covered_asset_ids" in response.json()["errors"]

    def test_covered_assets_are_a_term(self, api, org, counterparty):
        asset = baker.make(Asset, organization=org, counterparty=counterparty)
        contract = make_contract(org, counterparty=counterparty, status="active")
        response = api("manager").patch(f"{self.url}/{contract.pk}", {"covered_asset_ids": [asset.pk]}, format="json")
        assert response.status_code == 409 and "covered_assets" in response.json()["errors"]
        assert not contract.covered_assets.exists()

    def test_a_renewal_covers_the_same_assets(self, api, org, counterparty):
        asset = baker.make(Asset, organization=org, counterparty=counterparty)
        contract = make_contract(org, counterparty=counterparty, status="active")
        contract.covered_assets.add(asset)
        response = api("manager").post(f"{self.url}/{contract.pk}/renew", {}, format="json")
        assert response.status_code == 201 and response.json()["covered_assets"] == [
            {"id": asset.pk, "name": asset.name}
        ]
