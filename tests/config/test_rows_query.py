"""A page's rows query built and compiled once per (model, columns) and connection
(config.api.pagination.RowsQuery, issue 15): the same rows as `values()` gives (its converters:
instants, decimals, booleans and JSON on SQLite; JSON on PostgreSQL), compiled once, and a list
still shows only its organization's rows: the ids, selected on the scoped queryset, are the
query's only input."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.db.models import F, Value
from django.db.models.functions import Upper
from psycopg import DataError
from psycopg.pq import Format

from config.api import pagination, rows
from config.api.pagination import RowsQuery, page_rows, rows_query
from contracts.models import Counterparty
from signing.models import SignatureRequest
from slas.models import SlaRule
from tests.config.test_rows import list_routes


def _plans():
    """(model, columns) of every list's row plan: default fields and every field."""
    seen = set()
    for _, cls in list_routes():
        serializer = cls.serializer_class
        default = list(getattr(serializer.Meta, "default_fields", [])) or None
        for fields in (default, serializer.readable_field_names()):
            plan = rows.row_plan(serializer(fields=fields, context={}))
            if plan is not None and (serializer.Meta.model, tuple(plan.columns)) not in seen:
                seen.add((serializer.Meta.model, tuple(plan.columns)))
                yield serializer.Meta.model, plan.columns


def test_every_plans_rows_as_values_gives_them(demo):
    kinds, binary_kinds, compared = set(), set(), 0
    for model, columns in _plans():
        ids = list(model._base_manager.order_by("-pk").values_list("pk", flat=True)[:100])
        if not ids:
            continue
        expected = model._base_manager.filter(pk__in=ids).values(*columns)
        query = RowsQuery(model, tuple(columns), "default", len(ids))
        got = query.rows(ids)
        expected, got = (
            {row[columns[0]]: row for row in sorted(r, key=lambda row: row[columns[0]])} for r in (expected, got)
        )
        # repr: the same values of the same types (1 == 1.0 == Decimal(1) would hide a missed converter)
        assert repr(got) == repr(expected), (model, columns)
        row_kinds = {type(value) for row in got.values() for value in row.values()}
        kinds |= row_kinds
        if query.binary:
            binary_kinds |= row_kinds
        compared += 1
    assert compared >= 20
    assert {dt.datetime, dt.date, Decimal, bool, dict} <= kinds, kinds
    # On PostgreSQL most plans read binary results, each kind of value among them; none elsewhere.
    if connection.vendor == "postgresql":
        assert {dt.datetime, dt.date, bool, dict, int, str} <= binary_kinds, binary_kinds
    else:
        assert binary_kinds == set()


@pytest.mark.django_db
def test_binary_results_only_where_psycopg_reads_what_django_does():
    # An IP address is read as text by Django (inet): its query stays in text format.
    assert RowsQuery(SignatureRequest, ("id", "ip_address"), "default", 3).binary is False
    assert RowsQuery(SignatureRequest, ("id", "name", "created_at"), "default", 3).binary is (
        connection.vendor == "postgresql"
    )


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="binary results are PostgreSQL's")
def test_jsonb_read_in_binary_as_its_text():
    # Django reads jsonb as its text (JSONField decodes it): so does the binary cursor.
    assert RowsQuery(SlaRule, ("id", "priorities", "escalation"), "default", 1).binary
    connection.ensure_connection()
    raw = connection.connection
    with pagination._prepared_cursor(True)(raw) as cursor:
        cursor.execute("SELECT %s::jsonb", ['{"a": [1, "é"]}'])
        assert cursor.fetchone() == ('{"a": [1, "é"]}',)
        jsonb = raw.adapters.types["jsonb"].oid
        loader = cursor.adapters.get_loader(jsonb, Format.BINARY)(jsonb, cursor)
        with pytest.raises(DataError, match="unknown jsonb binary format"):
            loader.load(b'\x02{"a": 1}')


@pytest.fixture
def parties(org, other_org):
    ours = [Counterparty.objects.create(organization=org, name=f"Ours {i}", kind="customer") for i in range(7)]
    theirs = [Counterparty.objects.create(organization=other_org, name=f"Theirs {i}") for i in range(5)]
    return ours, theirs


