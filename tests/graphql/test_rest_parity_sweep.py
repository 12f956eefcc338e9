"""Both faces on the same data (tests/graphql/world.py), resource by resource: every root list and
every get shows, field by field, what REST's list and detail show (decimals, instants, enums,
nulls, references as ids), as a viewer and as an admin; and every sort key in both directions, and
the default, orders as REST's `?sort=`. What GraphQL shows otherwise is named below with its reason."""

from __future__ import annotations

import pytest
from graphql import get_named_type, is_leaf_type

from config.graphql.base import camel
from config.graphql.schema import schema
from tests.graphql.world import build_world

pytestmark = pytest.mark.django_db

# GraphQL root list: (its get, REST's collection); {c} is the world's contract, {w} its webhook.
RESOURCES = {
    "counterparties": ("counterparty", "/api/v1/counterparties"),
    "contracts": ("contract", "/api/v1/contracts"),
    "lineItems": ("lineItem", "/api/v1/contracts/{c}/line_items"),
    "assets": ("asset", "/api/v1/assets"),
    "amendments": ("amendment", "/api/v1/contracts/{c}/amendments"),
    "termVersions": ("termVersion", "/api/v1/contracts/{c}/terms"),
    "calendars": ("calendar", "/api/v1/calendars"),
    "slaRules": ("slaRule", "/api/v1/sla_rules"),
    "workOrders": ("workOrder", "/api/v1/work_orders"),
    "contractRules": ("contractRule", "/api/v1/contract_rules"),
    "breaches": ("breach", "/api/v1/breaches"),
    "ledgerEntries": ("ledgerEntry", "/api/v1/ledger_entries"),
    "webhooks": ("webhook", "/api/v1/webhooks"),
    "webhookDeliveries": ("webhookDelivery", "/api/v1/webhooks/{w}/deliveries"),
    "events": ("event", "/api/v1/events"),
    "memberships": ("membership", "/api/v1/members"),
    "signatureRequests": ("signatureRequest", "/api/v1/contracts/{c}/approval_requests"),
    "visitPlans": ("visitPlan", "/api/v1/contracts/{c}/visit_plans"),
    "billingLines": ("billingLine", "/api/v1/billing_lines"),
    "billingExports": ("billingExport", "/api/v1/billing_exports"),
    "contractTemplates": ("contractTemplate", "/api/v1/contract_templates"),
}
# REST fields GraphQL shows otherwise (docs/decisions.md): a billing line's period is `periodId`
# and `periodIndex`; a viewer is refused assets and visit plans wherever they are (the operator's).
OTHERWISE = {("billingLines", "period")}
OPERATORS_ONLY = {("contracts", "covered_assets"), ("workOrders", "asset"), ("workOrders", "visit_plan")}


@pytest.fixture
def world(org, make_member):
    return build_world(org, make_member("admin", org))


def _scope(path: str, world) -> tuple[str, str]:
    """REST's path, and GraphQL's filter for the same rows (a contract's or a webhook's children)."""
    contract, webhook = world["contracts.Contract"][0], world["notifications.WebhookEndpoint"][0]
    scope = f"contractId: {contract}" if "{c}" in path else f"webhookId: {webhook}" if "{w}" in path else ""
    return path.format(c=contract, w=webhook), scope


def _selection(graphql_type, keys) -> dict[str, str]:
    """REST key -> GraphQL selection: a scalar by its name, an object by its id."""
    selection = {}
    for key in keys:
        field = graphql_type.fields[key if key == "sourceID" else camel(key)]
        named = get_named_type(field.type)
        name = key if key == "sourceID" else camel(key)
        selection[key] = (
            name if is_leaf_type(named) else f"{name} {{ {'id' if 'id' in named.fields else '__typename'} }}"
        )
    return selection


