"""The OpenAPI document describes what the endpoints really answer (DESIGN §5): every field a
resource can show (`?fields=` may pick any of them, on a collection too), the reports' whole
answers, nested objects and nulls included. Generic, over every GET the document lists, on the
demo data with its breaches scanned: a resource or report added later is checked as it lands."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from .test_schema_contract import resolve

_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "integer": int,
    "number": (int, float),
}


def _node(schema: dict, node: dict) -> dict:
    """A property's schema with its `$ref` and single `allOf` (how a nested serializer with a
    description is written) resolved, the outer keys kept. As OAS 3.0.3 reads it (and strict
    validators such as openapi-core): `nullable` beside an `allOf` and no `type` admits no null."""
    node = resolve(schema, node)
    if len(node.get("allOf", [])) == 1:
        outer = {key: value for key, value in node.items() if key != "allOf"}
        if "type" not in outer:
            outer.pop("nullable", None)
        node = {**resolve(schema, node["allOf"][0]), **outer}
    return node


def mismatches(schema: dict, node: dict, value, where: str = "$") -> list[str]:
    """Where a JSON value says what its documented schema does not: a key not documented, a
    required key missing, a null where not nullable, a value of another type or outside its enum."""
    node = _node(schema, node)
    if not node:
        return []  # `{}`: any JSON value
    for combined in ("anyOf", "oneOf"):
        if combined in node:
            tries = [mismatches(schema, alternative, value, where) for alternative in node[combined]]
            if all(tries) and not (value is None and node.get("nullable")):
                return [f"{where}: fits no alternative ({tries})"]
            return []
    if value is None:
        return [] if node.get("nullable") or None in node.get("enum", []) else [f"{where}: null, not nullable"]
    if "enum" in node and value not in node["enum"]:
        return [f"{where}: {value!r} not in the enum"]
    kind = node.get("type")
    if kind is None and "properties" in node:
        kind = "object"
    expected = _TYPES.get(kind)
    if expected and (not isinstance(value, expected) or (kind in ("integer", "number") and isinstance(value, bool))):
        return [f"{where}: {type(value).__name__}, documented {kind}"]
    problems: list[str] = []
    if isinstance(value, dict):
        properties = node.get("properties", {})
        extra = node.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                problems += mismatches(schema, properties[key], item, f"{where}.{key}")
            elif isinstance(extra, dict):
                problems += mismatches(schema, extra, item, f"{where}.{key}")
            elif extra is False or (extra is None and properties):
                # (strict: an object that lists its properties lists them all; one that lists
                # none, like a GeoJSON value, is free-form)
                problems.append(f"{where}.{key}: not documented")
        problems += [
            f"{where}.{key}: documented as required, missing" for key in node.get("required", []) if key not in value
        ]
    elif isinstance(value, list) and "items" in node:
        for index, item in enumerate(value):
            problems += mismatches(schema, node["items"], item, f"{where}[{index}]")
    return problems


def ok_schema(schema: dict, operation: dict) -> dict | None:
    content = operation["responses"].get("200", operation["responses"].get("201", {})).get("content", {})
    return content.get("application/json", {}).get("schema")


def item_component(schema: dict, response_schema: dict) -> dict:
    """The component of a resource or of a collection's items."""
    node = resolve(schema, response_schema)
    return resolve(schema, node["items"]) if node.get("type") == "array" else node


def endpoint_serializers():
    """(documented path, method) -> the serializer class of the view behind it."""
    from drf_spectacular.generators import SchemaGenerator

    generator = SchemaGenerator()
    generator._initialise_endpoints()
    found = {}
    for path, _, method, view in generator._get_paths_and_endpoints():
        get_class = getattr(view, "get_serializer_class", None)
        serializer_class = get_class() if get_class and getattr(view, "serializer_class", None) else None
        if serializer_class is not None:
            found[(path.rstrip("/"), method.lower())] = serializer_class
    return found


