"""`?format=` answered alike on every endpoint under /api/v1/ (config.api.csv.JSONErrorsMixin).

Every route of the URL configuration is walked (so an endpoint added later is covered without a
new test): an unknown format (`xml`) is a JSON 400 naming the formats the endpoint has, a format
it does not offer (`csv` on `/me`) too, and `?format=json` answers as no format at all wherever
JSON is served. Before, `/me`, `/notification_settings`, `/schemas/*`, `/token`, `/schema` and the
API browsers answered 404 and the event stream ignored the parameter.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from breaches.models import Breach
from contracts.models import Contract
from notifications.models import WebhookEndpoint
from tenancy.models import Membership
from tests.conftest import client_for
from tests.routes import routes

pytestmark = pytest.mark.django_db


def _api_routes(ids: dict[str, int]) -> list[tuple[str, str]]:
    """(method, path) of every route under /api/v1/: a GET where there is one, else its first method."""
    found = []
    for regex, pattern in routes():
        path = "/" + regex.replace("^", "").replace("/?$", "").replace("$", "")
        if not path.startswith("/api/v1/"):
            continue
        for name, value in ids.items():
            path = path.replace(f"(?P<{name}>[0-9]+)", str(value))
        path = path.replace("(?P<name>escalation|penalty_clause)", "escalation")
        assert "(?P<" not in path, f"no id for {path}: add one to the test"
        cls = getattr(pattern.callback, "cls", None)
        assert cls is not None, f"{path} is not a REST framework view"
        actions = getattr(pattern.callback, "actions", None)
        methods = list(actions) if actions else [m for m in cls.http_method_names if hasattr(cls, m)]
        methods = [m for m in methods if m not in ("head", "options")]
        found.append(("get" if "get" in methods else methods[0], path))
    return found


@pytest.fixture
def demo_admin(db):
    call_command("seed_demo", quiet=True, stdout=io.StringIO())
    return client_for(Membership.objects.get(user__username="demo-admin", organization__slug="demo"))


@pytest.fixture
def ids(demo_admin) -> dict[str, int]:
    contract = Contract.objects.get(organization__slug="demo", reference="DEMO-SC-001")
    endpoint = WebhookEndpoint.objects.create(
        organization=contract.organization, url="https://hooks.example.com/sla", event_types=["*"]
    )
    breach = Breach.objects.filter(organization=contract.organization).first()
    return {"contract_pk": contract.pk, "pk": 1, "webhook_pk": endpoint.pk, "breach_pk": breach.pk if breach else 1}


# Routes without a GET that write nothing (with an empty body, a 4xx), compared in every format.
READ_ONLY_POSTS = {"/api/v1/token", "/api/v1/token/refresh", "/api/v1/backtests", "/api/v1/work_orders/match"}


def _is_json(response) -> bool:
    return response.get("Content-Type", "").split(";")[0] in ("application/json", "application/vnd.oai.openapi+json")


def _format_error(response, path: str) -> list[str]:
    """The formats a 400 for `?format=` names (the JSON envelope, never HTML, never a 404)."""
    assert response.status_code == 400, (path, response.status_code, response.content[:200])
    assert response["Content-Type"] == "application/json", path
    body = response.json()
    assert "format" in body["errors"] and body["message"].startswith("Unknown format; use one of: "), (path, body)
    return body["message"].removeprefix("Unknown format; use one of: ").rstrip(".").split(", ")


def _call(client, method: str, path: str, fmt: str | None):
    url = path if fmt is None else f"{path}?format={fmt}"
    response = getattr(client, method)(url, {}, format="json") if method != "get" else client.get(url)
    if response.streaming:
        response.content_bytes = b"".join(response.streaming_content)
    return response


def test_every_endpoint_answers_format_alike(demo_admin, ids):
    checked = []
    for method, path in _api_routes(ids):
        unknown = _call(demo_admin, method, path, "xml")
        formats = _format_error(unknown, path)
        assert formats and "xml" not in formats, path

        if method != "get" and path not in READ_ONLY_POSTS:
            continue  # a write: the format is refused before it runs; what it writes is its own tests' matter
        plain, as_json = _call(demo_admin, method, path, None), _call(demo_admin, method, path, "json")
        if "json" in formats:  # JSON is served: ?format=json is the same answer as no format
            assert as_json.status_code == plain.status_code, (path, as_json.status_code, plain.status_code)
            assert as_json.status_code >= 400 or _is_json(as_json), (path, as_json["Content-Type"])
        else:  # the API browsers, the event stream
            assert _format_error(as_json, path) == formats

        as_csv = _call(demo_admin, method, path, "csv")
        if "csv" in formats:
            assert as_csv.status_code == plain.status_code, (path, as_csv.status_code, plain.status_code)
            assert as_csv.status_code < 400 or as_csv["Content-Type"] == "application/json", path
        else:
            assert _format_error(as_csv, path) == formats
        checked.append(path)
    contract = ids["contract_pk"]
    assert {
        "/api/v1/me", "/api/v1/notification_settings", "/api/v1/schemas/escalation", "/api/v1/schema",
        "/api/v1/docs", "/api/v1/redoc", "/api/v1/token", "/api/v1/token/refresh", "/api/v1/events/stream",
        "/api/v1/contracts", f"/api/v1/contracts/{contract}/visits", f"/api/v1/contracts/{contract}/balance",
        "/api/v1/backtests",
    } <= set(checked)  # fmt: skip


@pytest.mark.parametrize(
    ("path", "formats"),
    [
        ("/api/v1/me", ["json"]),
        ("/api/v1/notification_settings", ["json"]),
        ("/api/v1/schemas/escalation", ["json"]),
        ("/api/v1/schema", ["yaml", "json"]),
        ("/api/v1/docs", ["html"]),
        ("/api/v1/events/stream", ["event-stream"]),
    ],
)
def test_a_format_an_endpoint_does_not_offer_is_a_400_naming_its_formats(api, path, formats):
    client = api("admin")
    for fmt in ("csv", "xml", "pdf"):
        assert _format_error(client.get(f"{path}?format={fmt}"), path) == formats
    blank = client.get(f"{path}?format=")
    assert blank.status_code == 400 and "format" in blank.json()["errors"], path
    if "json" in formats:
        assert client.get(f"{path}?format=json").status_code == 200, path


def test_format_json_works_where_json_is_served(api):
    client = api("admin")
    assert client.get("/api/v1/me?format=json").json()["role"] == "admin"
    assert client.get("/api/v1/notification_settings?format=json").json() == {"notification_emails": []}
    assert client.get("/api/v1/schemas/penalty_clause?format=json").json()["title"]
    assert client.get("/api/v1/schema?format=json").json()["openapi"].startswith("3.")
    patch = client.patch(
        "/api/v1/notification_settings?format=json", {"notification_emails": ["ops@example.com"]}, format="json"
    )
    assert patch.status_code == 200 and patch.json() == {"notification_emails": ["ops@example.com"]}
    assert client.patch("/api/v1/notification_settings?format=csv", {}, format="json").status_code == 400


def test_a_format_error_carries_the_callers_rate_limit_and_comes_after_authentication(api, anon, settings):
    """Raised while negotiating the format, before authentication, the 400 carried the anonymous
    limit (60) to a caller whose limit is the user's, and was not counted."""
    client = api("manager")
    ok = client.get("/api/v1/contracts")
    refused = client.get("/api/v1/contracts?format=xml")
    assert refused.status_code == 400
    assert refused["X-RateLimit-Limit"] == ok["X-RateLimit-Limit"] == "6000"
    assert int(refused["X-RateLimit-Remaining"]) == int(ok["X-RateLimit-Remaining"]) - 1
    # Without a token, the bad format is still a bad parameter of a request that must authenticate first.
    assert anon.get("/api/v1/contracts?format=xml").status_code == 401
    assert anon.get("/api/v1/me?format=xml").status_code == 401
    # A public endpoint refuses it with the anonymous limit, which is the one that applies there.
    public = anon.get("/api/v1/schemas/escalation?format=xml")
    assert public.status_code == 400 and public["X-RateLimit-Limit"] == "60"