@pytest.mark.django_db
class TestRowsQuery:
    def test_compiled_once_per_model_and_columns(self, org, parties, monkeypatch):
        built = []
        monkeypatch.setattr(pagination, "_ROWS_QUERIES", type(pagination._ROWS_QUERIES)())
        monkeypatch.setattr(pagination, "RowsQuery", lambda *args: built.append(args) or RowsQuery(*args))
        queryset = Counterparty.objects.for_organization(org).order_by("name", "id")
        for _ in range(3):
            assert [row["id"] for row in page_rows(queryset, 0, 3, ["id", "name"])] == [p.pk for p in parties[0][:3]]
        page_rows(queryset, 0, 3, ["id", "name", "kind"])
        # A page of another size: the same SQL on PostgreSQL (one array), one per size elsewhere.
        assert [row["name"] for row in page_rows(queryset, 5, 10, ["id", "name"])] == ["Ours 5", "Ours 6"]
        assert len(built) == (2 if connection.vendor == "postgresql" else 3)

    def test_the_cache_stays_bounded_whatever_fields_are_asked(self, org, parties, monkeypatch):
        monkeypatch.setattr(pagination, "_ROWS_QUERIES", type(pagination._ROWS_QUERIES)())
        monkeypatch.setattr(pagination, "MAX_ROWS_QUERIES", 3)
        queryset = Counterparty.objects.for_organization(org).order_by("id")
        choices = [["id", "name"], ["id", "kind"], ["id", "reference"], ["id", "name", "kind"], ["id", "source_id"]]
        for columns in choices:
            page = page_rows(queryset, 0, 2, columns)
            assert [row["id"] for row in page] == [p.pk for p in parties[0][:2]] and list(page[0]) == columns
            assert len(pagination._ROWS_QUERIES[connections["default"]]) <= 3

    def test_rows_in_the_pages_order(self, org, parties):
        queryset = Counterparty.objects.for_organization(org).order_by("-name", "id")
        page = page_rows(queryset, 1, 5, ["id", "name", "organization__name"])
        assert [row["name"] for row in page] == ["Ours 5", "Ours 4", "Ours 3", "Ours 2"]
        assert {row["organization__name"] for row in page} == {org.name}

    def test_another_organizations_rows_never_through_the_cached_query(self, org, other_org, parties):
        # The same compiled query serves both organizations; each page holds only its own rows.
        for organization, made in zip((org, other_org), parties, strict=True):
            queryset = Counterparty.objects.for_organization(organization).order_by("id")
            page = page_rows(queryset, 0, 100, ["id", "name", "organization"])
            assert [row["id"] for row in page] == [p.pk for p in made]
            assert {row["organization"] for row in page} == {organization.pk}
        columns = ("id", "name", "organization")
        assert rows_query(Counterparty, columns, "default", 5) is rows_query(Counterparty, list(columns), "default", 5)

    def test_lists_of_two_organizations_through_the_api(self, api, org, other_org, parties):
        for organization, made in zip((org, other_org), parties, strict=True):
            for _ in range(2):  # the second request with the query compiled
                response = api("viewer", organization).get("/api/v1/counterparties", {"per_page": 100})
                assert response.status_code == 200
                assert sorted(row["id"] for row in response.json()) == sorted(p.pk for p in made)

    def test_an_annotated_column_through_the_querysets_values(self, org, parties):
        # Not a column of the model: no compiled query, the queryset's own `values()` as before.
        queryset = Counterparty.objects.for_organization(org).annotate(shout=Upper(F("name")), one=Value(1))
        assert rows_query(Counterparty, ["id", "shout"], "default", 2) is None
        page = page_rows(queryset.order_by("id"), 0, 2, ["id", "shout", "one"])
        assert [(row["shout"], row["one"]) for row in page] == [("OURS 0", 1), ("OURS 1", 1)]


@pytest.mark.django_db
class TestPrepared:
    # PostgreSQL prepares the rows query (one statement for any page); SQLite has nothing to prepare.
    def prepared(self) -> list[str]:
        if connection.vendor != "postgresql":
            return []
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s", ["%= ANY($1)"])
            return [row[0] for row in cursor.fetchall()]

    def test_the_rows_query_prepared_once_and_reused(self, org, parties, django_assert_num_queries):
        queryset = Counterparty.objects.for_organization(org).order_by("id")
        for _ in range(3):
            with django_assert_num_queries(2) as queries:  # the ids, the rows
                page = page_rows(queryset, 0, 100, ["id", "name"])
            assert [row["id"] for row in page] == [p.pk for p in parties[0]]
            # The query log shows the rows query with its ids, prepared or not.
            assert str(parties[0][-1].pk) in queries.captured_queries[1]["sql"]
        prepared = [sql for sql in self.prepared() if '"contracts_counterparty"."name"' in sql]
        assert len(prepared) == (1 if connection.vendor == "postgresql" else 0)

    def test_not_prepared_when_turned_off(self, org, parties, settings):
        settings.PREPARED_ROWS_QUERIES = False
        queryset = Counterparty.objects.for_organization(org).order_by("id")
        assert [row["name"] for row in page_rows(queryset, 0, 2, ["id", "name"])] == ["Ours 0", "Ours 1"]
        assert self.prepared() == []
