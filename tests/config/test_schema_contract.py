"""The OpenAPI document is the contract (issue 8): what it says about bodies, collections,
parameters and descriptions is what the endpoints do. The fuzzer (tests/fuzz/run.py, in
`make test`) checks the same against a live server; these pin the specific lies once told."""

from __future__ import annotations

import pytest

CONTRACT_ACTIONS = {
    "submit": None,
    "approve": {"comment"},
    "reject": {"reason"},
    "suspend": {"reason"},
    "resume": {"reason"},
    "terminate": {"reason"},
    "give_notice": {"reason"},
}


def resolve(schema, ref_or_schema: dict) -> dict:
    ref = ref_or_schema.get("$ref")
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else ref_or_schema


def body_schema(schema, operation: dict) -> dict | None:
    body = operation.get("requestBody")
    if body is None or "application/json" not in body["content"]:
        return None  # no body, or a file upload (text/calendar, multipart): no JSON properties to police
    return resolve(schema, body["content"]["application/json"]["schema"])


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


class TestActionBodies:
    @pytest.mark.parametrize("name", sorted(CONTRACT_ACTIONS))
    def test_each_contract_action_documents_its_own_body(self, schema, name):
        operation = schema["paths"][f"/api/v1/contracts/{{id}}/{name}"]["post"]
        body = body_schema(schema, operation)
        expected = CONTRACT_ACTIONS[name]
        if expected is None:
            assert body is None
        else:
            assert set(body["properties"]) == expected, body
            assert body["additionalProperties"] is False
        assert operation["description"], name

    def test_no_action_documents_its_resources_body(self, schema):
        # `/contracts/{contract_pk}/amendments/{id}/submit` was documented with the amendment's own
        # body, which the action refuses ("Unknown field"): an action's body is its own.
        checked = 0
        for path, item in schema["paths"].items():
            collection, _, action = path.rpartition("/{id}/")
            if not action or "/" in action or "post" not in item or "post" not in schema["paths"].get(collection, {}):
                continue
            created = schema["paths"][collection]["post"].get("requestBody", {}).get("content", {})
            own = item["post"].get("requestBody", {}).get("content", {})
            if "application/json" in created and "application/json" in own:
                assert own["application/json"]["schema"] != created["application/json"]["schema"], path
            checked += 1
        assert checked >= 15

    def test_each_amendment_action_documents_its_own_body(self, schema):
        path = "/api/v1/contracts/{contract_pk}/amendments/{id}/"
        assert body_schema(schema, schema["paths"][path + "submit"]["post"]) is None
        assert set(body_schema(schema, schema["paths"][path + "approve"]["post"])["properties"]) == {"comment"}
        assert set(body_schema(schema, schema["paths"][path + "reject"]["post"])["properties"]) == {"reason"}

    def test_no_request_body_offers_a_read_only_field(self, schema):
        # A read-only decimal was documented inside `anyOf` (string or number), so it stayed in the
        # request bodies (`charged_hours`, `remaining_hours`), and sending it is a 422.
        for path, method, operation in operations(schema):
            body = body_schema(schema, operation) or {}
            for name, field in (body.get("properties") or {}).items():
                assert "readOnly" not in str(field), (method, path, name)

    def test_required_reason_is_required(self, schema):
        reject = body_schema(schema, schema["paths"]["/api/v1/contracts/{id}/reject"]["post"])
        assert reject["required"] == ["reason"]
        give_notice = schema["paths"]["/api/v1/contracts/{id}/give_notice"]["post"]
        assert not give_notice["requestBody"].get("required")

    def test_strict_request_bodies_refuse_additional_properties(self, schema):
        for path, method, operation in operations(schema):
            body = body_schema(schema, operation)
            if body is not None and body.get("properties") and body.get("additionalProperties") is not True:
                # (a body documented as open, like a template's instantiate, says so explicitly)
                assert body.get("additionalProperties") is False, (method, path)


