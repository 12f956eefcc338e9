"""Issue 15's toolkit changes keep the API's behaviour: pages selected ids first give the same
rows in the same order (ties, deep pages, every sort), and a request without filter parameters
is answered without building the filter set. Runs on SQLite and PostgreSQL like the rest."""

from __future__ import annotations

import itertools

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from model_bakery import baker

from config.api.pagination import page_count, page_rows
from contracts.api import CounterpartyFilterSet
from contracts.models import Contract, Counterparty
from events.models import Event
from tests.contracts.factories import make_contract

NAMES = ["Beta", "alpha", "Alpha", "Gamma"]  # ties on purpose; case differs between databases' collations


@pytest.fixture
def parties(org, other_org):
    kinds = itertools.cycle(["customer", "vendor", "both"])
    made = [
        Counterparty.objects.create(
            organization=org, name=NAMES[i % len(NAMES)], kind=next(kinds), reference=f"R{i % 3}"
        )
        for i in range(23)
    ]
    for i in range(5):
        Counterparty.objects.create(organization=other_org, name=NAMES[i % len(NAMES)])
    return made


def api_ids(client, url, **params) -> list[int]:
    ids, page = [], 1
    while True:
        response = client.get(url, {**params, "page": page})
        assert response.status_code == 200, response.content
        batch = [row["id"] for row in response.json()]
        if not batch:
            assert int(response["X-Pagination-Total-Entries"]) == len(ids)
            return ids
        ids += batch
        page += 1


@pytest.mark.django_db
class TestPagesIdsFirst:
    @pytest.mark.parametrize(
        ("sort", "ordering"),
        [
            (None, ["name", "id"]),
            ("-name", ["-name", "-id"]),
            ("kind,-name", ["kind", "-name", "-id"]),
            ("reference,name,-id", ["reference", "name", "-id"]),
            ("-created_at", ["-created_at", "-id"]),
        ],
    )
    @pytest.mark.parametrize("per_page", [1, 4, 7, 100])
    def test_counterparty_pages_match_one_ordered_query(self, api, org, parties, sort, ordering, per_page):
        expected = list(Counterparty.objects.filter(organization=org).order_by(*ordering).values_list("id", flat=True))
        params = {"per_page": per_page, **({"sort": sort} if sort else {})}
        assert api_ids(api("viewer"), "/api/v1/counterparties", **params) == expected

    def test_a_deep_page_has_the_rows_and_contents_of_the_slice(self, api, org, parties):
        expected = list(Counterparty.objects.filter(organization=org).order_by("name", "id"))[20:22]
        response = api("viewer").get("/api/v1/counterparties", {"per_page": 2, "page": 11, "fields": "name,kind"})
        assert response.json() == [{"id": c.id, "name": c.name, "kind": c.kind} for c in expected]
        assert response["X-Pagination-Total-Entries"] == "23"

    def test_filtered_pages_match(self, api, org, parties):
        expected = list(
            Counterparty.objects.filter(organization=org, kind="vendor")
            .order_by("-name", "-id")
            .values_list("id", flat=True)
        )
        got = api_ids(api("viewer"), "/api/v1/counterparties", per_page=3, kind="vendor", sort="-name")
        assert got == expected and len(got) == 8

    def test_contract_pages_with_joins_and_prefetches_match(self, api, org):
        party = baker.make(Counterparty, organization=org, name="Party")
        for i in range(9):
            make_contract(org, counterparty=party, name=["Same", "Other", "Same"][i % 3])
        expected = list(Contract.objects.filter(organization=org).order_by("name", "id"))
        client = api("viewer")
        assert api_ids(client, "/api/v1/contracts", per_page=2) == [c.id for c in expected]
        page = client.get("/api/v1/contracts", {"per_page": 4, "page": 2}).json()
        assert [row["id"] for row in page] == [c.id for c in expected[4:8]]
        assert all(row["counterparty"]["id"] == party.id for row in page)

    def test_descending_id_default_matches(self, api, org):
        for i in range(11):
            Event.objects.create(
                organization=org,
                type="contract.updated",
                object_type="contract",
                object_id=i,
                occurred_at=timezone.now(),
            )
        expected = list(Event.objects.filter(organization=org).order_by("-id").values_list("id", flat=True))
        assert api_ids(api("viewer"), "/api/v1/events", per_page=4) == expected

    def test_page_rows_equals_slicing(self, org, parties):
        queryset = (
            Counterparty.objects.filter(organization=org).select_related("organization").order_by("kind", "name", "id")
        )
        for start, stop in [(0, 5), (5, 10), (20, 30), (30, 40)]:
            rows = page_rows(queryset, start, stop)
            assert [r.pk for r in rows] == [r.pk for r in queryset[start:stop]]
            assert all(r.organization.pk == org.pk for r in rows)
        assert page_count(queryset) == 23

    def test_page_rows_of_a_plain_sequence(self):
        assert page_rows([1, 2, 3, 4], 1, 3) == [2, 3]
        assert page_count([1, 2, 3]) == 3


