"""CSV for every collection (issue 11): `Accept: text/csv` or `?format=csv` on every list route.

Every resource registered on a router is walked (so a collection added later is covered without
a new test): the CSV has a header row, the JSON's default fields with references split into
`<name>_id` and `<name>_name`, the same rows in the same order as the JSON, and no page limit.
"""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import call_command
from django.urls import resolve
from django.utils import timezone

from config.api.csv import csv_parts
from config.api.serializers import ReferenceField
from config.api.viewsets import ResourceViewSet
from contracts.models import Contract, Counterparty
from tenancy.models import Membership
from tests.conftest import client_for
from tests.routes import routes

pytestmark = pytest.mark.django_db


def _table(response) -> list[dict]:
    assert response.status_code == 200, getattr(response, "content", b"")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.DictReader(io.StringIO(body.decode())))


def _collections(contract_pk: int) -> list[str]:
    """Every list route of a `ResourceViewSet` in the URL configuration (any app's router)."""
    urls = []
    for regex, pattern in routes():
        cls, actions = getattr(pattern.callback, "cls", None), getattr(pattern.callback, "actions", {})
        if cls is None or not issubclass(cls, ResourceViewSet) or actions.get("get") != "list":
            continue
        path = regex.replace("^", "").replace("/?$", "").replace("$", "")
        path = path.replace("(?P<contract_pk>[0-9]+)", str(contract_pk))
        if "(?P<" not in path:  # a route under another parent than a contract: its own tests cover it
            urls.append("/" + path)
    return urls


@pytest.fixture
def demo_admin(db):
    call_command("seed_demo", quiet=True, stdout=io.StringIO())
    return client_for(Membership.objects.get(user__username="demo-admin", organization__slug="demo"))


def _expected_columns(url: str, items: list[dict]) -> list[str]:
    """The JSON's fields, each reference (a ReferenceField, or any `{"id", "name"}` value) as two,
    each object of a fixed shape (`Meta.csv_parts`) as one per part."""
    serializer_class = resolve(url.split("?")[0]).func.cls.serializer_class
    fields, parts = serializer_class().fields, csv_parts(serializer_class)
    columns = []
    for key in items[0]:
        is_reference = isinstance(fields.get(key), ReferenceField) or any(
            isinstance(item[key], dict) and {"id", "name"} <= set(item[key]) for item in items
        )
        if key in parts:
            columns += [f"{key}_{part}" for part in parts[key]]
        else:
            columns += [f"{key}_id", f"{key}_name"] if is_reference else [key]
    return columns


def _check_values(row: dict, item: dict, parts: dict) -> None:
    for key, value in item.items():
        if key in parts:  # an object of a fixed shape (Meta.csv_parts)
            for part in parts[key]:
                inner = (value or {}).get(part)
                assert row[f"{key}_{part}"] == ("" if inner is None else str(inner)), (key, part, row)
        elif isinstance(value, dict) and {"id", "name"} <= set(value):
            assert (row[f"{key}_id"], row[f"{key}_name"]) == (str(value["id"]), str(value["name"])), key
        elif isinstance(value, (str, int)) and not isinstance(value, bool) and key in row:
            assert row[key] == str(value) or row[key].replace("Z", "+00:00") == str(value), (key, row[key], value)


def test_every_collection_answers_csv_with_the_same_rows_as_json(demo_admin, monkeypatch):
    # The three reads of each collection describe one instant: figures computed from "now" (the
    # at-risk report's minutes remaining) must not move between them on a slow machine.
    instant = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: instant)
    contract = Contract.objects.filter(organization__slug="demo", line_items__isnull=False).first()
    contract = contract or Contract.objects.filter(organization__slug="demo").first()
    checked = []
    for url in _collections(contract.pk):
        page = demo_admin.get(url, {"per_page": "100"})
        assert page.status_code == 200, (url, page.content)
        table = _table(demo_admin.get(url, {"format": "csv"}))
        by_accept = _table(demo_admin.get(url, HTTP_ACCEPT="text/csv"))
        assert table == by_accept, url
        items = page.json()
        assert [row["id"] for row in table[: len(items)]] == [str(item["id"]) for item in items], url
        assert len(table) == int(page["X-Pagination-Total-Entries"]), url
        if items:
            assert list(table[0]) == _expected_columns(url, items), url
            for row, item in zip(table, items, strict=False):
                _check_values(row, item, csv_parts(resolve(url).func.cls.serializer_class))
        checked.append(url)
    assert {"/api/v1/contracts", "/api/v1/work_orders", "/api/v1/breaches", "/api/v1/reports/at_risk"} <= set(checked)
    assert f"/api/v1/contracts/{contract.pk}/line_items" in checked and "/api/v1/contracts/active" not in checked


def test_csv_keeps_fields_filters_and_sort_and_has_no_page_limit(api, org):
    for index in range(130):
        Counterparty.objects.create(organization=org, name=f"Party {index:03d}", kind="customer")
    client = api("viewer")
    table = _table(client.get("/api/v1/counterparties", {"format": "csv", "sort": "-name", "fields": "name"}))
    assert len(table) == 130 and list(table[0]) == ["id", "name"]
    assert table[0]["name"] == "Party 129" and table[-1]["name"] == "Party 000"
    filtered = _table(client.get("/api/v1/counterparties", {"format": "csv", "name": "Party 007,Party 008"}))
    assert [row["name"] for row in filtered] == ["Party 007", "Party 008"]