def _plain(graphql_value, rest_value):
    """Both values as one shape: ids as text, a reference as its id, numbers as text."""

    def text(value):
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, list):
            return [text(v) for v in value]
        if isinstance(value, dict):
            return {k: text(v) for k, v in value.items()}
        return value

    if isinstance(graphql_value, dict) and set(graphql_value) == {"id"}:
        return text(graphql_value["id"]), text(rest_value["id"] if isinstance(rest_value, dict) else rest_value)
    if isinstance(graphql_value, list) and graphql_value and isinstance(graphql_value[0], dict):
        if all(not isinstance(r, dict) or "id" in r for r in rest_value):
            rest_ids = [r["id"] if isinstance(r, dict) else r for r in rest_value]
            return text([g["id"] for g in graphql_value]), text(rest_ids)
        return len(graphql_value), len(rest_value)  # objects REST shows without ids (holds, attempts)
    return text(graphql_value), text(rest_value)


def _differences(role, field, rest_rows, graphql_rows, keys) -> list[str]:
    found = []
    for rest_row, graphql_row in zip(rest_rows, graphql_rows, strict=True):
        for key in keys:
            name = key if key == "sourceID" else camel(key)
            shown, rest = _plain(graphql_row[name], rest_row[key])
            if shown != rest:
                found.append(f"{role} {field}[{rest_row['id']}].{key}: GraphQL {shown!r}, REST {rest!r}")
    return found


@pytest.mark.parametrize("role", ["viewer", "admin"])
def test_every_list_and_get_shows_what_rest_shows(gql, world, role):
    client = gql(role)
    query_type = schema._schema.query_type
    differences, compared = [], 0
    for field, (single, path) in RESOURCES.items():
        url, scope = _scope(path, world)
        rest = client.client.get(f"{url}?per_page=100")
        if rest.status_code == 403:  # the role wall: GraphQL's is the same, words and all
            body = client.post(f"{{ {field} {{ totalCount }} }}").json()
            assert body["errors"][0]["message"] == rest.json()["message"], field
            assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", field
            continue
        rows = rest.json()
        assert rows, f"the world has no {field}"
        graphql_type = get_named_type(get_named_type(query_type.fields[field].type).fields["results"].type)
        skipped = OTHERWISE | (OPERATORS_ONLY if role == "viewer" else set())
        keys = [k for k in rows[0] if (field, k) not in skipped]
        selection = _selection(graphql_type, keys)
        arguments = f"filters: {{{scope}}}, pagination: {{limit: 100}}" if scope else "pagination: {limit: 100}"
        listed = client(f"{{ {field}({arguments}) {{ results {{ {' '.join(selection.values())} }} }} }}")
        differences += _differences(role, field, rows, listed[field]["results"], keys)
        for row in rows:
            detail = client.client.get(f"{url}/{row['id']}").json()
            keys = [k for k in detail if (field, k) not in skipped]
            selection = _selection(graphql_type, keys)
            got = client(f"{{ {single}(id: {row['id']}) {{ {' '.join(selection.values())} }} }}")[single]
            differences += _differences(role, single, [detail], [got], keys)
            compared += 1
    assert differences == []
    assert compared >= len(RESOURCES) - (9 if role == "viewer" else 0)


def test_every_sort_key_orders_as_rests_sort(gql, world):
    client = gql("admin")
    query_type = schema._schema.query_type
    differences, compared = [], 0
    for field, (_single, path) in RESOURCES.items():
        url, scope = _scope(path, world)
        filters = f"filters: {{{scope}}}, " if scope else ""
        order_type = get_named_type(query_type.fields[field].args["order"].type)
        keys = get_named_type(order_type.fields["field"].type).values
        orders = [(None, "")] + [(f"{{field: {name}, direction: {d}}}", f"&sort={s}{key.value}")
                                 for name, key in keys.items() for d, s in (("ASC", ""), ("DESC", "-"))]  # fmt: skip
        for order, sort in orders:
            ordered = f"order: [{order}], " if order else ""
            data = client(f"{{ {field}({filters}{ordered}pagination: {{limit: 100}}) {{ results {{ id }} }} }}")
            shown = [int(row["id"]) for row in data[field]["results"]]
            rest = [row["id"] for row in client.client.get(f"{url}?per_page=100{sort}").json()]
            if shown != rest:
                differences.append(f"{field} {order}: GraphQL {shown}, REST {rest}")
            compared += 1
    assert differences == []
    assert compared > 200
