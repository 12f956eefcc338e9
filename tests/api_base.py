"""The shared API test base (NetBox's API test cases are the model).

Every endpoint's tests subclass `ResourceAPITests` and declare what the resource is; the base
then checks the cross-cutting conventions once, the same way for every resource:

- list (bare array, pagination headers, Link), get, create (201 + Location), update (PATCH);
- 401 without a token, 403 for a role too low to read or write;
- another organization's object: 404 on get, update, delete and every detail action, and
  absent from the list;
- `?fields=` (default collection fields, picked fields, 400 for an unknown one);
- `?sort=` (every allowed key, 400 for a key not allowed);
- every declared filter (each must have a case here, so a new filter cannot go untested),
  400 for an unknown filter and for a malformed value;
- a query count that does not grow with the page size, and equals the declared count.

Read-only resources subclass `ResourceAPITests`; resources with POST and PATCH subclass
`WritableResourceAPITests`, which adds the write conventions. A subclass declares:

    url, factory(org, **overrides) -> instance, create_data, update_data,
    write_role, read_role (default viewer), default_fields, sort_keys,
    filter_cases: [(param, value, [labels of the instances that must match])] (value may be a
        function of the {label: instance} dict, for ids only known at run time),
    filter_objects(org) -> {label: instance}, malformed_filters: [(param, value)],
    list_queries (with a comment naming each query, the membership cached), detail_actions: [(name, body)].
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import resolve
from rest_framework.test import APIClient

from config.api.pagination import MAX_PAGE
from tenancy.models import ROLE_RANK, Role

ROLES = [Role.VIEWER, Role.OPERATOR, Role.MANAGER, Role.ADMIN]


def role_below(role: str) -> str | None:
    rank = ROLE_RANK[Role(role)]
    return ROLES[rank - 1].value if rank > 0 else None


# --- Robustness (issue 8): careless and hostile input through the shared toolkit ----------------
# Mixed into both bases below, so every resource's test class runs these too.


HUGE_NUMBERS = ("9223372036854775808", "99999999999999999999999")


class RobustReadTests:
    def test_huge_page_is_400_naming_the_bound(self, api, org):
        client = api(self.read_role)
        for value in HUGE_NUMBERS:
            response = self.get_list(client, page=value)
            assert response.status_code == 400, (value, response.content)
            body = response.json()
            assert "page" in body["errors"] and str(MAX_PAGE) in body["message"]

    def test_page_past_the_last_is_an_empty_array_with_headers(self, api, org):
        self.factory(org)
        response = self.get_list(api(self.read_role), page=MAX_PAGE)
        assert response.status_code == 200, response.content
        assert response.json() == []
        assert response["X-Pagination-Current-Page"] == str(MAX_PAGE)
        assert 'rel="last"' in response["Link"]

    def integer_filters(self) -> list[str]:
        """`ids`, every reference filter and every integer filter."""
        from django.db import models
        from django_filters.utils import get_model_field

        filterset_class = self.view_class().filterset_class
        model = filterset_class._meta.model
        names = [
            name
            for name, filter_ in filterset_class.base_filters.items()
            if isinstance(get_model_field(model, filter_.field_name), (models.IntegerField, models.ForeignKey))
        ]
        assert "ids" in names
        return names

    def temporal_filters(self, kind) -> list[str]:
        """The filters on a field of `kind` (a date field: dates, not instants)."""
        from django.db import models
        from django_filters.utils import get_model_field

        filterset_class = self.view_class().filterset_class
        model = filterset_class._meta.model
        fields = {name: get_model_field(model, f.field_name) for name, f in filterset_class.base_filters.items()}
        instants = [name for name, field in fields.items() if isinstance(field, models.DateTimeField)]
        if kind is models.DateTimeField:
            return instants
        return [name for name, field in fields.items() if isinstance(field, models.DateField) and name not in instants]

    def test_dates_and_instants_are_iso_8601_only(self, api, org):
        """Found by an outside sweep: Django's form fields also tried the locale formats, so
        `expiry_date=<01/12/2026` was read as 12 January, where GraphQL refuses it."""
        from django.db import models

        client = api(self.read_role)
        cases = {
            models.DateField: (["2026-12-20", ">=2026-12-01<2027-01-01"], ["12/20/2026", "Dec 20 2026", "<01/12/2026"]),
            models.DateTimeField: (
                ["2026-12-20", "2026-12-20T10:00:00Z", ">2026-12-20 10:00"],
                ["11/30/2026 23:00", "12/20/2026", "Dec 20 2026", "2026-12-20T1\u0660:00Z"],
            ),
        }
        for kind, (taken, refused) in cases.items():
            for name in self.temporal_filters(kind):
                for value in taken:
                    response = self.get_list(client, **{name: value})
                    assert response.status_code == 200, (name, value, response.content)
                for value in refused:
                    response = self.get_list(client, **{name: value})
                    assert response.status_code == 400, (name, value, response.content)
                    assert name in response.json()["errors"]

    def test_huge_ids_are_400_naming_the_filter(self, api, org):
        """Beyond the database's integers."""
        client = api(self.read_role)
        for name in self.integer_filters():
            for value in HUGE_NUMBERS:
                response = self.get_list(client, **{name: value})
                assert response.status_code == 400, (name, value, response.content)
                assert name in response.json()["errors"]

    def test_ids_and_integers_are_ascii_digits_only(self, api, org):
        """Found by an outside sweep: `ids=1_0` matched id 10 and `ids=١` id 1 (`int()`'s reading),
        where pages, cursors, bodies and GraphQL refuse them."""
        client = api(self.read_role)
        for name in self.integer_filters():
            for value in ("1_0", "\u0661", "+1", "1.0", "--1", "!1_0", ">=\u0661"):
                response = self.get_list(client, **{name: value})
                assert response.status_code == 400, (name, value, response.content)
                assert name in response.json()["errors"]

    def test_huge_id_in_the_path_is_404(self, api, org):
        for value in HUGE_NUMBERS:
            response = api(self.read_role).get(f"{self.url}/{value}")
            assert response.status_code == 404, (value, response.content)
            assert response.json() == {"message": "Not found."}

    def test_blank_fields_is_400(self, api, org):
        obj = self.factory(org)
        client = api(self.read_role)
        for value in ("", "  ", ","):
            response = self.get_list(client, fields=value)
            assert response.status_code == 400, (value, response.content)
            assert "fields" in response.json()["errors"]
            assert client.get(f"{self.detail(obj)}?fields={value}").status_code == 400

    def test_double_dash_sort_is_400(self, api, org):
        key = self.sort_keys[0] if self.sort_keys else "id"
        response = self.get_list(api(self.read_role), sort=f"--{key}")
        assert response.status_code == 400, response.content
        assert response.json() == {"message": f"Sorting not allowed on fields: -{key}"}