class TestCollections:
    def test_every_collection_is_an_array_with_pagination_headers(self, schema):
        collections = ["/api/v1/contracts", "/api/v1/contracts/active", "/api/v1/contracts/expiring", "/api/v1/events"]
        for path in collections:
            ok = schema["paths"][path]["get"]["responses"]["200"]
            assert resolve(schema, ok["content"]["application/json"]["schema"])["type"] == "array", path
            assert {"X-Pagination-Total-Pages", "Link"} <= set(ok["headers"]), path

    def test_fields_and_sort_list_their_allowed_values(self, schema):
        parameters = {p["name"]: p for p in schema["paths"]["/api/v1/contracts"]["get"]["parameters"]}
        fields = parameters["fields"]
        assert fields["explode"] is False and "status" in fields["schema"]["items"]["enum"]
        sort = parameters["sort"]
        assert {"name", "-name", "id", "-id"} <= set(sort["schema"]["items"]["enum"])
        assert "--name" not in sort["schema"]["items"]["enum"]
        # Generated clients repeat an array parameter whatever `explode` says: the server joins them.
        assert "`fields=name&fields=status`" in fields["description"]
        assert "`sort=name&sort=-created_at`" in sort["description"]
        assert parameters["page"]["schema"]["maximum"] >= 1000

    def test_fields_is_offered_only_where_the_answer_is_json(self, schema):
        # Found by an outside integrator: `/calendars/{id}/ical` documented a `fields` it ignores
        # (`?fields=bogus` is a 200 there).
        names = {p["name"] for p in schema["paths"]["/api/v1/calendars/{id}/ical"]["get"].get("parameters", [])}
        assert names == {"id", "years", "format"}  # format: ?format=ics, the one it takes
        for path, method, operation in operations(schema):
            ok = operation.get("responses", {}).get("200", {}) if isinstance(operation, dict) else {}
            if any(p["name"] == "fields" for p in operation.get("parameters", [])):
                assert "application/json" in ok.get("content", {}), (path, method)

    def test_filters_describe_their_grammar(self, schema):
        parameters = {p["name"]: p for p in schema["paths"]["/api/v1/contracts"]["get"]["parameters"]}
        assert "`!a` (not)" in parameters["status"]["description"]

    @pytest.mark.django_db
    def test_filters_offer_only_the_predicates_the_server_takes(self, schema, api):
        # Found by an outside integrator: every filter offered comparisons and ranges, which choice,
        # boolean and reference filters refuse ("Comparisons are not supported on this field."),
        # and the at-risk report's priority was "work_order__priority (ForeignKey)".
        import re

        client = api("admin")
        checked = 0
        for path, method, operation in operations(schema):
            if method != "get":
                continue
            url = re.sub(r"\{[^}]+\}", "1", path)
            for parameter in operation.get("parameters", []):
                name, description = parameter["name"], parameter.get("description", "")
                if not description.startswith("Filter on "):
                    continue
                assert description.startswith(f"Filter on {name} ("), (path, description)
                assert "__" not in description and "Field)" not in description, (path, description)
                assert "ForeignKey" not in description, (path, description)
                response = client.get(url, {name: ">1"})
                refused = response.status_code == 400 and response.json().get("errors", {}).get(name) == [
                    "Comparisons are not supported on this field."
                ]
                assert refused != ("`>v`" in description), (path, name, description, response.content[:200])
                checked += 1
        assert checked > 100

    def test_a_filter_across_a_reference_is_described_by_its_own_field(self, schema):
        parameters = {p["name"]: p for p in schema["paths"]["/api/v1/reports/at_risk"]["get"]["parameters"]}
        assert parameters["priority"]["description"] == (
            "Filter on priority (one of critical, high, medium, low, planned): `v`, `a,b` (in), `!a` (not), "
            "empty value (is empty), `!` (is present)."
        )
        assert parameters["contract_id"]["description"].startswith("Filter on contract_id (contract ids): ")
        parameters = {p["name"]: p for p in schema["paths"]["/api/v1/contract_templates"]["get"]["parameters"]}
        assert "`>v`" not in parameters["active"]["description"]
        assert "ranges `>=a<b`" in parameters["created_at"]["description"]

    def test_resource_responses_require_only_id(self, schema):
        # `?fields=` may leave out any other field.
        assert schema["components"]["schemas"]["Contract"]["required"] == ["id"]

    def test_a_blank_email_matches_its_schema_without_format_checks(self, schema):
        """Found by an outside integrator: a counterparty's `email` was oneOf [an e-mail, a blank
        string], and "" matches both for a validator that does not check formats (JSON Schema's
        default), so every blank e-mail failed validation."""
        import jsonschema

        email = schema["components"]["schemas"]["Counterparty"]["properties"]["email"]
        assert "oneOf" not in email
        for value in ("", "ops@example.com"):
            jsonschema.validate(value, email)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate("x" * 300, email)
        text = str(schema)
        assert "'oneOf': [{'type': 'string', 'format': 'email'" not in text

    def test_a_nullable_reference_admits_null_for_strict_validators(self, schema):
        # Found by an outside integrator: `allOf: [$ref]` beside `nullable: true` (no `type`) admits
        # no null in OAS 3.0.3, and openapi-core refused an evidence pack's `rule.calendar: null`.
        def nodes(node):
            if isinstance(node, dict):
                yield node
                for value in node.values():
                    yield from nodes(value)
            elif isinstance(node, list):
                for value in node:
                    yield from nodes(value)

        assert not [node for node in nodes(schema) if node.get("nullable") and "allOf" in node]
        calendar = schema["components"]["schemas"]["EvidenceRule"]["properties"]["calendar"]
        assert calendar["oneOf"] == [
            {"$ref": "#/components/schemas/EvidenceCalendar"},
            {"type": "object", "nullable": True, "enum": [None]},
        ]

    def test_a_decimal_strings_pattern_is_the_rule_the_server_applies(self, schema):
        # drf-spectacular's `^-?\d{0,10}(?:\.\d{0,2})?$` took "", "." and "5." (refused) and, in
        # Python, any script's digits ("١٢"); the server takes plain decimals (config.decimals).
        import re

        hours = schema["components"]["schemas"]["LedgerEntryRequest"]["properties"]["hours"]["anyOf"][0]
        assert hours["pattern"] == r"^-?[0-9]{1,10}(?:\.[0-9]{1,2})?$"
        for text in ("12.50", "-2.5", "7", "0000000001.25"):
            assert re.search(hours["pattern"], text), text
        for text in ("", ".", "5.", ".5", "1_0", "١٢", "+1", "1e1", " 1", "12.505"):
            assert not re.search(hours["pattern"], text), text
        value = schema["components"]["schemas"]["PatchedContractRequest"]["properties"]["contract_value"]
        assert value["anyOf"][0]["pattern"] == r"^-?[0-9]{1,14}(?:\.[0-9]{1,4})?$"