def test_instants_are_iso_8601_utc_and_references_split(api, org):
    from tests.contracts.factories import make_contract

    contract = make_contract(org)
    table = _table(api("viewer").get("/api/v1/contracts", {"format": "csv"}))
    assert table[0]["counterparty_id"] == str(contract.counterparty_id)
    assert table[0]["counterparty_name"] == contract.counterparty.name
    assert table[0]["created_at"].endswith("Z") and "T" in table[0]["created_at"]


def test_errors_stay_json_whatever_was_asked_for(api, anon, org):
    client = api("viewer")
    for response in (
        client.get("/api/v1/contracts", {"format": "csv", "sort": "nope"}),
        client.get("/api/v1/contracts", {"status": "sleeping"}, HTTP_ACCEPT="text/csv"),
        client.get("/api/v1/contracts/999999", HTTP_ACCEPT="text/csv"),
        anon.get("/api/v1/contracts", {"format": "csv"}),
    ):
        assert response.status_code in (400, 401, 404)
        assert response["Content-Type"] == "application/json" and response.json()["message"]
    unknown = client.get("/api/v1/contracts", {"format": "xml"})
    assert unknown.status_code == 400 and "format" in unknown.json()["errors"]
    unacceptable = client.get("/api/v1/contracts", HTTP_ACCEPT="application/xml")
    assert unacceptable.status_code == 406 and unacceptable["Content-Type"] == "application/json"


def test_a_single_resource_as_csv(api, org):
    from tests.contracts.factories import make_contract

    contract = make_contract(org)
    response = api("viewer").get(f"/api/v1/contracts/{contract.pk}", {"format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 1 and rows[0]["id"] == str(contract.pk)
    assert rows[0]["renewed_from_id"] == "" and "renewed_from_name" in rows[0]


def test_the_lots_and_balance_of_a_contract_as_csv(api, org):
    import datetime as dt

    from tests.ledger.helpers import active_contract, credit

    contract = active_contract(org)
    lot = credit(contract, 12, at=dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC))
    client = api("viewer")
    lots = _table(client.get(f"/api/v1/contracts/{contract.pk}/lots", {"format": "csv"}))
    assert [row["id"] for row in lots] == [str(lot.pk)] and lots[0]["remaining"] == "12.00"
    balance = client.get(f"/api/v1/contracts/{contract.pk}/balance", HTTP_ACCEPT="text/csv")
    assert balance.status_code == 200 and b"remaining_hours" in balance.content
    # named after what they are, not export.csv (found by an outside sweep)
    assert balance["Content-Disposition"] == 'attachment; filename="balance.csv"'
    lots_csv = client.get(f"/api/v1/contracts/{contract.pk}/lots", {"format": "csv"})
    assert lots_csv["Content-Disposition"] == 'attachment; filename="lots.csv"'
    bad = client.get(f"/api/v1/contracts/{contract.pk}/lots", {"format": "csv", "as_of": "yesterday"})
    assert bad.status_code == 400 and bad["Content-Type"] == "application/json"


@pytest.mark.parametrize("blank", ["", "  "])
def test_a_blank_format_is_400_on_every_kind_of_operation(demo_admin, blank):
    """Found by the 150-example fuzz: `?format=` (blank) was quietly ignored, though the schema
    lists the formats; now a 400 naming them, on collections, single resources, collection
    sub-paths, actions, creations and the admin-only members alike."""
    client = demo_admin
    contract = client.get("/api/v1/contracts", {"per_page": 1}).json()[0]["id"]
    member = client.get("/api/v1/members", {"per_page": 1}).json()[0]["id"]
    for method, url, body in (
        ("get", "/api/v1/contracts", None),
        ("get", f"/api/v1/contracts/{contract}", None),
        ("get", "/api/v1/contracts/active", None),
        ("get", f"/api/v1/contracts/{contract}/balance", None),
        ("get", f"/api/v1/members/{member}", None),
        ("get", "/api/v1/reports/at_risk", None),
        ("post", "/api/v1/work_orders/match", {}),
        ("post", "/api/v1/counterparties", {"name": "Blank format"}),
    ):
        response = getattr(client, method)(f"{url}?format={blank}", body, format="json")
        assert response.status_code == 400, (url, response.status_code, response.content[:200])
        assert response["Content-Type"] == "application/json" and "format" in response.json()["errors"], url


def test_a_delete_asked_for_as_csv_is_a_plain_204(demo_admin):
    """Found by the second 150-example fuzz: `DELETE ...?format=csv` rendered the empty body of a
    204 as a CSV row and answered 500."""
    created = demo_admin.post("/api/v1/counterparties", {"name": "Deleted as CSV"}, format="json").json()
    response = demo_admin.delete(f"/api/v1/counterparties/{created['id']}?format=csv")
    assert response.status_code == 204 and response.content == b""
    assert demo_admin.get(f"/api/v1/counterparties/{created['id']}").status_code == 404


@pytest.mark.parametrize("params", [{"page": "-1"}, {"per_page": "687969358"}, {"page": "0"}, {"per_page": "x"}])
def test_a_csv_export_refuses_bad_paging_like_json(demo_admin, params):
    """Found by the second 150-example fuzz: a CSV export streams every row and ignored `page` and
    `per_page`, so values out of their bounds were accepted there and refused in JSON."""
    for url in ("/api/v1/contracts", "/api/v1/contracts/active"):
        response = demo_admin.get(url, {"format": "csv", **params})
        assert response.status_code == 400, (url, params, response.content[:200])
        assert response["Content-Type"] == "application/json" and set(params) <= set(response.json()["errors"])
    assert demo_admin.get("/api/v1/contracts", {"format": "csv", "page": "2", "per_page": "5"}).status_code == 200


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("-\u0661\u0662", "'-\u0661\u0662"),  # not a number to a spreadsheet: Arabic-Indic digits
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\tTab", "'\tTab"),
        ("Plain & simple", "Plain & simple"),
        # A `;` locale's Excel splits there: each part is a cell's start (found by an attacker sweep).
        ('x;=HYPERLINK("http://evil.example","x")', 'x;\'=HYPERLINK("http://evil.example","x")'),
        ("a;b;@SUM(A1)", "a;b;'@SUM(A1)"),
        ("=1;=2", "'=1;'=2"),
        ("cost;-12.50;fine", "cost;-12.50;fine"),
    ],
)
def test_text_that_would_start_a_formula_is_neutralised(api, org, name, shown):
    # CSV injection: a spreadsheet runs a cell starting with = + - @ as a formula.
    Counterparty.objects.create(organization=org, name=name, kind="customer")
    table = _table(api("viewer").get("/api/v1/counterparties", {"format": "csv", "fields": "name"}))
    assert table[0]["name"] == shown