class RobustWriteTests:
    def test_oversized_body_is_413_naming_the_limit(self, api, org):
        body = json.dumps({**(self.create_data or {}), "remarks": "x" * (3 * 1024 * 1024)})
        response = api(self.write_role).post(self.url, body, content_type="application/json")
        assert response.status_code == 413, response.content[:200]
        assert "MAX_REQUEST_BYTES" in response.json()["message"]

    def test_deeply_nested_json_is_400(self, api, org):
        depth = 100_000
        response = api(self.write_role).post(self.url, "[" * depth + "]" * depth, content_type="application/json")
        assert response.status_code == 400, response.content[:200]
        assert "Malformed" in response.json()["message"]

    def test_wrong_json_types_are_422_naming_the_field(self, api, org):
        """Each writable scalar field of the create data, sent with a JSON type it does not take."""
        serializer = self.view_class().serializer_class(context={"request": None})
        client = api(self.write_role)
        for name, value in (self.create_data or {}).items():
            wrong = wrong_type_for(serializer.fields[name], value)
            if wrong is _NO_WRONG_TYPE:
                continue
            response = client.post(self.url, {**self.create_data, name: wrong}, format="json")
            assert response.status_code == 422, (name, wrong, response.content)
            assert name in response.json()["errors"], (name, response.json())

    def test_a_value_not_among_the_choices_is_422_naming_them(self, api, org):
        # Found by an outside integrator: `"labour" is not a valid choice.` on a line item's kind,
        # with nothing to say what is. Each choice field of the create data, sent a value it does
        # not take: the error names the values it does (as an unknown field's names the fields).
        from rest_framework import serializers

        serializer = self.view_class().serializer_class(context={"request": None})
        client = api(self.write_role)
        for name in self.create_data or {}:
            field = serializer.fields[name]
            if not isinstance(field, serializers.ChoiceField) or field.read_only:
                continue
            response = client.post(self.url, {**self.create_data, name: "no_such_choice"}, format="json")
            assert response.status_code == 422, (name, response.content)
            choices = ", ".join(str(choice) for choice in field.choice_strings_to_values if choice != "")
            message = response.json()["errors"][name][0]
            assert message.startswith(f'"no_such_choice" is not a valid choice: one of {choices}'), (name, message)