def test_every_endpoint_refuses_a_repeated_parameter(demo_admin, ids, anon):
    """Found by an outside integrator: a repeated parameter (`?status=active&status=draft`) was read
    as its last value, on collections and on the views that are not (reports, visits, balance,
    periods) alike. Every route refuses it once the caller is authenticated (JSONErrorsMixin)."""
    checked = []
    for method, path in _api_routes(ids):
        url = f"{path}?ids=1&ids=2"
        response = getattr(demo_admin, method)(url, {}, format="json") if method != "get" else demo_admin.get(url)
        assert response.status_code == 400, (path, response.status_code, response.content[:200])
        assert response["Content-Type"] == "application/json", path
        assert response.json() == {
            "message": "Repeated query parameter: ids; send one value, comma-separated.",
            "errors": {"ids": ["Given 2 times; send one value, comma-separated (ids=1,2)."]},
        }, path
        checked.append(path)
    contract = ids["contract_pk"]
    assert {
        "/api/v1/contracts", "/api/v1/reports/sla_compliance", "/api/v1/reports/at_risk",
        f"/api/v1/contracts/{contract}/visits", f"/api/v1/contracts/{contract}/balance",
        f"/api/v1/contracts/{contract}/periods", f"/api/v1/contracts/{contract}/statement",
        "/api/v1/billing_exports", "/api/v1/events/stream", "/api/v1/me",
    } <= set(checked)  # fmt: skip
    # Refused after authentication, as any bad parameter: without a token, a 401 first.
    assert anon.get("/api/v1/contracts?status=active&status=draft").status_code == 401