def _pascal(*parts: str) -> str:
    import re

    return "".join(word[:1].upper() + word[1:] for part in parts for word in re.split(r"[^0-9A-Za-z]+", part) if word)


def _inline_model_names(name: str, node):
    """The class names a client generator gives the inline objects under `node`: the parent's
    name and the property's (`Statement` + `totals`), `Item` for an array's items."""
    if not isinstance(node, dict) or "$ref" in node:
        return
    if node.get("type") == "object" or "properties" in node:
        yield name
        for prop, child in node.get("properties", {}).items():
            yield from _inline_model_names(_pascal(name, prop), child)
        if isinstance(node.get("additionalProperties"), dict):
            yield from _inline_model_names(_pascal(name, "additional_property"), node["additionalProperties"])
    elif node.get("type") == "array":
        yield from _inline_model_names(_pascal(name, "item"), node.get("items", {}))
    for combined in ("allOf", "anyOf", "oneOf"):
        for index, alternative in enumerate(node.get(combined, [])):
            yield from _inline_model_names(_pascal(name, f"type{index}"), alternative)


@pytest.mark.django_db
def test_csv_answers_are_documented_as_text(schema, api):
    # Found by an outside integrator: every CSV answer was documented with the JSON body's schema
    # (an array of objects; `work_orders/match` even a MatchResponse), so validating clients
    # refused them.
    documented = [
        (path, method, code, response["content"]["text/csv"]["schema"])
        for path, method, operation in operations(schema)
        if isinstance(operation, dict)
        for code, response in operation.get("responses", {}).items()
        if "text/csv" in response.get("content", {})
    ]
    assert len(documented) > 50
    assert all(node.get("type") == "string" and set(node) <= {"type", "description"} for *_, node in documented), [
        entry for entry in documented if entry[3].get("type") != "string"
    ]
    response = api("viewer").get("/api/v1/work_orders?format=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")


def test_the_rule_schema_names_are_an_enum(schema):
    # Found by an outside integrator: the route's `^escalation|penalty_clause$` matched
    # `escalationfoo`, which is a 404.
    parameters = schema["paths"]["/api/v1/schemas/{name}"]["get"]["parameters"]
    (parameter,) = [p for p in parameters if p["in"] == "path"]  # besides ?format=json
    assert parameter["in"] == "path" and parameter["required"] is True
    assert parameter["schema"] == {"type": "string", "enum": ["escalation", "penalty_clause"]}


class TestClientNames:
    def test_no_inline_object_takes_a_components_name(self, schema):
        # Found by an outside integrator: the per-currency component `StatementTotals` clashed with
        # the name openapi-python-client gives the inline `Statement.totals` map, and the client
        # dropped `Statement` altogether (a statement could not be read through it).
        components = schema["components"]["schemas"]
        clashes = [
            (component, prop, name)
            for component, node in components.items()
            for prop, child in node.get("properties", {}).items()
            for name in _inline_model_names(_pascal(component, prop), child)
            if name in components
        ]
        assert not clashes
        assert "StatementCurrencyTotals" in components

    def test_no_component_name_doubles_its_request_suffix(self, schema):
        # drf-spectacular adds `Request` to a request body's component: `MatchRequestSerializer`
        # read `MatchRequestRequest` (found by an outside integrator), `TokenRequestRequest` too.
        # (A signature request is a resource so named: its body is `SignatureRequestRequest`.)
        components = schema["components"]["schemas"]
        doubled = [name for name in components if name.endswith("RequestRequest")]
        assert doubled == ["SignatureRequestRequest"]
        assert {"MatchRequest", "TokenRequest", "RefreshRequest"} <= set(components)