@pytest.mark.django_db
class TestNoFilterForm:
    @pytest.fixture
    def no_filter_set(self, monkeypatch):
        def refuse(*args, **kwargs):
            raise AssertionError("the filter set was built")

        monkeypatch.setattr(CounterpartyFilterSet, "__init__", refuse)

    def test_a_list_without_filter_parameters_builds_no_filter_set(self, api, parties, no_filter_set):
        client = api("viewer")
        for params in ({}, {"per_page": 5, "page": 2}, {"sort": "-name", "fields": "name"}):
            response = client.get("/api/v1/counterparties", params)
            assert response.status_code == 200, (params, response.content)
        assert client.get("/api/v1/counterparties").json() != []

    def test_unknown_parameters_are_still_400_without_it(self, api, parties, no_filter_set):
        response = api("viewer").get("/api/v1/counterparties", {"no_such_filter": "x"})
        assert response.status_code == 400
        assert "no_such_filter" in response.json()["errors"]

    def test_a_filter_parameter_still_filters_and_validates(self, api, parties):
        client = api("viewer")
        rows = client.get("/api/v1/counterparties", {"kind": "vendor", "per_page": 100}).json()
        assert len(rows) == 8 and all(row["kind"] == "vendor" for row in rows)
        assert client.get("/api/v1/counterparties", {"kind": "nonsense"}).status_code == 400


@pytest.mark.django_db
class TestSlimReferences:
    """Lists load only the columns their references show (`list_references`): the same JSON as
    reading each resource alone (whole rows), and no query per row for a deferred column."""

    def make_rules(self, org, count: int):
        from decimal import Decimal

        from slas.models import Calendar, SlaRule

        number = Calendar.objects.filter(organization=org).count() + 1  # names are unique in an organization
        calendar = baker.make(Calendar, organization=org, name=f"Office hours {number}", time_zone="Europe/Amsterdam")
        named = make_contract(org, currency="JPY")
        unnamed = make_contract(org, name="", currency="KWD")  # reference_of falls back to str(): reference + name
        made = []
        for i in range(count):
            made.append(
                SlaRule.objects.create(
                    organization=org,
                    contract=[named, unnamed][i % 2],
                    calendar=calendar if i % 3 else None,
                    name="" if i == 1 else f"Rule {i}",  # an empty name shows metric and target
                    metric="response",
                    priorities=["high"],
                    pause_on_hold=False,
                    target_minutes=30 + i,
                    monthly_penalty_cap=Decimal("1234.5678"),  # in the contract's currency, rounded down
                    effective_from=timezone.now(),
                    previous_version=made[-1] if made else None,
                )
            )
        return made

    def test_a_list_shows_what_reading_each_rule_shows(self, api, org):
        self.make_rules(org, 5)
        client = api("viewer")
        fields = "id,contract,name,calendar,monthly_penalty_cap,previous_version,next_version,target_minutes"
        rows = client.get("/api/v1/sla_rules", {"fields": fields, "per_page": 100}).json()
        assert len(rows) == 5
        for row in rows:
            alone = client.get(f"/api/v1/sla_rules/{row['id']}", {"fields": fields}).json()
            assert row == alone
        # JPY, KWD: a cap reads as it is enforced, rounded down (it read "1235" and "1234.568")
        assert {row["monthly_penalty_cap"] for row in rows} == {"1234", "1234.567"}
        assert any(row["contract"]["name"].startswith("C-") for row in rows)  # the unnamed contract's str()

    def test_the_queries_do_not_grow_with_the_rows(self, api, org):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        client = api("viewer")
        params = {"fields": "id,contract,calendar,monthly_penalty_cap,previous_version", "per_page": 100}
        self.make_rules(org, 2)
        client.get("/api/v1/sla_rules", params)  # warm-up (membership cache)
        with CaptureQueriesContext(connection) as few:
            assert len(client.get("/api/v1/sla_rules", params).json()) == 2
        self.make_rules(org, 6)
        with CaptureQueriesContext(connection) as many:
            assert len(client.get("/api/v1/sla_rules", params).json()) == 8
        assert len(many) == len(few)


