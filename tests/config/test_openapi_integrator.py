"""The OpenAPI document as an integrator codes against it: a client generated from it validates
every answer (success and error) by the document, formats included, sends back what it read,
and builds query strings from the parameters' schemas. Generic over every operation the document
lists, on the demo data with its breaches scanned; an operation added later is checked as it lands.
(tests/config/test_schema_responses.py checks the keys of the GET answers; this their values.)"""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from tenancy.models import Membership
from tests.conftest import client_for

from .openapi_validator import violations
from .test_schema_contract import resolve
from .test_schema_responses import REQUIRED_PARAMETERS, concrete

# Headers a client may read: each one sent must be declared on the response it comes with.
READ_HEADERS = (
    *(f"X-RateLimit-{name}" for name in ("Limit", "Remaining", "Reset")),
    *(f"X-Pagination-{name}" for name in ("Per-Page", "Current-Page", "Total-Pages", "Total-Entries")),
    "Link",
    "Retry-After",
    "Location",
    "X-Recomputed-Clocks",
    "X-Imported-Holidays",
)
MISSING = 999999  # an id no demo resource has


@pytest.fixture
def demo_username() -> str:
    return "demo-admin"  # every operation, the admin's own (members, webhooks) too


def test_drf_spectacular_validates_the_document_without_warnings(tmp_path):
    # `manage.py spectacular --validate --fail-on-warn`: the document is valid OpenAPI 3.0 and
    # the generator met nothing it had to guess (an unresolvable type, a duplicate name).
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def _fits(schema: dict, template: str, method: str, response, problems: list[str], label: str) -> None:
    """What a validating client checks of one answer: its status is documented, its content type
    too, each header it reads is declared, and its JSON body is valid against the schema."""
    where = f"{method.upper()} {template} [{label}] {response.status_code}"
    documented = schema["paths"][template][method]["responses"].get(str(response.status_code))
    if documented is None:
        problems.append(f"{where}: status not documented ({response.content[:120]!r})")
        return
    undeclared = [
        name for name in READ_HEADERS if response.has_header(name) and name not in documented.get("headers", {})
    ]
    if undeclared:
        problems.append(f"{where}: headers not declared: {undeclared}")
    content = documented.get("content", {})
    media_type = response.get("Content-Type", "").split(";")[0]
    if not content:
        if response.content:
            problems.append(f"{where}: a body where none is documented")
        return
    if media_type not in content:
        problems.append(f"{where}: {media_type} not among {sorted(content)}")
    elif media_type == "application/json":
        problems += [
            f"{where}: {problem}" for problem in violations(schema, content[media_type]["schema"], response.json())
        ]


def _line_item(client) -> None:
    """The demo has no line item: one on a draft contract, for the nested resource's paths."""
    from contracts.models import Contract

    draft = Contract.objects.filter(organization__slug="demo", status=Contract.Status.DRAFT).first()
    response = client.post(
        f"/api/v1/contracts/{draft.pk}/line_items",
        {"description": "Annual inspection", "quantity": "2", "unit_price": "150.00"},
        format="json",
    )
    assert response.status_code == 201, response.content


def _missing(template: str, path: str) -> str | None:
    """The path with its resource's id one that does not exist."""
    segments = template.split("/")
    if "{id}" not in segments:
        return None
    return "/".join(
        str(MISSING) if segment == "{id}" else part for segment, part in zip(segments, path.split("/"), strict=True)
    )


def _path(client, template: str) -> str | None:
    return concrete(client, template.replace("{name}", "escalation"))