_NO_WRONG_TYPE = object()


def wrong_type_for(field, value):
    """A JSON value of the wrong type for a serializer field (string for a number, number for a
    string, string for a boolean), or _NO_WRONG_TYPE where any JSON value is acceptable."""
    from rest_framework import serializers

    if isinstance(field, serializers.BooleanField):
        return "yes"
    if isinstance(field, (serializers.IntegerField, serializers.RelatedField)):
        return str(value) if value is not None else "1"
    if isinstance(field, (serializers.DecimalField, serializers.FloatField)):
        return True
    if isinstance(field, (serializers.CharField, serializers.ChoiceField, serializers.DateField)):
        return 123
    if isinstance(field, serializers.DateTimeField):
        return "2026-03-01T09:00:00"  # no offset
    return _NO_WRONG_TYPE


# --- end of the robustness block -----------------------------------------------------------------


@pytest.mark.django_db
class ResourceAPITests(RobustReadTests):
    url: str
    create_data: dict | None = None
    update_data: dict | None = None
    read_role = "viewer"
    write_role = "manager"
    default_fields: list[str] = []
    sort_keys: list[str] = []
    default_sort: str = "name"
    filter_cases: list[tuple[str, str, list[str]]] = []
    malformed_filters: list[tuple[str, str]] = []
    list_queries: int
    detail_actions: list[tuple[str, dict]] = []
    deletable = False

    # --- to declare -------------------------------------------------------------------------

    def factory(self, org, **overrides):
        raise AssertionError("A resource's tests must say how to make one (factory).")

    def filter_objects(self, org) -> dict[str, object]:
        return {}

    def check_created(self, instance, data: dict) -> None:
        """Resource-specific checks of a created object (optional)."""

    # --- helpers ----------------------------------------------------------------------------

    def detail(self, obj) -> str:
        return f"{self.url}/{obj.pk}"

    def view_class(self):
        return resolve(self.url).func.cls

    def get_list(self, client: APIClient, **params):
        query = f"?{urlencode(params)}" if params else ""
        return client.get(f"{self.url}{query}")

    # --- list and get -----------------------------------------------------------------------

    def test_list_is_a_bare_array_with_pagination_headers(self, api, org):
        client = api(self.read_role)
        objects = [self.factory(org) for _ in range(3)]
        total = type(objects[0]).objects.filter(organization=org).count()
        response = self.get_list(client, per_page=2)
        assert response.status_code == 200, response.content
        body = response.json()
        assert isinstance(body, list) and len(body) == 2
        assert response["X-Pagination-Per-Page"] == "2"
        assert response["X-Pagination-Current-Page"] == "1"
        assert response["X-Pagination-Total-Entries"] == str(total)
        assert int(response["X-Pagination-Total-Pages"]) >= 2
        links = response["Link"]
        for rel in ("first", "next", "last"):
            assert f'rel="{rel}"' in links
        assert 'rel="prev"' not in links
        second = self.get_list(client, per_page=2, page=2)
        assert 'rel="prev"' in second["Link"]
        assert {o["id"] for o in body}.isdisjoint({o["id"] for o in second.json()})

    def test_pagination_bounds_are_400(self, api, org):
        client = api(self.read_role)
        for value in ("0", "101", "abc", "-1"):
            response = self.get_list(client, per_page=value)
            assert response.status_code == 400, value
            assert "per_page" in response.json()["message"]
        assert self.get_list(client, page="0").status_code == 400

    def test_get_returns_all_fields(self, api, org):
        obj = self.factory(org)
        response = api(self.read_role).get(self.detail(obj))
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["id"] == obj.pk
        assert set(self.default_fields) <= set(body)

    def test_unknown_id_is_404(self, api, org):
        response = api(self.read_role).get(f"{self.url}/999999999")
        assert response.status_code == 404
        assert response.json() == {"message": "Not found."}

    def test_a_single_resource_takes_no_collection_parameter(self, api, org):
        """Found by an outside sweep: the filters and sort ran on a single resource too (DRF's
        get_object()), so `/counterparties/1?kind=vendor` was a 404 (and a PATCH or an action with
        it "not found"), and `sort`, `page` and `per_page=0` were ignored. The OpenAPI document
        gives a single GET `fields` and `format`: anything else is a 400 naming it."""
        obj = self.factory(org)
        client = api("admin")
        filters = [name for name in self.view_class().filterset_class.base_filters if name != "ids"]
        cases = [{"ids": obj.pk + 1000}, {"ids": obj.pk}, {"sort": "id"}, {"page": "1"}, {"per_page": "0"}]
        cases += [{name: "!"} for name in filters]
        for params in cases:
            paths = [self.detail(obj)] + [f"{self.detail(obj)}/{action}" for action, _ in self.detail_actions]
            for path in paths:
                url = f"{path}?{urlencode(params)}"
                response = client.get(url) if path == self.detail(obj) else client.post(url, {}, format="json")
                assert response.status_code == 400, (url, response.content)
                assert response.json()["errors"] == {name: ["Unknown query parameter."] for name in params}, url
        assert client.get(f"{self.detail(obj)}?fields=id").json() == {"id": obj.pk}

    # --- auth ---------------------------------------------------------------------------------

    def test_401_without_token(self, anon, org):
        obj = self.factory(org)
        for response in (anon.get(self.url), anon.get(self.detail(obj))):
            assert response.status_code == 401
            assert response["Content-Type"].startswith("application/json")
            assert response.json()["message"]
        if self.create_data is not None:
            assert anon.post(self.url, self.create_data, format="json").status_code == 401

    def test_403_for_a_role_too_low(self, api, org):
        below_read = role_below(self.read_role)
        if below_read:
            assert self.get_list(api(below_read)).status_code == 403
        below_write = role_below(self.write_role)
        if self.create_data is not None and below_write:
            response = api(below_write).post(self.url, self.create_data, format="json")
            assert response.status_code == 403
            assert self.write_role in response.json()["message"]
        if self.update_data is not None and below_write:
            obj = self.factory(org)
            assert api(below_write).patch(self.detail(obj), self.update_data, format="json").status_code == 403

    def test_an_operation_that_does_not_exist_is_405_for_every_reader(self, api, org):
        # Found by an outside sweep: a role too low for the resource's writes got a 403 naming a
        # role (even admin for some), as if the operation existed. A role that may not read the
        # resource still gets its 403, and learns nothing of the methods.
        readers = ROLES[[role.value for role in ROLES].index(self.read_role) :]
        for role in ROLES:
            response = api(role.value).put(self.url, {}, format="json")
            if role in readers:
                assert response.status_code == 405, (role, response.content)
                assert "PUT" not in response["Allow"] and "GET" in response["Allow"]
            else:
                assert response.status_code == 403, (role, response.content)

    # --- tenancy ------------------------------------------------------------------------------

    def test_other_organizations_object_is_404_everywhere(self, api, org, other_org):
        theirs = self.factory(other_org)
        mine = self.factory(org)
        client = api("admin")
        assert client.get(self.detail(theirs)).status_code == 404
        listed = {o["id"] for o in self.get_list(client, per_page=100).json()}
        assert mine.pk in listed and theirs.pk not in listed
        if self.update_data is not None:
            assert client.patch(self.detail(theirs), self.update_data, format="json").status_code == 404
        if self.deletable:
            assert client.delete(self.detail(theirs)).status_code == 404
        for action, body in self.detail_actions:
            response = client.post(f"{self.detail(theirs)}/{action}", body, format="json")
            assert response.status_code == 404, (action, response.content)
            # an invalid body too: the object is looked for first (found by an outside sweep: a
            # 422 on the missing reason, as if the contract existed)
            response = client.post(f"{self.detail(theirs)}/{action}", {"reason": ["x"]}, format="json")
            assert response.status_code == 404, (action, response.content)
        # ... and the other organization's members cannot see ours.
        assert api("admin", org=other_org).get(self.detail(mine)).status_code == 404

    # --- fields -------------------------------------------------------------------------------

    def test_default_collection_fields(self, api, org):
        self.factory(org)
        body = self.get_list(api(self.read_role)).json()
        assert set(body[0]) == set(self.default_fields)

    def test_fields_picks_and_keeps_id(self, api, org):
        obj = self.factory(org)
        picked = [f for f in self.default_fields if f != "id"][:2]
        body = self.get_list(api(self.read_role), fields=",".join(picked)).json()
        assert set(body[0]) == {"id", *picked}
        single = api(self.read_role).get(f"{self.detail(obj)}?fields={picked[0]}").json()
        assert set(single) == {"id", picked[0]}

    def test_unknown_field_is_400(self, api, org):
        response = self.get_list(api(self.read_role), fields="id,no_such_field")
        assert response.status_code == 400
        assert "no_such_field" in response.json()["message"]

    # --- sort ---------------------------------------------------------------------------------

    def test_every_sort_key_works_both_ways(self, api, org):
        for _ in range(3):
            self.factory(org)
        client = api(self.read_role)
        for key in self.sort_keys:
            for direction in ("", "-"):
                response = self.get_list(client, sort=f"{direction}{key}")
                assert response.status_code == 200, (key, response.content)

    def sort_value(self, key: str, item: dict):
        """The value a sort key orders by, read from a listed resource (override for nested keys)."""
        return item[key]

    def test_sort_orders_by_the_key(self, api, org):
        for _ in range(3):
            self.factory(org)
        client = api(self.read_role)
        readable = self.view_class().serializer_class.readable_field_names()
        for key in ["id", *self.sort_keys]:
            fields = {"fields": key} if key in readable else {}
            for descending in (False, True):
                body = self.get_list(client, sort=f"{'-' if descending else ''}{key}", **fields).json()
                values = [self.sort_value(key, item) for item in body]
                values = [v for v in values if v is not None]
                assert values == sorted(values, reverse=descending), (key, descending, values)

    def test_default_sort(self, api, org):
        for _ in range(3):
            self.factory(org)
        client = api(self.read_role)
        default_sort = client.get(self.url.split("?")[0]).json()
        assert default_sort == self.get_list(client, sort=self.default_sort).json()

    def test_sort_not_allowed_is_400(self, api, org):
        response = self.get_list(api(self.read_role), sort="-no_such_key")
        assert response.status_code == 400
        assert response.json() == {"message": "Sorting not allowed on fields: no_such_key"}

    # --- filters ------------------------------------------------------------------------------

    def test_every_declared_filter_has_a_case(self):
        filterset_class = self.view_class().filterset_class
        declared = set(filterset_class.base_filters) if filterset_class else set()
        covered = {param for param, _, _ in self.filter_cases}
        assert declared <= covered, f"filters without a test case: {sorted(declared - covered)}"

    def test_filter_cases(self, api, org, other_org):
        objects = self.filter_objects(org)
        self.filter_objects(other_org)  # never leaks into our results
        client = api(self.read_role)
        for param, value, expected in self.filter_cases:
            if callable(value):
                value = value(objects)
            elif param == "ids":
                value = ",".join(str(objects[label].pk) for label in value.split(","))
            response = self.get_list(client, **{param: value}, per_page=100)
            assert response.status_code == 200, (param, value, response.content)
            got = {o["id"] for o in response.json()}
            want = {objects[label].pk for label in expected}
            assert got == want, (param, value, sorted(got), sorted(want))

    def test_unknown_and_malformed_filters_are_400(self, api, org):
        client = api(self.read_role)
        response = self.get_list(client, no_such_filter="x")
        assert response.status_code == 400
        assert "no_such_filter" in response.json()["errors"]
        for param, value in [*self.malformed_filters, ("ids", "1,abc")]:
            response = self.get_list(client, **{param: value})
            assert response.status_code == 400, (param, value, response.content)
            assert param in response.json()["errors"]

    def test_a_choice_filter_names_its_values(self, api, org):
        # Found by an outside integrator: `?priority=urgent` said only that it was not one of the
        # available choices. Every filter on a field with choices names them, as the OpenAPI does.
        from django_filters.utils import get_model_field

        from config.api.filters import PredicateFilter

        client = api(self.read_role)
        filterset_class = self.view_class().filterset_class
        for name, filter_ in filterset_class.base_filters.items():
            if not isinstance(filter_, PredicateFilter):
                continue
            choices = get_model_field(filterset_class._meta.model, filter_.field_name).choices
            if not choices:
                continue
            values = [str(value) for value, _ in choices if value != ""]
            response = self.get_list(client, **{name: f"{values[0]},no_such_choice"})
            assert response.status_code == 400, (name, response.content)
            assert response.json()["errors"][name] == [
                f'"no_such_choice" is not a valid choice: one of {", ".join(values)}.'
            ], name

    def test_a_repeated_parameter_is_400_asking_for_one_value(self, api, org):
        # Found by an outside integrator: `?status=active&status=draft` answered for drafts only
        # (Django reads a repeated parameter's last value). Many HTTP clients send lists so; the
        # answer must not be silently wrong.
        first, second = self.factory(org), self.factory(org)
        client = api(self.read_role)
        repeated = [
            ("ids", [str(first.pk), str(second.pk)]),
            ("per_page", ["5", "10"]),
        ]
        for param, values in repeated:
            for extra in ([], [("format", "csv")]):  # JSON and CSV alike
                response = client.get(f"{self.url}?{urlencode([*extra, *((param, v) for v in values)])}")
                assert response.status_code == 400, (param, response.content[:300])
                body = response.json()
                assert body["message"].startswith(f"Repeated query parameter: {param};"), body
                if param == "per_page":  # one value, never a list: `per_page=5,10` would be no better
                    assert body["errors"] == {param: ["Given 2 times; send it once."]}, body
                    continue
                assert "comma-separated" in body["message"], body
                assert body["errors"] == {
                    param: [f"Given 2 times; send one value, comma-separated ({param}={','.join(values)})."]
                }, body

    def test_repeated_fields_and_sort_are_one_comma_separated_list(self, api, org):
        # Found by an outside integrator: generated clients (openapi-python-client) ignore
        # `explode: false` and send `?fields=id&fields=name`, which was a 400. `fields` and `sort`
        # are lists and nothing else, so their repeats are the comma-separated list.
        first = self.factory(org)
        self.factory(org)
        client = api(self.read_role)
        field = next(name for name in self.default_fields if name != "id")
        for extra in ([], [("format", "csv")]):  # JSON and CSV alike
            # The sort's repeat is read as `sort=-id,id`: the 400 of a key given twice.
            response = client.get(f"{self.url}?{urlencode([*extra, ('sort', '-id'), ('sort', 'id')])}")
            assert response.status_code == 400, response.content[:300]
            assert response.json()["message"] == "Sorting on a field twice: id", response.content
            pairs = [*extra, ("fields", "id"), ("fields", field), ("sort", "-id")]
            joined = [*extra, ("fields", f"id,{field}"), ("sort", "-id")]
            response = client.get(f"{self.url}?{urlencode(pairs)}")
            expected = client.get(f"{self.url}?{urlencode(joined)}")
            assert response.status_code == expected.status_code == 200, response.content[:300]
            if extra:
                assert b"".join(response.streaming_content) == b"".join(expected.streaming_content)
            else:
                assert response.json() == expected.json()
                assert set(response.json()[0]) == {"id", field}
        response = client.get(f"{self.detail(first)}?{urlencode([('fields', 'id'), ('fields', field)])}")
        assert response.status_code == 200 and set(response.json()) == {"id", field}, response.content

    # --- queries ------------------------------------------------------------------------------

    def test_query_count_does_not_grow_with_page_size(self, api, org):
        for _ in range(12):
            self.factory(org)
        client = api(self.read_role)
        # The first request caches the membership behind the token (issue 15); the count is
        # that of every later request. (tests/tenancy/test_membership_cache.py covers the cache.)
        assert self.get_list(client, per_page=1).status_code == 200
        counts = []
        for per_page in (2, 12):
            with CaptureQueriesContext(connection) as queries:
                response = self.get_list(client, per_page=per_page)
            assert response.status_code == 200
            counts.append(len(queries))
        assert counts[0] == counts[1] == self.list_queries, [q["sql"] for q in queries.captured_queries]