@pytest.mark.django_db
class TestTimeZoneOncePerResponse:
    """DRF's `DateTimeField` looks the current time zone up for every value; a resource serializer
    looks it up once (a list: once per response) and still renders in the zone current then."""

    @pytest.fixture
    def lookups(self, monkeypatch) -> list[int]:
        calls = []
        current = timezone.get_current_timezone

        def counted():
            calls.append(1)
            return current()

        monkeypatch.setattr(timezone, "get_current_timezone", counted)
        return calls

    def test_the_lookups_do_not_grow_with_the_rows(self, api, parties, lookups):
        client = api("viewer")
        client.get("/api/v1/counterparties", {"per_page": 1})  # warm-up (membership cache)
        counts = []
        for per_page in (2, 20):
            lookups.clear()
            rows = client.get("/api/v1/counterparties", {"per_page": per_page}).json()
            assert len(rows) == per_page and all(row["created_at"].endswith("Z") for row in rows)
            counts.append(len(lookups))
        assert counts[0] == counts[1]

    def test_instants_are_rendered_in_the_zone_current_for_the_response(self, api, parties):
        client = api("viewer")
        party = parties[0]
        for zone, offset in (("Asia/Kolkata", "+05:30"), ("UTC", "Z")):
            with timezone.override(zone):
                listed = client.get("/api/v1/counterparties", {"per_page": 100}).json()
                alone = client.get(f"/api/v1/counterparties/{party.pk}").json()
            row = next(row for row in listed if row["id"] == party.pk)
            assert row["created_at"] == alone["created_at"]
            assert row["created_at"].endswith(offset)
            assert parse_datetime(row["created_at"]) == party.created_at  # the same instant


# Collections whose default sort is served otherwise, and how (the at-risk report was, until its
# partial index of running clocks got the id: `clock_open_due_id`).
SORTED_OTHERWISE: dict[str, str] = {}


def test_every_collection_has_the_index_of_its_default_sort():
    """A page's ids come from an index walk (organization, sort column, id) only when such an
    index exists: without the id in it, PostgreSQL sorts every row of the organization for a deep
    page (the calendars' page 99 took 1.5x page 1 until their index got the id). A nested
    collection filters on its parent too, (organization, parent, sort column, id): with the parent
    alone first, the count and the ids read every row of the parent from the table to check its
    organization."""
    from tests.config.test_rows import list_routes

    missing = []
    for route, cls in list_routes():
        model = cls.queryset.model
        if any(name in route for name in SORTED_OTHERWISE):
            continue
        key = cls.default_sort.split(",")[0].lstrip("-")
        column = model._meta.get_field(cls.sort_fields.get(key, key)).name
        parent = [cls.parent_attribute] if "(?P<" in route else []
        wanted = ["organization", *parent, column] + ([] if column == "id" else ["id"])
        if not any(index.fields[: len(wanted)] == wanted for index in model._meta.indexes):
            missing.append(f"{model.__name__}: {wanted}")
    assert not missing, missing