@pytest.mark.django_db
def test_every_answer_is_valid_against_the_document(scanned):
    """Each operation's answers to what integrators send (the resource, a page, every field, an
    unknown parameter, a missing id, no token, a viewer's token, an empty, an unknown and a
    malformed body): the status and its body as the document says, by jsonschema with formats
    (date-time, date, uuid, email, uri), `nullable`, `readOnly`/`writeOnly` as OAS 3.0.3 reads them."""
    _line_item(scanned)
    schema = scanned.get("/api/v1/schema?format=json").json()
    viewer = client_for(Membership.objects.filter(organization__slug="demo", role="viewer").first())
    anon = APIClient()
    problems: list[str] = []
    seen: dict[str, set[int]] = {}

    def check(template, method, label, response):
        _fits(schema, template, method, response, problems, label)
        seen.setdefault(method, set()).add(response.status_code)

    operations = 0
    for template, item in schema["paths"].items():
        for method, operation in item.items():
            if "text/event-stream" in json.dumps(operation["responses"].get("200", {})):
                continue  # a live stream does not end (tests/stream)
            path = _path(scanned, template)
            assert path is not None, (method, template)
            missing = _missing(template, path)
            names = {p["name"] for p in operation.get("parameters", [])}
            query = {
                p["name"]: REQUIRED_PARAMETERS.get(p["name"], "2026-11")  # (the statement's month)
                for p in operation.get("parameters", [])
                if p.get("required") and p["in"] == "query"
            }
            operations += 1
            if method == "get":
                calls = [("ok", scanned, path, query), ("unknown parameter", scanned, path, {**query, "bogus": "1"})]
                if "per_page" in names:
                    calls += [
                        ("page 2", scanned, path, {**query, "per_page": 1, "page": 2}),
                        ("per_page=0", scanned, path, {**query, "per_page": 0}),
                    ]
                if "fields" in names:
                    fields = next(p for p in operation["parameters"] if p["name"] == "fields")
                    calls.append(
                        ("every field", scanned, path, {**query, "fields": ",".join(fields["schema"]["items"]["enum"])})
                    )
                if operation.get("security"):
                    calls += [("no token", anon, path, query), ("viewer", viewer, path, query)]
                if missing:
                    calls.append(("missing id", scanned, missing, query))
                for label, client, url, params in calls:
                    check(template, method, label, client.get(url, params))
            elif method in ("post", "patch"):
                calls = [("empty", scanned, path, {}), ("unknown field", scanned, path, {"bogus": 1})]
                if operation.get("security"):
                    calls += [("no token", anon, path, {}), ("viewer", viewer, path, {})]
                if missing:
                    calls.append(("missing id", scanned, missing, {}))
                for label, client, url, body in calls:
                    check(template, method, label, getattr(client, method)(url, body, format="json"))
                malformed = getattr(scanned, method)(path, "{", content_type="application/json")
                check(template, method, "malformed", malformed)
            elif method == "delete":
                for label, client, url in [
                    ("no token", anon, path),
                    ("viewer", viewer, path),
                    ("missing", scanned, missing),
                ]:
                    check(template, method, label, client.delete(url))
    # A delete that happens (the line item of a draft), and one a reference forbids (a counterparty with contracts).
    template = "/api/v1/contracts/{contract_pk}/line_items/{id}"
    check(template, "delete", "deleted", scanned.delete(_path(scanned, template)))
    check(
        "/api/v1/counterparties/{id}", "delete", "in use", scanned.delete(_path(scanned, "/api/v1/counterparties/{id}"))
    )
    # The errors of each kind, the 409 of an illegal transition and the 201 of an action included.
    assert {204, 401, 403, 404, 409} <= seen["delete"], seen
    assert {200, 400, 401, 403, 404} <= seen["get"], seen
    assert {200, 201, 400, 401, 403, 404, 409, 415, 422} <= seen["post"], seen
    assert operations >= 110, operations
    assert not problems, "\n".join(problems)