def test_numbers_stay_numbers_in_csv():
    from decimal import Decimal

    from config.api.csv import cell

    assert [cell(v) for v in ("-12.50", "+3", "-7", Decimal("-1.25"), -4)] == ["-12.50", "+3", "-7", "-1.25", "-4"]


def test_nested_values_of_a_fixed_shape_are_columns_not_json(api, org, demo_admin):
    """A CSV wrote a delivery's event and a contract's penalties as JSON in one cell, and the
    at-risk report's next escalation too, with its instant as `2026-03-02 09:00:00+00:00`. Like
    references, objects of a fixed shape are columns (`Meta.csv_parts`), money per currency is
    `amount CUR; ...` as the compliance report writes it; lists and documents stay JSON."""
    import datetime as dt

    from events.models import Event
    from notifications.models import WebhookDelivery, WebhookEndpoint
    from tests.ledger.helpers import active_contract, final_breach, penalty_rule

    contract = active_contract(org)
    penalty_rule(contract)
    final_breach(contract)
    client = api("manager")
    balance = _table(client.get(f"/api/v1/contracts/{contract.pk}/balance", {"format": "csv"}))
    assert "penalties" not in balance[0]
    assert (balance[0]["penalties_accrued"], balance[0]["penalties_waived"]) == ("150.00 EUR", "0.00 EUR")
    assert client.get(f"/api/v1/contracts/{contract.pk}/balance").json()["penalties"] == {
        "EUR": {"accrued": "150.00", "waived": "0.00"}
    }

    endpoint = WebhookEndpoint.objects.create(organization=org, url="https://hooks.example.com/x", event_types=["*"])
    event = Event.objects.filter(organization=org).latest("id")
    delivery = WebhookDelivery.objects.create(organization=org, endpoint=endpoint, event=event)
    url = f"/api/v1/webhooks/{endpoint.pk}/deliveries"
    for table in (_table(client.get(url, {"format": "csv"})), _table(client.get(f"{url}/{delivery.pk}?format=csv"))):
        assert "event" not in table[0] and (table[0]["event_id"], table[0]["event_type"]) == (str(event.pk), event.type)
        assert list(table[0]).index("event_id") == list(table[0]).index("webhook_id") + 1

    risky = _table(demo_admin.get("/api/v1/reports/at_risk", {"format": "csv"}))
    listed = demo_admin.get("/api/v1/reports/at_risk").json()
    row, item = next((r, i) for r, i in zip(risky, listed, strict=True) if i["next_escalation"])
    assert "next_escalation" not in row
    assert row["next_escalation_name"] == item["next_escalation"]["name"]
    assert row["next_escalation_at_percent"] == str(item["next_escalation"]["at_percent"])
    assert row["next_escalation_at"] == item["next_escalation"]["at"] and row["next_escalation_at"].endswith("Z")
    dt.datetime.fromisoformat(row["next_escalation_at"])


def test_instants_inside_a_json_cell_are_written_as_the_json_answer_writes_them():
    import datetime as dt

    from config.api.csv import cell

    at = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert cell([{"due_at": at}]) == '[{"due_at":"2026-03-02T09:00:00Z"}]'
