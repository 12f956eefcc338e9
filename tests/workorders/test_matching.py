"""Which contract covers a job pushed without one (issue 13): explicit rules first, then
entitlement scoring (asset, then location, then the rest; ties: earliest expiry, then lowest id).
Everything through the API, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from model_bakery import baker

from contracts.models import Asset, Counterparty
from tests.contracts.factories import make_contract
from tests.contracts.test_amendments import amend, approve_fully, approved_contract
from tests.slas.factories import make_rule
from workorders.models import ContractRule, WorkOrder

URL = "/api/v1/work_orders"
REPORTED = "2026-06-15T08:00:00Z"
HARBOUR = {"type": "Point", "coordinates": [4.90, 52.37]}
ELSEWHERE = {"type": "Point", "coordinates": [6.50, 53.20]}
AROUND_HARBOUR = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {},
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[4.8, 52.3], [5.0, 52.3], [5.0, 52.4], [4.8, 52.4], [4.8, 52.3]]],
            },
        }
    ],
}


@pytest.fixture
def party(org):
    return baker.make(Counterparty, organization=org, name="Harbour Fire")


@pytest.fixture
def pump(org, party):
    return baker.make(Asset, organization=org, counterparty=party, name="Fire pump", kind="diesel pump")


@pytest.fixture
def contracts(org, party, pump):
    """Three active contracts of the party: one plain (expires first), one covering the harbour,
    one covering the pump; plus contracts that must never be candidates."""
    plain = make_contract(
        org, counterparty=party, status="active", reference="PLAIN", expiry_date=dt.date(2026, 10, 31)
    )
    area = make_contract(org, counterparty=party, status="active", reference="AREA", coverage_areas=AROUND_HARBOUR)
    area.coverage_min_lon, area.coverage_min_lat, area.coverage_max_lon, area.coverage_max_lat = 4.8, 52.3, 5.0, 52.4
    area.save()
    warranty = make_contract(org, counterparty=party, status="active", reference="WARRANTY")
    warranty.covered_assets.add(pump)
    # Never candidates: suspended, not started yet at the report, expired before it, a draft, another party's.
    make_contract(org, counterparty=party, status="suspended", reference="SUSPENDED")
    make_contract(org, counterparty=party, status="active", reference="LATER", start_date=dt.date(2026, 7, 1))
    make_contract(org, counterparty=party, status="active", reference="EARLIER", expiry_date=dt.date(2026, 6, 14))
    make_contract(org, counterparty=party, status="draft", reference="DRAFT")
    make_contract(org, status="active", reference="OTHER-PARTY")
    return {"plain": plain, "area": area, "warranty": warranty}


def post_job(client, **data):
    response = client.post(
        URL, {"summary": "Pump leaks", "priority": "high", "reported_at": REPORTED, **data}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


@pytest.mark.django_db
class TestEntitlement:
    def test_the_asset_wins_then_the_location_then_the_earliest_expiry(self, api, party, pump, contracts):
        client = api("operator")
        job = post_job(client, asset_id=pump.pk, location=HARBOUR)
        assert job["contract"]["id"] == contracts["warranty"].pk
        assert job["counterparty"] == {"id": party.pk, "name": "Harbour Fire"}  # implied by the asset
        match = job["contract_match"]
        assert match["method"] == "entitlement" and match["score"] == 2 and match["rule"] is None
        assert "WARRANTY" in match["explanation"] and "Fire pump" in match["explanation"]

        job = post_job(client, counterparty_id=party.pk, location=HARBOUR)
        assert job["contract"]["id"] == contracts["area"].pk and job["contract_match"]["score"] == 1

        job = post_job(client, counterparty_id=party.pk, location=ELSEWHERE)
        assert job["contract"]["id"] == contracts["plain"].pk
        assert job["contract_match"]["score"] == 0 and "earliest expiry" in job["contract_match"]["explanation"]

    def test_ties_on_expiry_go_to_the_lowest_id(self, api, org, party):
        first = make_contract(org, counterparty=party, status="active")
        make_contract(org, counterparty=party, status="active")
        job = post_job(api("operator"), counterparty_id=party.pk)
        assert job["contract"]["id"] == first.pk

    def test_in_force_is_judged_on_the_report_date_in_the_contracts_time_zone(self, api, org, party):
        # Expires 2026-06-14 in Amsterdam: a job reported 2026-06-14T21:30Z (23:30 local) is in,
        # one reported at 22:30Z (00:30 local on the 15th) is out.
        contract = make_contract(org, counterparty=party, status="active", expiry_date=dt.date(2026, 6, 14))
        client = api("operator")
        assert post_job(client, counterparty_id=party.pk, reported_at="2026-06-14T21:30:00Z")["contract"]["id"] == (
            contract.pk
        )
        late = post_job(client, counterparty_id=party.pk, reported_at="2026-06-14T22:30:00Z")
        assert late["contract"] is None and late["contract_match"]["method"] == "none"

    def test_nothing_to_score_is_method_none_and_no_clocks(self, api, contracts):
        job = post_job(api("operator"))
        assert job["contract"] is None and job["sla_clocks"] == []
        assert job["contract_match"] == {
            "method": "none",
            "rule": None,
            "score": None,
            "explanation": "No rule applies and the job names no counterparty or asset: no contract to score.",
        }

    def test_the_matched_contract_gives_the_job_its_clocks(self, api, party, pump, contracts):
        make_rule(contracts["warranty"], metric="response", target_minutes=60, priorities=["high"])
        job = post_job(api("operator"), asset_id=pump.pk)
        assert [c["metric"] for c in job["sla_clocks"]] == ["response"]
        assert job["sla_clocks"][0]["started_at"] == REPORTED

    def test_an_asset_of_another_counterparty_is_a_422(self, api, org, pump):
        other = baker.make(Counterparty, organization=org)
        response = api("operator").post(
            URL, {"reported_at": REPORTED, "counterparty_id": other.pk, "asset_id": pump.pk}, format="json"
        )
        assert response.status_code == 422 and set(response.json()["errors"]) == {"asset_id"}

    def test_another_organizations_asset_or_counterparty_is_a_422(self, api, other_org):
        theirs = baker.make(
            Asset, organization=other_org, counterparty=baker.make(Counterparty, organization=other_org)
        )
        client = api("operator")
        response = client.post(URL, {"reported_at": REPORTED, "asset_id": theirs.pk}, format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"asset_id"}
        response = client.post(URL, {"reported_at": REPORTED, "counterparty_id": theirs.counterparty_id}, format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"counterparty_id"}


@pytest.mark.django_db
class TestRules:
    def test_the_enabled_rule_with_the_lowest_sequence_whose_criteria_hold_wins(self, org, api, party, pump, contracts):
        ContractRule.objects.create(organization=org, name="Off", sequence=1, enabled=False, outcome="not_covered")
        ContractRule.objects.create(
            organization=org,
            name="Tests are free",
            sequence=10,
            criteria=[{"field": "summary", "operator": "contains", "value": "TEST"}],
            outcome="not_covered",
        )
        harbour = ContractRule.objects.create(
            organization=org,
            name="Harbour pumps",
            sequence=20,
            criteria=[
                {"field": "asset_kind", "operator": "contains", "value": "pump"},
                {"field": "location", "operator": "within", "value": contracts["area"].pk},
                {"field": "priority", "operator": "in", "value": ["critical", "high"]},
            ],
            contract=contracts["plain"],
        )
        client = api("operator")
        job = post_job(client, asset_id=pump.pk, location=HARBOUR)
        assert job["contract"]["id"] == contracts["plain"].pk
        assert job["contract_match"]["method"] == "rule"
        assert job["contract_match"]["rule"] == {"id": harbour.pk, "name": "Harbour pumps"}
        assert "Harbour pumps" in job["contract_match"]["explanation"]

        job = post_job(client, asset_id=pump.pk, location=HARBOUR, summary="Yearly test run")
        assert job["contract"] is None and job["contract_match"]["method"] == "rule"
        assert "not covered" in job["contract_match"]["explanation"]

        # A criterion that fails (low priority) lets entitlement scoring decide.
        job = post_job(client, asset_id=pump.pk, location=HARBOUR, priority="low")
        assert job["contract"]["id"] == contracts["warranty"].pk and job["contract_match"]["method"] == "entitlement"

    def test_a_rule_whose_contract_is_not_in_force_is_passed_over(self, org, api, party, pump, contracts):
        suspended = make_contract(org, counterparty=party, status="suspended")
        ContractRule.objects.create(organization=org, name="Old", sequence=1, contract=suspended)
        job = post_job(api("operator"), asset_id=pump.pk)
        assert job["contract"]["id"] == contracts["warranty"].pk and job["contract_match"]["method"] == "entitlement"

    def test_the_job_says_which_rule_was_passed_over_and_why(self, org, api, party, pump, contracts):
        # Eleventh round: a rule whose criteria held but whose contract was terminated (or not yet
        # started on the report's local date) was passed over silently: the job said only
        # "Entitlement: WARRANTY scored 2", and the dispatcher could not tell why the harbour rule
        # did not apply; `/match` said "not in force" without the reason.
        ended = make_contract(org, counterparty=party, status="terminated", reference="ENDED")
        later = make_contract(
            org, counterparty=party, status="active", reference="JULY", start_date=dt.date(2026, 7, 1)
        )
        for sequence, contract in ((1, ended), (2, later)):
            ContractRule.objects.create(
                organization=org,
                name=f"Pumps {sequence}",
                sequence=sequence,
                criteria=[{"field": "asset_kind", "operator": "contains", "value": "pump"}],
                contract=contract,
            )
        job = post_job(api("operator"), asset_id=pump.pk)
        match = job["contract_match"]
        assert job["contract"]["id"] == contracts["warranty"].pk and match["method"] == "entitlement"
        assert match["explanation"] == (
            "Rule 'Pumps 1' (sequence 1): criteria hold (asset_kind contains 'pump') but ENDED is not in force at "
            "2026-06-15T08:00:00+00:00 (ENDED is terminated); passed over. "
            "Rule 'Pumps 2' (sequence 2): criteria hold (asset_kind contains 'pump') but JULY is not in force at "
            "2026-06-15T08:00:00+00:00 (JULY starts on 2026-07-01 (the report is of 2026-06-15, Europe/Amsterdam)); "
            "passed over. Entitlement: WARRANTY scored 2 of 3 candidate(s) (covers asset 'Fire pump' (+2))."
        ), match["explanation"]
        # At 22:30 UTC on 30 June it is 1 July in Amsterdam: JULY is in force and its rule decides.
        job = post_job(api("operator"), asset_id=pump.pk, reported_at="2026-06-30T22:30:00Z")
        assert job["contract"]["id"] == later.pk and job["contract_match"]["method"] == "rule"
        assert job["contract_match"]["explanation"].startswith("Rule 'Pumps 1' (sequence 1): criteria hold")
        assert job["contract_match"]["explanation"].endswith(
            "Rule 'Pumps 2' (sequence 2): asset_kind contains 'pump': JULY."
        )

    def test_a_rule_follows_its_contract_into_its_renewals(self, org, api, party, pump, contracts):
        # Found in review: once its contract expired, a rule was passed over for good, though the
        # renewal carries the contract's SLA rules and visit plans on.
        vendor = baker.make(Counterparty, organization=org, name="Pump vendor")  # not the job's party: no scoring
        first = make_contract(
            org, counterparty=vendor, status="active", reference="V-1", expiry_date=dt.date(2026, 3, 31)
        )
        second = make_contract(
            org,
            counterparty=vendor,
            status="expired",
            reference="V-2",
            renewed_from=first,
            start_date=dt.date(2026, 4, 1),
            expiry_date=dt.date(2026, 5, 31),
        )
        third = make_contract(
            org,
            counterparty=vendor,
            status="active",
            reference="V-3",
            renewed_from=second,
            start_date=dt.date(2026, 6, 1),
        )
        rule = ContractRule.objects.create(
            organization=org,
            name="Pumps to the vendor",
            sequence=1,
            criteria=[{"field": "asset_kind", "operator": "contains", "value": "pump"}],
            contract=first,
        )
        client = api("operator")
        job = post_job(client, asset_id=pump.pk)  # reported 2026-06-15: V-1 and V-2 have ended
        assert job["contract"]["id"] == third.pk and job["contract_match"]["method"] == "rule"
        assert job["contract_match"]["rule"] == {"id": rule.pk, "name": "Pumps to the vendor"}
        assert "V-3 (the renewal of V-1" in job["contract_match"]["explanation"]
        job = post_job(client, asset_id=pump.pk, reported_at="2026-03-31T08:00:00Z")
        assert job["contract"]["id"] == first.pk  # in V-1's own term
        # A renewal not in force (here: not yet active) is passed over like the rule's own contract.
        third.status = "draft"
        third.save(update_fields=["status"])
        job = post_job(client, asset_id=pump.pk)
        assert job["contract"]["id"] == contracts["warranty"].pk and job["contract_match"]["method"] == "entitlement"

    def test_a_manual_contract_always_wins(self, org, api, party, pump, contracts):
        ContractRule.objects.create(organization=org, name="All", sequence=1, outcome="not_covered")
        job = post_job(api("operator"), asset_id=pump.pk, contract_id=contracts["area"].pk)
        assert job["contract"]["id"] == contracts["area"].pk
        assert job["contract_match"]["method"] == "manual" and "contract_id" in job["contract_match"]["explanation"]


@pytest.mark.django_db
class TestRematching:
    def test_a_change_of_what_matching_looks_at_rematches_an_automatic_job(self, api, org, party, pump, contracts):
        make_rule(contracts["warranty"], metric="response", target_minutes=60, priorities=["high"])
        client = api("operator")
        job = post_job(client, counterparty_id=party.pk, location=HARBOUR)
        assert job["contract"]["id"] == contracts["area"].pk and job["sla_clocks"] == []
        job = client.patch(f"{URL}/{job['id']}", {"asset_id": pump.pk}, format="json").json()
        assert job["contract"]["id"] == contracts["warranty"].pk and job["contract_match"]["score"] == 2
        assert [c["metric"] for c in job["sla_clocks"]] == ["response"]
        job = client.patch(f"{URL}/{job['id']}", {"asset_id": None, "location": ELSEWHERE}, format="json").json()
        assert job["contract"]["id"] == contracts["plain"].pk
        assert [c["state"] for c in job["sla_clocks"]] == ["cancelled"]  # the job left the warranty's rule

    def test_a_manual_contract_is_kept_until_contract_id_is_null(self, api, party, pump, contracts):
        client = api("operator")
        job = post_job(client, counterparty_id=party.pk)
        assert job["contract"]["id"] == contracts["plain"].pk
        job = client.patch(f"{URL}/{job['id']}", {"contract_id": contracts["area"].pk}, format="json").json()
        assert job["contract_match"]["method"] == "manual"
        job = client.patch(f"{URL}/{job['id']}", {"asset_id": pump.pk}, format="json").json()
        assert job["contract"]["id"] == contracts["area"].pk  # manual: not re-matched
        job = client.patch(f"{URL}/{job['id']}", {"contract_id": None}, format="json").json()
        assert job["contract"]["id"] == contracts["warranty"].pk and job["contract_match"]["method"] == "entitlement"

    def test_the_match_is_in_the_jobs_events(self, api, party, contracts):
        from events.models import Event

        job = post_job(api("operator"), counterparty_id=party.pk)
        created = Event.objects.get(type="work_order.created", object_id=job["id"])
        assert created.payload["contract_id"] == contracts["plain"].pk
        assert created.payload["contract_match"]["method"] == "entitlement"


@pytest.mark.django_db
class TestMatchEndpoint:
    url = f"{URL}/match"

    def test_every_candidate_with_its_score_and_explanation(self, api, org, party, pump, contracts):
        ContractRule.objects.create(
            organization=org,
            name="Only criticals",
            sequence=5,
            criteria=[{"field": "priority", "operator": "equals", "value": "critical"}],
            contract=contracts["plain"],
        )
        body = {"asset_id": pump.pk, "location": HARBOUR, "priority": "high", "reported_at": REPORTED}
        response = api("operator").post(self.url, body, format="json")
        assert response.status_code == 200, response.content
        result = response.json()
        assert result["contract"]["id"] == contracts["warranty"].pk and result["contract"]["reference"] == "WARRANTY"
        assert result["contract_match"]["method"] == "entitlement"
        assert [r["holds"] for r in result["rules"]] == [False]
        assert "priority equals 'critical' does not hold" in result["rules"][0]["explanation"]
        ranked = [(c["contract"]["reference"], c["score"], c["selected"]) for c in result["candidates"]]
        assert ranked == [("WARRANTY", 2, True), ("AREA", 1, False), ("PLAIN", 0, False)]
        assert all(c["explanation"] for c in result["candidates"])
        assert not WorkOrder.objects.exists()  # nothing is written

    def test_input_is_checked_like_a_job(self, api, org, other_org, pump):
        client = api("operator")
        theirs = baker.make(Counterparty, organization=other_org)
        response = client.post(self.url, {"counterparty_id": theirs.pk}, format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"counterparty_id"}
        response = client.post(self.url, {"location": {"type": "Point", "coordinates": [500, 1]}}, format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"location"}
        other = baker.make(Counterparty, organization=org)
        response = client.post(self.url, {"counterparty_id": other.pk, "asset_id": pump.pk}, format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"asset_id"}
        response = client.post(self.url, {"priority": "high", "colour": "red"}, format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"colour"}

    def test_roles_and_tokens(self, api, anon):
        assert anon.post(self.url, {}, format="json").status_code == 401
        assert api("viewer").post(self.url, {}, format="json").status_code == 403
        assert api("operator").post(self.url, {}, format="json").status_code == 200

    def test_queries_do_not_grow_with_the_contracts(self, api, org, party, pump, contracts):
        client = api("operator")
        body = {"asset_id": pump.pk, "location": HARBOUR, "reported_at": REPORTED}
        ContractRule.objects.create(
            organization=org,
            name="Within",
            sequence=1,
            criteria=[{"field": "location", "operator": "within", "value": contracts["area"].pk}],
            outcome="not_covered",
            enabled=True,
        )
        assert client.post(self.url, body, format="json").status_code == 200  # caches the token's membership
        counts = []
        for _ in range(2):
            with CaptureQueriesContext(connection) as queries:
                assert client.post(self.url, body, format="json").status_code == 200
            counts.append(len(queries))
            for _ in range(10):
                extra = make_contract(org, counterparty=party, status="active", coverage_areas=AROUND_HARBOUR)
                extra.coverage_min_lon, extra.coverage_min_lat, extra.coverage_max_lon, extra.coverage_max_lat = (
                    4.8, 52.3, 5.0, 52.4,
                )  # fmt: skip
                extra.save()
        # (The membership is cached.) 1 the asset, 2 the enabled rules with their contracts, 3 the coverage
        # the rule's `within` names, 4 the party's contracts in force (asset EXISTS; the coverage, by a
        # CASE, of those whose bounding box holds the point), 5 their term versions around the report
        # date (the asset's coverage on that day: it is a term, eleventh round).
        assert counts == [5, 5]


def move_asset(api, org, party, pump, day: dt.date, **fields):
    """Contracts A (`fields`) and B (open-ended): A covers `pump`, then B from `day` (two approved
    amendments of `covered_asset_ids`). Returns (A, B)."""
    managers = api("manager"), api("manager"), api("manager")
    first = approved_contract(org, reference="A", counterparty=party, **fields)
    first.covered_assets.add(pump)
    first.term_versions.update(terms={**first.term_versions.get().terms, "covered_assets": [pump.pk]})
    second = approved_contract(org, reference="B", counterparty=party, expiry_date=None)
    for contract, covered in ((first, []), (second, [pump.pk])):
        moved = amend(managers[0], contract, effective_date=day.isoformat(), changes={"covered_asset_ids": covered})
        assert moved.status_code == 201, moved.content
        approve_fully(managers, contract, moved.json()["id"])
    return first, second


@pytest.mark.django_db
class TestAnAssetMovedBetweenContracts:
    """Eleventh round: an asset covered by A, then (by amendments from a date) by B. The asset's
    coverage is a term: a job is matched on the terms in force on its report date (contract time
    zone), not on today's row, so a job pushed late, reported before the move, still goes to A."""

    def move(self, api, org, party, pump, day: dt.date):
        return move_asset(api, org, party, pump, day, expiry_date=None)

    def test_a_job_reported_before_the_move_goes_to_the_contract_that_covered_it_then(self, api, org, party, pump):
        today = timezone.localdate(timezone.now(), timezone=zoneinfo.ZoneInfo("Europe/Amsterdam"))
        first, second = self.move(api, org, party, pump, today)
        assert list(first.covered_assets.all()) == [] and list(second.covered_assets.all()) == [pump]  # applied
        client = api("operator")
        # 10:00 local the day before the move (Europe/Amsterdam, the contracts' zone): A's asset then.
        before = dt.datetime.combine(today - dt.timedelta(days=1), dt.time(10), tzinfo=first.start_of_day(today).tzinfo)
        job = post_job(client, asset_id=pump.pk, reported_at=before.isoformat())
        assert job["contract"]["id"] == first.pk, job["contract_match"]
        assert job["contract_match"]["score"] == 2 and "Fire pump" in job["contract_match"]["explanation"]
        # Midnight local on the move's day (22:00 or 23:00 UTC the day before): B's.
        job = post_job(client, asset_id=pump.pk, reported_at=first.start_of_day(today).isoformat())
        assert job["contract"]["id"] == second.pk, job["contract_match"]
        ranked = client.post(
            f"{URL}/match", {"asset_id": pump.pk, "reported_at": before.isoformat()}, format="json"
        ).json()["candidates"]
        assert [(c["contract"]["reference"], c["score"]) for c in ranked] == [("A", 2), ("B", 0)]