# The API browsers and the OpenAPI document are drf-spectacular's, which reads its own parameters (`lang`).
SPECTACULAR = {"/api/v1/schema", "/api/v1/docs", "/api/v1/redoc"}


def test_every_endpoint_refuses_an_unknown_parameter(demo_admin, ids):
    """Found by an outside sweep: `/me` and `/notification_settings` answered 200 to `?zzz=1`, and a
    write (`POST /counterparties?zzz=1`) ignored it. Every route refuses it, writes included."""
    checked = []
    for method, path in _api_routes(ids):
        if path in SPECTACULAR:
            continue
        url = f"{path}?zzz=1"
        response = getattr(demo_admin, method)(url, {}, format="json") if method != "get" else demo_admin.get(url)
        assert response.status_code == 400, (path, response.status_code, response.content[:200])
        assert "zzz" in response.json()["errors"], (path, response.content[:200])
        checked.append(path)
    assert {
        "/api/v1/me", "/api/v1/notification_settings", "/api/v1/schemas/escalation", "/api/v1/token",
        "/api/v1/backtests", "/api/v1/work_orders/match", "/api/v1/counterparties/1", "/api/v1/events/stream",
    } <= set(checked)  # fmt: skip


def test_a_method_a_route_does_not_serve_is_405_whatever_its_query(demo_admin, ids):
    """Found by the fuzzer once unknown parameters were refused on every route: `TRACE
    /counterparties/1?fields=id` answered that 400 instead of the 405 the method deserves."""
    paths = sorted({path for _method, path in _api_routes(ids)} - SPECTACULAR)
    assert "/api/v1/counterparties/1" in paths and "/api/v1/counterparties" in paths
    for path in paths:
        response = demo_admin.generic("TRACE", f"{path}?fields=id&zzz=1")
        assert response.status_code == 405, (path, response.status_code, response.content[:200])


def _shape(response):
    body = response.json()
    return [sorted(row) for row in body] if isinstance(body, list) else body if response.status_code != 200 else None