def test_every_resource_component_describes_every_readable_field(schema):
    # A component was the list's default fields (drf-spectacular keeps the first component of a
    # name), so the detail's own fields, and those `?fields=` picks, were not documented.
    checked = set()
    for (path, method), serializer_class in endpoint_serializers().items():
        operation = schema["paths"].get(path, {}).get(method)
        if method != "get" or not operation or not hasattr(serializer_class, "readable_field_names"):
            continue
        response_schema = ok_schema(schema, operation)
        if response_schema is None:
            continue  # not JSON (a calendar's iCalendar)
        component = item_component(schema, response_schema)
        assert set(component["properties"]) == set(serializer_class.readable_field_names()), (path, serializer_class)
        # and `?fields=` offers each of them (an action's own serializer's too)
        fields = next(p for p in operation["parameters"] if p["name"] == "fields")
        assert set(fields["schema"]["items"]["enum"]) == set(component["properties"]), path
        checked.add(serializer_class)
    assert len(checked) >= 20, checked


# --- real answers -------------------------------------------------------------------------------


def _ids(client, collection: str) -> list[int]:
    response = client.get(collection, {"per_page": 100, "sort": "id", "fields": "id"})
    body = response.json() if response.status_code == 200 else None
    return [row["id"] for row in body if isinstance(row, dict) and "id" in row] if isinstance(body, list) else []


def _parent(client, template: str, placeholder: str) -> str | None:
    """A parent id under which the path's nested collection has rows (else the first parent)."""
    parent, rest = template.split(f"/{{{placeholder}}}")
    collection = rest.split("/{")[0]
    parents = _ids(client, parent)
    for parent_id in parents:
        if _ids(client, f"{parent}/{parent_id}{collection}"):
            return str(parent_id)
    return str(parents[0]) if parents else None


def concrete(client, template: str) -> str | None:
    path = template
    match = re.search(r"\{(\w+_pk)\}", path)
    if match:
        parent = _parent(client, template, match.group(1))
        if parent is None:
            return None
        path = path.replace(match.group(0), parent)
    if "{id}" in path:
        ids = _ids(client, path.split("/{id}")[0])
        if not ids:
            return None
        path = path.replace("{id}", str(ids[0]))
    return None if "{" in path else path


@pytest.fixture
def demo_username() -> str:
    return "demo-admin"  # every GET, the admin's own (members, webhooks) too


REQUIRED_PARAMETERS = {
    "from": (dt.date.today() - dt.timedelta(days=365)).isoformat(),
    "to": (dt.date.today() + dt.timedelta(days=1)).isoformat(),
}


@pytest.mark.django_db
def test_every_real_answer_fits_its_documented_schema(scanned):
    """Each GET's real answer: its keys documented (recursively), its required keys present, nulls
    only where nullable; a single resource shows exactly its component's properties, and a
    collection asked for every field shows no more than they."""
    schema = scanned.get("/api/v1/schema?format=json").json()
    serializers = endpoint_serializers()
    checked = details = picked = 0
    for template, item in schema["paths"].items():
        operation = item.get("get")
        response_schema = operation and ok_schema(schema, operation)
        if response_schema is None or template.endswith("/statement"):
            continue  # not JSON; the statement needs a month (its own test)
        path = concrete(scanned, template)
        if path is None:
            continue
        params = {
            p["name"]: REQUIRED_PARAMETERS[p["name"]]
            for p in operation.get("parameters", [])
            if p.get("required") and p["in"] == "query"
        }
        fields = next((p for p in operation.get("parameters", []) if p["name"] == "fields"), None)
        tries = [params]
        if fields and resolve(schema, response_schema).get("type") == "array":
            enum = fields["schema"]["items"]["enum"]
            tries.append({**params, "fields": ",".join(enum)})
            # One field but id: a visit's `?fields=state` left fields the document required out.
            tries.append({**params, "fields": next(name for name in enum if name != "id")})
        for query in tries:
            response = scanned.get(path, query)
            assert response.status_code == 200, (path, query, response.status_code, response.content[:300])
            body = response.json()
            problems = mismatches(schema, response_schema, body)
            assert not problems, (path, query, problems)
            checked += 1
            picked += bool(body) and "fields" in query and "," not in query["fields"]
        serializer_class = serializers.get((template, "get"))
        if template.endswith("/{id}") and hasattr(serializer_class, "readable_field_names"):
            assert set(body) == set(item_component(schema, response_schema)["properties"]), path
            details += 1
    assert checked >= 60 and details >= 15 and picked >= 20, (checked, details, picked)