@pytest.mark.django_db
def test_the_refusals_before_the_view_are_documented(scanned, monkeypatch):
    """A body too large (413), a URL too long (414), a body that is not JSON (415), one request
    too many (429, with Retry-After): each is documented with its headers (413 and 414 without
    X-RateLimit-*, refused before the caller is known)."""
    from django.conf import settings
    from rest_framework.throttling import SimpleRateThrottle

    schema = scanned.get("/api/v1/schema?format=json").json()
    problems: list[str] = []
    template = "/api/v1/counterparties"
    big = {"name": "x" * settings.MAX_REQUEST_BYTES}
    _fits(schema, template, "post", scanned.post(template, big, format="json"), problems, "413")
    long = scanned.get(template, {"name": "x" * settings.MAX_URL_BYTES})
    _fits(schema, template, "get", long, problems, "414")
    _fits(schema, template, "post", scanned.post(template, "name", content_type="text/plain"), problems, "415")
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "user": "1/hour"})
    statuses = []
    for _ in range(2):
        response = scanned.get(template)
        statuses.append(response.status_code)
        _fits(schema, template, "get", response, problems, "throttled")
    assert statuses[-1] == 429 and response.has_header("Retry-After"), statuses
    assert not problems, "\n".join(problems)


def _request_schema(schema: dict, operation: dict) -> dict:
    return resolve(schema, operation["requestBody"]["content"]["application/json"]["schema"])


@pytest.mark.django_db
def test_what_a_client_reads_it_may_send_back(scanned):
    """A client that reads a resource and PATCHes its fields back unchanged: each value the GET
    gave is valid for the request body's field of that name, and the server takes them (or
    answers 409 for a state that allows no edit), never a 422. A nullable decimal's `null` (a
    contract without `overage_rate`) was read fine but refused by the PATCH body's schema:
    `nullable` beside `anyOf` and no `type` adds nothing in OAS 3.0.3."""
    _line_item(scanned)
    schema = scanned.get("/api/v1/schema?format=json").json()
    problems: list[str] = []
    patched = nulls = 0
    for template, item in schema["paths"].items():
        if "patch" not in item:
            continue
        path = _path(scanned, template)
        current = scanned.get(path).json()
        body = {}
        for name, field in _request_schema(schema, item["patch"]).get("properties", {}).items():
            if name not in current:
                continue  # a reference, read as `x` and written as `x_id`
            wrong = violations(schema, field, current[name], "request")
            problems += [f"PATCH {template} {name}={current[name]!r}: {problem}" for problem in wrong]
            body[name] = current[name]
            nulls += current[name] is None
        response = scanned.patch(path, body, format="json")
        if response.status_code not in (200, 409):
            problems.append(f"PATCH {template}: {response.status_code} {response.content[:300]!r}")
        patched += response.status_code == 200
    assert patched >= 10 and nulls >= 5, (patched, nulls)
    assert not problems, "\n".join(problems)


def _query_parameters(schema: dict):
    for template, item in schema["paths"].items():
        for method, operation in item.items():
            if method != "get" or "text/event-stream" in json.dumps(operation["responses"].get("200", {})):
                continue
            required = {
                p["name"]: REQUIRED_PARAMETERS.get(p["name"], "2026-11")
                for p in operation.get("parameters", [])
                if p.get("required") and p["in"] == "query"
            }
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and parameter["name"] not in required:
                    yield template, operation, parameter, required


@pytest.mark.django_db
def test_integer_query_parameters_state_the_bounds_the_server_applies(scanned):
    """`?within_days=`, `?within_minutes=`, `?window_days=` and `?since=` were bare integers while
    the server answers 400 outside a range: a client (and the fuzzer's positive cases) sent
    values the document allowed. Each states minimum and maximum, and they are the server's."""
    schema = scanned.get("/api/v1/schema?format=json").json()
    checked = set()
    for template, _, parameter, required in _query_parameters(schema):
        bounds = parameter["schema"]
        if bounds.get("type") != "integer":
            continue
        name = parameter["name"]
        assert "minimum" in bounds and "maximum" in bounds, (template, parameter)
        path = _path(scanned, template)
        for value in (bounds["minimum"], bounds["maximum"]):
            response = scanned.get(path, {**required, name: value})
            assert response.status_code == 200, (template, name, value, response.content[:200])
        for value in (bounds["minimum"] - 1, bounds["maximum"] + 1):
            response = scanned.get(path, {**required, name: value})
            assert response.status_code == 400 and name in response.json()["errors"], (template, name, value)
        checked.add(name)
    assert {"page", "per_page", "within_days", "within_minutes", "window_days", "since"} <= checked, checked