class WritableResourceAPITests(ResourceAPITests, RobustWriteTests):
    """A resource with POST and PATCH: the write conventions on top of the read ones."""

    # --- writes -------------------------------------------------------------------------------

    def test_create(self, api, org):
        response = api(self.write_role).post(self.url, self.create_data, format="json")
        assert response.status_code == 201, response.content
        body = response.json()
        assert response["Location"].endswith(f"{self.url}/{body['id']}")
        fetched = api(self.read_role).get(response["Location"])
        assert fetched.status_code == 200 and fetched.json() == body
        self.check_created(body, self.create_data)

    def test_create_rejects_read_only_and_unknown_fields(self, api, org):
        data = {**self.create_data, "id": 12345, "created_at": "2020-01-01T00:00:00Z", "no_such_field": 1}
        response = api(self.write_role).post(self.url, data, format="json")
        assert response.status_code == 422, response.content
        errors = response.json()["errors"]
        assert "read-only" in errors["id"][0] and "Unknown" in errors["no_such_field"][0]

    def test_malformed_json_is_400(self, api, org):
        response = api(self.write_role).post(self.url, '{"name": ', content_type="application/json")
        assert response.status_code == 400
        assert "Malformed" in response.json()["message"]
        response = api(self.write_role).post(self.url, "[1, 2]", content_type="application/json")
        assert response.status_code == 422

    def test_a_write_takes_no_list_parameter(self, api, org):
        """Found by an outside sweep: `POST /counterparties?per_page=0&sort=zzz&fields=nope` was a
        201 with the full resource. A write answers with the whole resource and takes no `fields`."""
        client = api(self.write_role)
        obj = self.factory(org)
        model = type(obj)
        count = model.objects.count()
        writes = [("post", self.url, self.create_data)]
        if self.update_data is not None:
            writes.append(("patch", self.detail(obj), self.update_data))
        if self.deletable:
            writes.append(("delete", self.detail(obj), None))
        for method, path, body in writes:
            for name, value in (("per_page", "0"), ("sort", "zzz"), ("page", "1"), ("ids", str(obj.pk))):
                response = getattr(client, method)(f"{path}?{name}={value}", body, format="json")
                assert response.status_code == 400, (method, name, response.content)
                assert response.json()["errors"] == {name: ["Unknown query parameter."]}
            response = getattr(client, method)(f"{path}?fields=id", body, format="json")
            assert response.status_code == 400, (method, response.content)
            assert "fields is for reads" in response.json()["errors"]["fields"][0]
        assert model.objects.count() == count

    def test_update(self, api, org):
        obj = self.factory(org)
        response = api(self.write_role).patch(self.detail(obj), self.update_data, format="json")
        assert response.status_code == 200, response.content
        body = response.json()
        for key, value in self.update_data.items():
            if not key.endswith("_id"):
                assert body[key] == value, key