@pytest.mark.django_db
def test_report_answers_are_documented_whole(scanned):
    """The reports were documented as stubs ({decided}, {month}, {sha256}, {jobs}): each real
    answer's keys, recursively, are now what the document lists, required ones present."""
    from breaches.models import Breach

    schema = scanned.get("/api/v1/schema?format=json").json()
    paths = schema["paths"]

    def documented(template: str, method: str = "get") -> dict:
        return ok_schema(schema, paths[template][method])

    def fits(template: str, body, method: str = "get") -> None:
        problems = mismatches(schema, documented(template, method), body)
        assert not problems, (template, problems)

    def properties(template: str, method: str = "get") -> set[str]:
        return set(item_component(schema, documented(template, method))["properties"])

    breach = Breach.objects.filter(organization__slug="demo", state=Breach.State.WAIVED).get()
    # SLA compliance, grouped by every key (month and week exclude each other).
    for group_by in ("contract,counterparty,sla_rule,metric,priority,month", "week"):
        rows = scanned.get("/api/v1/reports/sla_compliance", {**REQUIRED_PARAMETERS, "group_by": group_by}).json()
        assert any(row["breached"] for row in rows), rows
        fits("/api/v1/reports/sla_compliance", rows)
    assert {"met", "breached", "minutes", "penalties", "open_at_end", "week"} <= properties(
        "/api/v1/reports/sla_compliance"
    )

    # The statement of the month the waived breach's penalty counts in.
    statement = scanned.get(f"/api/v1/contracts/{breach.contract_id}/statement", {"month": breach.penalty_month}).json()
    assert statement["breaches"] and statement["totals"], statement
    fits("/api/v1/contracts/{contract_pk}/statement", statement)
    assert set(statement) == properties("/api/v1/contracts/{contract_pk}/statement")

    # The evidence pack of the waived breach (waived_by, waiver and penalty steps filled in).
    pack = scanned.get(f"/api/v1/breaches/{breach.pk}/evidence").json()
    fits("/api/v1/breaches/{breach_pk}/evidence", pack)
    assert set(pack) == properties("/api/v1/breaches/{breach_pk}/evidence")
    assert pack["breach"]["waived_by"] and pack["clock"]["working_intervals"]

    # A backtest of the breach's contract over the last year, with an unreachable target.
    answer = scanned.post(
        "/api/v1/backtests",
        {
            "contract_id": breach.contract_id,
            "from": f"{REQUIRED_PARAMETERS['from']}T00:00:00Z",
            "to": f"{REQUIRED_PARAMETERS['to']}T00:00:00Z",
            "proposed": {"target_minutes": 1},
        },
        format="json",
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["jobs"] and body["changed"], body
    fits("/api/v1/backtests", body, "post")
    assert set(body) == properties("/api/v1/backtests", "post")


@pytest.mark.django_db
def test_a_visit_of_a_plan_without_hours_is_documented_as_nullable(scanned):
    # `"hours_allocated": null` was documented as a non-nullable decimal.
    from workorders.models import VisitPlan

    plan = VisitPlan.objects.filter(organization__slug="demo").first()
    VisitPlan.objects.filter(pk=plan.pk).update(hours_allocated=None)
    schema = scanned.get("/api/v1/schema?format=json").json()
    template = "/api/v1/contracts/{contract_pk}/visits"
    visits = scanned.get(template.replace("{contract_pk}", str(plan.contract_id))).json()
    mine = [visit for visit in visits if visit["visit_plan"]["id"] == plan.pk]
    assert mine and mine[0]["hours_allocated"] is None
    assert not mismatches(schema, ok_schema(schema, schema["paths"][template]["get"]), visits)


def test_collection_sub_paths_document_the_list_parameters(schema):
    # `/contracts/active?reference=...` (the README's own example) filtered, but the document
    # listed no filter, sort or as_of for the collection sub-paths.
    listed = {p["name"] for p in schema["paths"]["/api/v1/contracts"]["get"]["parameters"]}
    assert {"reference", "status", "sort", "as_of", "fields", "page"} <= listed
    for path in ("/api/v1/contracts/active", "/api/v1/contracts/expiring"):
        parameters = {p["name"]: p for p in schema["paths"][path]["get"]["parameters"]}
        assert listed <= set(parameters), (path, listed - set(parameters))
    expiring = {p["name"]: p for p in schema["paths"]["/api/v1/contracts/expiring"]["get"]["parameters"]}
    assert {"soonest", "-soonest"} <= set(expiring["sort"]["schema"]["items"]["enum"])
    assert "within_days" in expiring


@pytest.mark.django_db
def test_collection_sub_paths_take_the_list_parameters(demo):
    reference = demo.get("/api/v1/contracts/active", {"per_page": 1}).json()[0]["reference"]
    found = demo.get("/api/v1/contracts/active", {"reference": reference, "sort": "-name", "as_of": "2026-01-01"})
    assert found.status_code == 200, found.content
    assert demo.get("/api/v1/contracts/expiring", {"reference": reference, "sort": "soonest"}).status_code == 200


# Headers the service sends that a client may read: each is declared where it is sent.
SENT = {"Location", "X-Recomputed-Clocks", "X-Imported-Holidays"}


@pytest.mark.django_db
def test_the_headers_a_write_sends_are_documented(demo):
    """Found by an outside integrator: amend, instantiate and renew answered 201 with a `Location`
    declared only for creates, and `X-Recomputed-Clocks` was described but declared nowhere."""
    from contracts.models import Contract

    schema = demo.get("/api/v1/schema?format=json").json()
    rule = demo.get("/api/v1/sla_rules", {"fields": "id,contract", "per_page": 1}).json()[0]
    calendar = demo.get("/api/v1/calendars", {"fields": "id", "per_page": 1}).json()[0]["id"]
    template = demo.get("/api/v1/contract_templates", {"fields": "id", "per_page": 1}).json()[0]["id"]
    counterparty = demo.get("/api/v1/counterparties", {"fields": "id", "per_page": 1}).json()[0]["id"]
    renewable = Contract.objects.filter(organization__slug="demo", status=Contract.Status.ACTIVE).first()
    ics = demo.get(f"/api/v1/calendars/{calendar}/ical").content
    calls = [
        ("post", "/api/v1/sla_rules/{id}/amend", f"/api/v1/sla_rules/{rule['id']}/amend", {"target_minutes": 5}),
        (
            "post",
            "/api/v1/contract_templates/{id}/instantiate",
            f"/api/v1/contract_templates/{template}/instantiate",
            {"counterparty_id": counterparty, "reference": "HDR-1", "start_date": dt.date.today().isoformat()},
        ),
        ("post", "/api/v1/contracts/{id}/renew", f"/api/v1/contracts/{renewable.pk}/renew", {}),
        ("patch", "/api/v1/calendars/{id}", f"/api/v1/calendars/{calendar}", {"name": "Renamed"}),
        (
            "post",
            "/api/v1/sla_rules",
            "/api/v1/sla_rules",
            {
                "contract_id": rule["contract"]["id"],
                "name": "Headers",
                "metric": "on_site",
                "priorities": ["low"],
                "target_minutes": 600,
            },
        ),  # fmt: skip
    ]
    for method, template_path, path, body in calls:
        response = getattr(demo, method)(path, body, format="json")
        assert response.status_code in (200, 201), (path, response.content[:300])
        documented = schema["paths"][template_path][method]["responses"][str(response.status_code)]["headers"]
        sent = {name for name in SENT if response.has_header(name)}
        assert sent and sent <= set(documented), (path, sent, set(documented))
    response = demo.post(f"/api/v1/calendars/{calendar}/import_holidays", ics, content_type="text/calendar")
    assert response.status_code == 200, response.content[:300]
    documented = schema["paths"]["/api/v1/calendars/{id}/import_holidays"]["post"]["responses"]["200"]["headers"]
    assert {"X-Recomputed-Clocks", "X-Imported-Holidays"} <= set(documented)
    assert response.has_header("X-Recomputed-Clocks") and response.has_header("X-Imported-Holidays")
    assert documented["X-Recomputed-Clocks"]["schema"] == {"type": "integer"}