def test_repeated_fields_and_sort_are_one_list_on_every_endpoint(demo_admin, ids):
    """Found by an outside integrator: generated clients (openapi-python-client) ignore
    `explode: false` and send `?fields=id&fields=name`, which every route refused. `fields` and
    `sort` are lists by nature: their repeats are the comma-separated list, on every route that
    reads them, the views that are not collections (reports, visits) too."""
    checked = []
    for method, path in _api_routes(ids):
        if method != "get" or path.endswith("/stream"):
            continue
        for param, values in (("fields", ["id", "name"]), ("sort", ["-id", "name"])):
            response = demo_admin.get(f"{path}?{param}={values[0]}&{param}={values[1]}")
            assert b"Repeated query parameter" not in response.content, (path, response.content[:200])
            expected = demo_admin.get(f"{path}?{param}={','.join(values)}")
            assert response.status_code == expected.status_code, (path, param, response.content[:200])
            if _is_json(expected) and not response.streaming:
                assert _shape(response) == _shape(expected), (path, param)
        checked.append(path)
    assert len(checked) > 40, checked
    # The views that read their own parameters join them too.
    contract = ids["contract_pk"]
    for path, query, joined in (
        (
            f"/api/v1/contracts/{contract}/visits",
            "fields=state&fields=occurrence&sort=state&sort=-occurrence",
            "fields=state,occurrence&sort=state,-occurrence",
        ),
        ("/api/v1/reports/at_risk", "fields=id&fields=due_at&sort=-due_at&sort=id", "fields=id,due_at&sort=-due_at,id"),
    ):
        response = demo_admin.get(f"{path}?{query}")
        assert response.status_code == 200, (path, response.content[:300])
        assert response.json() == demo_admin.get(f"{path}?{joined}").json(), path
    visits = demo_admin.get(f"/api/v1/contracts/{contract}/visits?fields=state&fields=occurrence").json()
    assert visits and all(set(visit) == {"state", "occurrence"} for visit in visits), visits


def test_a_repeated_filter_value_is_not_read_as_its_last(api):
    client = api("viewer")
    response = client.get("/api/v1/contracts?status=active&status=draft")
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "status": ["Given 2 times; send one value, comma-separated (status=active,draft)."]
    }
    assert client.get("/api/v1/contracts?status=active,draft").status_code == 200
    # Three times, and two parameters at once: each named.
    response = client.get("/api/v1/reports/sla_compliance?from=2026-01-01&to=2026-01-31&metric=response"
                          "&metric=resolution&metric=on_site&priority=low&priority=high")  # fmt: skip
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "Repeated query parameter: metric, priority; send one value, comma-separated."
    assert body["errors"]["metric"] == [
        "Given 3 times; send one value, comma-separated (metric=response,resolution,on_site)."
    ]


def test_the_schema_documents_format_where_the_endpoint_takes_it(demo_admin, ids):
    """An integrator reads `?format=` in the OpenAPI document with the formats the endpoint names in
    its 400. drf-spectacular documented it only where a view has two renderers or more, so `/me`,
    `/notification_settings`, `/schemas/{name}`, `/token`, `/backtests`, a calendar's `ical`
    (`format=ics`) and the event stream took a parameter the document did not list."""
    schema = demo_admin.get("/api/v1/schema?format=json").json()
    values = {"id": ids["pk"], "contract_pk": ids["contract_pk"], "webhook_pk": ids["webhook_pk"],
              "breach_pk": ids["breach_pk"], "name": "escalation"}  # fmt: skip
    checked = []
    for template, item in schema["paths"].items():
        path = template.format(**values)
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            named = _format_error(_call(demo_admin, method, path, "xml"), f"{method} {path}")
            documented = [p for p in operation.get("parameters", []) if p["in"] == "query" and p["name"] == "format"]
            assert documented, f"{method.upper()} {template} takes ?format= but does not document it"
            assert sorted(documented[0]["schema"]["enum"]) == sorted(named), (method, template)
            assert "csv" in named or "csv" not in documented[0]["description"], (method, template)
            checked.append((method, template))
    assert {("get", "/api/v1/me"), ("post", "/api/v1/token"), ("get", "/api/v1/calendars/{id}/ical"),
            ("get", "/api/v1/events/stream")} <= set(checked)  # fmt: skip
