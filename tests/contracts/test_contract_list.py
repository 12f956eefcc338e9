"""The contract list loads only what its fields read (issue 15): the same JSON as a retrieve,
with a constant number of queries, and the serializer's fields built once per process."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from model_bakery import baker
from rest_framework import serializers

from contracts.api import ContractSerializer, ExpiringContractSerializer
from contracts.models import Contract, Counterparty
from slas.models import Calendar

URL = "/api/v1/contracts"
# Every readable field that is not computed by a method (those load whole rows).
COMPUTED = {"approvals", "waiting_for", "covered_assets"}
PLAIN_FIELDS = [name for name in ContractSerializer.readable_field_names() if name not in COMPUTED]


@pytest.fixture
def tricky(org, make_contract, make_member):
    """Contracts whose JSON reads more than their own column: references with and without a
    name or a sourceID, a renewal pair (both directions), a submitter, a billing calendar, values
    quantized in JPY and KWD, no hours at all, expired, another time zone."""
    named = baker.make(Counterparty, organization=org, name="Northwind", source_id="ERP-7")
    unnamed = baker.make(Counterparty, organization=org, name="")
    calendar = baker.make(Calendar, organization=org, name="Office hours", time_zone="Europe/Amsterdam")
    submitter = make_member("manager", org).user
    expired = make_contract(
        name="",  # its references fall back to str(): reference + name
        status="expired",
        counterparty=unnamed,
        currency="KWD",
        contract_value=Decimal("12.3456"),
        time_zone="Asia/Tokyo",
        start_date=dt.date(2024, 1, 1),
        expiry_date=dt.date(2025, 1, 1),
    )
    renewal = make_contract(
        name="Renewal",
        renewed_from=expired,
        counterparty=named,
        currency="JPY",
        contract_value=Decimal("1234.5678"),
        hours_budget=Decimal("40.00"),
        remaining_hours=Decimal("12.50"),
        low_balance_threshold_hours=Decimal("5.00"),
        billing_calendar=calendar,
        submitted_by=submitter,
        submitted_at=dt.datetime(2026, 1, 2, 9, 30, tzinfo=dt.UTC),
        source="erp",
        source_id="C-9",
    )
    no_hours = make_contract(name="No hours", status="active", counterparty=named, contract_value=None)
    return [expired, renewal, no_hours]


def _rows(response) -> dict[int, dict]:
    assert response.status_code == 200, response.content
    return {row["id"]: row for row in response.json()}


class TestListEqualsRetrieve:
    @pytest.mark.parametrize("fields", [None, ",".join(PLAIN_FIELDS)], ids=["default fields", "all plain fields"])
    def test_each_row_is_the_retrieved_contract(self, api, tricky, fields):
        client = api("viewer")
        rows = _rows(client.get(URL, {"per_page": 100, **({"fields": fields} if fields else {})}))
        assert set(rows) == {c.pk for c in tricky}
        for contract in tricky:
            whole = client.get(f"{URL}/{contract.pk}").json()  # whole rows, every reference joined
            assert rows[contract.pk] == {key: whole[key] for key in rows[contract.pk]}, contract.pk
        if fields:  # the tricky parts are there to compare
            expired, renewal, _ = (rows[c.pk] for c in tricky)
            assert expired["renewed_by"]["id"] == renewal["id"] and expired["counterparty"]["name"] == ""
            assert renewal["renewed_from"]["name"] == str(tricky[0])  # an empty name: str()
            assert renewal["counterparty"]["sourceID"] == "ERP-7" and renewal["billing_calendar"]["name"]
            assert renewal["submitted_by"]["name"] and renewal["contract_value"] != "1234.5678"

    def test_as_of_lists_each_contract_as_retrieved_on_that_date(self, api, tricky):
        client = api("viewer")
        params = {"as_of": "2026-03-01", "fields": ",".join(PLAIN_FIELDS), "per_page": 100}
        rows = _rows(client.get(URL, params))
        for contract in tricky:
            alone = client.get(f"{URL}/{contract.pk}", {"as_of": "2026-03-01"}).json()
            assert rows[contract.pk] == {key: alone[key] for key in rows[contract.pk]}


class TestListLoadsOnlyWhatItShows:
    def _page_query(self, client, **params) -> tuple[int, str]:
        client.get(URL, {"per_page": 1})  # caches the membership behind the token
        with CaptureQueriesContext(connection) as queries:
            assert client.get(URL, {"per_page": 100, **params}).status_code == 200
        return len(queries), queries.captured_queries[2]["sql"]  # count, ids, the page

    def test_the_default_page_reads_its_columns_and_the_counterparty_only(self, api, tricky):
        count, sql = self._page_query(api("viewer"))
        assert count == 3  # count, ids, the page joined with its counterparty
        assert '"contracts_contract"."name"' in sql and '"contracts_counterparty"."name"' in sql
        for unread in ('"contracts_contract"."description"', '"contracts_contract"."coverage_areas"'):
            assert unread not in sql
        assert sql.count(" JOIN ") == 1  # no calendar, user, or renewal in either direction

    @pytest.mark.parametrize("fields", [None, ",".join(PLAIN_FIELDS)], ids=["default fields", "all plain fields"])
    def test_queries_do_not_grow_with_rows(self, api, tricky, make_contract, fields):
        client = api("viewer")
        params = {"fields": fields} if fields else {}
        before, _ = self._page_query(client, **params)
        for i in range(8):
            make_contract(name=f"More {i}", currency=["JPY", "KWD", "EUR"][i % 3], contract_value=Decimal("7.5"))
        after, _ = self._page_query(client, **params)
        assert before == after == 3

    def test_a_computed_field_still_loads_whole_rows(self, api, tricky):
        client = api("viewer")
        count, sql = self._page_query(client, fields="id,waiting_for")
        assert '"contracts_contract"."description"' in sql
        assert count == 4  # and the approvals' prefetch


@pytest.mark.django_db
class TestPrebuiltFields:
    @pytest.mark.parametrize("serializer_class", [ContractSerializer, ExpiringContractSerializer])
    def test_copies_are_the_fields_a_fresh_build_gives(self, serializer_class):
        copied = serializer_class().fields
        built = serializers.ModelSerializer.get_fields(serializer_class())
        assert list(copied) == list(built)
        assert [repr(field) for field in copied.values()] == [repr(field) for field in built.values()]

    def test_a_selection_copies_its_fields_and_for_input_the_write_only_ones(self):
        assert set(ContractSerializer(fields=["name", "counterparty"]).fields) == {"id", "name", "counterparty"}
        fields = ContractSerializer(data={}, fields=["name", "counterparty"]).fields
        write_only = {name for name, field in ContractSerializer().fields.items() if field.write_only}
        assert write_only and set(fields) == {"id", "name", "counterparty", *write_only}

    def test_each_serializer_has_fields_of_its_own(self):
        first, second = ContractSerializer(), ContractSerializer()
        first.fields["name"].required = not second.fields["name"].required
        assert first.fields["name"] is not second.fields["name"]
        assert ContractSerializer().fields["name"].required == second.fields["name"].required

    def test_the_list_still_refuses_an_unknown_field(self, api, tricky):
        response = api("viewer").get(URL, {"fields": "name,no_such_field"})
        assert response.status_code == 400


def test_contract_model_has_the_columns_the_references_name():
    # Each extra column CONTRACT_REFERENCES names exists on its reference's model.
    from contracts.api import CONTRACT_REFERENCES

    for name, extra in CONTRACT_REFERENCES.items():
        related = Contract._meta.get_field(name).related_model
        assert {f.name for f in related._meta.concrete_fields} >= set(extra), name