@pytest.mark.django_db
def test_date_query_parameters_state_the_service_range(scanned):
    """`?as_of=` (a contract's date, a balance's, lots' and periods' instant) and the visits'
    `?from=`/`?to=` took any year in the document; the server refuses one outside 2000-2999
    (a 400 naming it), as it does `?from=`/`?to=` of the compliance report, which said so."""
    schema = scanned.get("/api/v1/schema?format=json").json()
    checked = set()
    for template, _, parameter, required in _query_parameters(schema):
        described = parameter["schema"]
        if described.get("format") not in ("date", "date-time") and "instant" not in parameter.get("description", ""):
            continue
        if parameter.get("description", "").startswith("Filter on"):
            continue  # filters only compare: any instant with a UTC form (README)
        name = parameter["name"]
        assert described.get("pattern") == "^2[0-9]{3}-", (template, parameter)
        value = "1999-12-31" if described.get("format") == "date" else "1999-12-31T12:00:00Z"
        response = scanned.get(_path(scanned, template), {**required, name: value})
        assert response.status_code == 400 and name in response.json()["errors"], (template, name, response.content)
        checked.add((template, name))
    assert len(checked) >= 9, checked


@pytest.mark.django_db
def test_a_blank_read_only_email_is_documented(scanned):
    """A signature request's `signer_email` is "" until someone signs: it was documented as
    `format: email`, so a client that checks formats refused every pending request."""
    schema = scanned.get("/api/v1/schema?format=json").json()
    template = "/api/v1/contracts/{contract_pk}/approval_requests/{id}"
    path = _path(scanned, template)
    body = scanned.get(path).json()
    assert body["signer_email"] == ""
    documented = schema["paths"][template]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert not violations(schema, documented, body)
    assert violations(schema, documented, {**body, "signer_email": "not an address"})