class TestDescriptions:
    def test_no_toolkit_docstring_leaks_into_the_schema(self, schema):
        text = str(schema)
        for leak in ("Base for every resource serializer", "`source` (max 30) and `sourceID` (max 128) of resources"):
            assert leak not in text

    def test_every_query_parameter_is_described(self, schema):
        """Found by a regression sweep: the event stream's filters had empty descriptions."""
        bare = [
            (path, method, parameter["name"])
            for path, item in schema["paths"].items()
            for method, operation in item.items()
            if isinstance(operation, dict)
            for parameter in operation.get("parameters", [])
            if parameter.get("in") == "query" and not parameter.get("description", "").strip()
        ]
        assert bare == []

    def test_every_response_documents_the_rate_limit_headers(self, schema):
        limits = {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}
        for path, method, operation in operations(schema):
            for code, response in operation["responses"].items():
                if code in ("413", "414"):
                    # Refused before the caller is known, they carry none (tests/config/test_throttling.py);
                    # the document declared them (found by an outside integrator).
                    assert not limits & set(response.get("headers", {})), (method, path, code)
                    continue
                assert limits <= set(response["headers"]), (method, path, code)
                if code == "429":
                    assert "Retry-After" in response["headers"]

    def test_every_error_response_has_the_envelope(self, schema):
        for path, method, operation in operations(schema):
            for code, response in operation["responses"].items():
                if code.startswith(("4", "5")):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/Error"), (method, path, code)


@pytest.mark.django_db
class TestOfflineDocs:
    """Swagger UI and ReDoc load everything from the service itself (drf-spectacular-sidecar)."""

    @pytest.mark.parametrize("page", ["/api/v1/docs", "/api/v1/redoc"])
    def test_docs_reference_no_external_host_and_their_assets_answer(self, anon, page):
        import re

        response = anon.get(page)
        assert response.status_code == 200
        html = response.content.decode()
        assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
        assert assets, html
        for url in assets:
            assert not re.match(r"^(?:[a-z]+:)?//", url), f"{page} loads {url} from another host"
            assert anon.get(url if url.startswith("/") else f"{page}{url}").status_code == 200, url
        # Nothing in the page (inline scripts included) names another host.
        assert not re.search(r"https?://(?!testserver)", html), re.findall(r"https?://[^\s\"']+", html)

    def test_swagger_ui_script_points_at_the_schema(self, anon):
        script = anon.get("/api/v1/docs?script=").content.decode()
        assert "/api/v1/schema" in script and "https://" not in script


ROLES = ("viewer", "operator", "manager", "admin")


@pytest.mark.django_db
def test_each_operation_documents_the_least_role_the_service_requires(schema):
    """`x-required-role` (what the fuzzer picks its token by) is the truth: on every collection
    and report (GET without path parameters), the role just below it gets a 403 and the role
    itself does not."""
    from django.core.management import call_command
    from rest_framework.test import APIClient

    from tenancy.auth import issue_tokens
    from tenancy.models import Membership

    call_command("seed_demo", "--quiet")
    clients = {}
    for role in ROLES:
        membership = Membership.objects.filter(organization__slug="demo", role=role).select_related("user").first()
        clients[role] = APIClient()
        clients[role].credentials(HTTP_AUTHORIZATION=f"Bearer {issue_tokens(membership)['access']}")
    documented = {
        (path, method): operation.get("x-required-role")
        for path, method, operation in operations(schema)
        if isinstance(operation, dict) and "responses" in operation
    }
    assert documented[("/api/v1/members", "get")] == "admin"
    assert documented[("/api/v1/token", "post")] is None  # public
    assert {role for role in documented.values() if role} <= set(ROLES)
    checked = 0
    for (path, method), role in documented.items():
        if method != "get" or role is None or "{" in path or path.endswith("/stream"):
            continue
        allowed = clients[role].get(path, {"per_page": 1})
        assert allowed.status_code != 403, (path, role, allowed.content[:200])
        if role != "viewer":
            refused = clients[ROLES[ROLES.index(role) - 1]].get(path, {"per_page": 1})
            assert refused.status_code == 403, (path, role, refused.status_code)
        checked += 1
    assert checked >= 20