@pytest.mark.django_db
def test_every_body_date_states_the_service_range_the_server_applies(scanned):
    """A resource's body dates and instants (a contract's `start_date`, a work order's
    `reported_at`, a ledger entry's `occurred_at`, ...) and a template's `instantiate` had no
    pattern: the schema code saw the serializer built for the document, which `bounded_dates`
    leaves alone. Each states the service's years now, and the server refuses a date outside them
    with a 422 naming it (the backtest's `from`, added after the others were bounded, was taken)."""
    schema = scanned.get("/api/v1/schema?format=json").json()
    _line_item(scanned)
    counterparty = scanned.get("/api/v1/counterparties", {"fields": "id", "per_page": 1}).json()[0]["id"]
    # What a body needs before its dates are looked at (instantiate names what is missing first).
    rest = {"/api/v1/contract_templates/{id}/instantiate": {"counterparty_id": counterparty, "reference": "I-1"}}
    checked = set()
    for template, item in schema["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if method not in ("post", "patch") or content is None:
                continue
            for name, field in resolve(schema, content["schema"]).get("properties", {}).items():
                if field.get("format") not in ("date", "date-time"):
                    continue
                assert field.get("pattern") == "^2[0-9]{3}-", (method, template, name, field)
                value = "1999-12-31" if field["format"] == "date" else "1999-12-31T12:00:00Z"
                body = {**rest.get(template, {}), name: value}
                response = getattr(scanned, method)(_path(scanned, template), body, format="json")
                errors = response.json().get("errors", {})
                assert response.status_code == 422 and "2000-01-01" in str(errors.get(name)), (
                    method,
                    template,
                    name,
                    response.content[:300],
                )
                checked.add((method, template, name))
    assert len(checked) >= 30, len(checked)


@pytest.mark.django_db
def test_instantiate_states_a_contracts_currency(scanned):
    from tenancy.currencies import MINOR_UNITS

    schema = scanned.get("/api/v1/schema?format=json").json()
    operation = schema["paths"]["/api/v1/contract_templates/{id}/instantiate"]["post"]
    currency = operation["requestBody"]["content"]["application/json"]["schema"]["properties"]["currency"]
    assert set(currency["enum"]) == set(MINOR_UNITS)
    counterparty = scanned.get("/api/v1/counterparties", {"fields": "id", "per_page": 1}).json()[0]["id"]
    refused = scanned.post(
        _path(scanned, "/api/v1/contract_templates/{id}/instantiate"),
        {"counterparty_id": counterparty, "reference": "I-1", "start_date": "2026-01-01", "currency": "XXX"},
        format="json",
    )
    assert refused.status_code == 422 and list(refused.json()["errors"]) == ["currency"], refused.content


def _time_zone_schemas(schema: dict, node, where: str):
    """Every `time_zone` a request body (nested objects included) or a query parameter takes."""
    if isinstance(node, dict):
        if "$ref" in node:
            yield from _time_zone_schemas(schema, resolve(schema, node), where)
            return
        for name, item in (node.get("properties") or {}).items():
            if name == "time_zone":
                yield where, item
            yield from _time_zone_schemas(schema, item, f"{where}.{name}")
        for key in ("items", "allOf", "anyOf", "oneOf"):
            for item in node.get(key, []) if isinstance(node.get(key), list) else [node.get(key)]:
                yield from _time_zone_schemas(schema, item, where)


@pytest.mark.django_db
def test_every_time_zone_the_api_takes_is_one_of_the_zones(scanned):
    """A backtest's inline `proposed.calendar.time_zone` (checked by a `validate_time_zone` method
    the document could not see) and the compliance report's `?time_zone=` were any string; the
    server refuses a zone it does not know, so each is the enum of the zones a body's is."""
    from config import dates

    schema = scanned.get("/api/v1/schema?format=json").json()
    zones = sorted(dates._time_zones())
    found = []
    for template, item in schema["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if content:
                found += list(_time_zone_schemas(schema, content["schema"], f"{method} {template}"))
            found += [
                (f"{method} {template} ?{p['name']}", p["schema"])
                for p in operation.get("parameters", [])
                if p["name"] == "time_zone" and p["in"] == "query" and not p["description"].startswith("Filter on")
            ]  # (a filter only compares: `?time_zone=>E` is a filter on the stored zones)
    for where, node in found:
        node = resolve(schema, node["allOf"][0]) if "allOf" in node else node
        assert node.get("enum") == zones, where
    assert any("backtests" in where for where, _ in found) and any("?time_zone" in where for where, _ in found)
    query = {"from": "2026-01-01", "to": "2026-02-01", "time_zone": "Mars/Base"}
    refused = scanned.get("/api/v1/reports/sla_compliance", query)
    assert refused.status_code == 400 and list(refused.json()["errors"]) == ["time_zone"]
    contract = scanned.get("/api/v1/contracts/active", {"fields": "id", "per_page": 1}).json()[0]["id"]
    calendar = {"time_zone": "Mars/Base", "hours": [{"weekday": 1, "start": "08:00", "end": "12:00"}]}
    body = {"contract_id": contract, "from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}
    refused = scanned.post("/api/v1/backtests", {**body, "proposed": {"calendar": calendar}}, format="json")
    assert refused.status_code == 422, refused.content
    assert refused.json()["errors"] == {"proposed.calendar.time_zone": ["'Mars/Base' is not an IANA time zone."]}


@pytest.mark.django_db
def test_me_states_the_roles(scanned):
    """`/me`'s `role` was any string while /members states RoleEnum: a client deciding what to
    offer from it had no list of the values to expect."""
    from tenancy.models import Role

    schema = scanned.get("/api/v1/schema?format=json").json()
    ok = schema["paths"]["/api/v1/me"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    role = resolve(schema, resolve(schema, ok)["properties"]["role"])
    assert role.get("enum") == list(Role.values), role
    for membership in Membership.objects.filter(organization__slug="demo").select_related("user"):
        body = client_for(membership).get("/api/v1/me").json()
        assert body["role"] == membership.role and not violations(schema, ok, body), body
    assert not violations(schema, ok, body) and violations(schema, ok, {**body, "role": "owner"})
