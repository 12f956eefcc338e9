"""The organization wall, swept over the whole schema by introspection (a new type cannot be
forgotten): another organization's objects are "not found" by every single get, absent from every
list and every nested list (even when their rows point at ours), and refused by every mutation
argument and every reference in a mutation's input."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import IntegrityError, models, transaction

from config.graphql.mutations import REFERENCES
from config.graphql.schema import schema
from tests.graphql.world import build_world

INTROSPECTION = """{ __schema {
  queryType { fields { name args { name type { kind name ofType { kind name } } } type { ...T } } }
  mutationType { fields { name args { name type { kind name ofType { kind name } } } type { ...T } } }
  types { kind name possibleTypes { name }
          fields { name args { name } type { ...T } }
          inputFields { name type { kind name ofType { kind name } } } }
} }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }"""


def _named(type_ref) -> tuple[str, bool]:
    """(the named type, whether a list is on the way) of a type reference."""
    is_list = False
    while type_ref.get("ofType"):
        is_list = is_list or type_ref["kind"] == "LIST"
        type_ref = type_ref["ofType"]
    return type_ref["name"], is_list


def model_of(type_name: str):
    definition = schema.get_type_by_name(type_name)
    origin = getattr(definition, "origin", None)
    django = getattr(origin, "__strawberry_django_definition__", None)
    return django.model if django else None


def _tenant_owned(model) -> bool:
    return model is not None and any(f.name == "organization" for f in model._meta.fields)


class Sweep:
    def __init__(self, gql, org, other_org, make_member):
        self.admin = gql("admin")
        self.org, self.other = org, other_org
        self.ours = build_world(org, self.admin.membership)
        self.theirs = build_world(other_org, make_member("admin", other_org))
        self._plant()
        body = self.admin(INTROSPECTION)["__schema"]
        self.types = {t["name"]: t for t in body["types"]}
        self.queries = body["queryType"]["fields"]
        self.mutations = body["mutationType"]["fields"]

    def _plant(self):
        """Point every foreign key of their rows at an object of ours: a nested list that is not
        scoped would then show their rows under our objects."""
        for label in self.theirs:
            model = apps.get_model(label)
            for field in model._meta.fields:
                if not isinstance(field, models.ForeignKey) or field.name == "organization":
                    continue
                target = field.related_model._meta.label
                if target not in self.ours:
                    continue
                try:
                    with transaction.atomic():
                        model.objects.filter(organization=self.other).update(**{field.attname: self.ours[target][0]})
                except IntegrityError:
                    pass  # a one-to-one already taken: that relation is planted by another row

    def their_ids(self, type_name: str) -> list[int]:
        model = model_of(type_name)
        assert model is not None, f"{type_name}: not a model type"
        ids = self.theirs.get(model._meta.label)
        assert ids, f"build_world has no {model._meta.label}: add one so the sweep covers {type_name}"
        return ids

    def is_theirs(self, type_name: str, pk) -> bool:
        model = model_of(type_name)
        if not _tenant_owned(model):
            return False
        return int(pk) in self.theirs.get(model._meta.label, [])


@pytest.fixture
def sweep(gql, org, other_org, make_member):
    return Sweep(gql, org, other_org, make_member)


def _id_selection(sweep: Sweep, type_name: str, depth: int) -> str:
    """`__typename id` and, to `depth`, every object field that has an id."""
    fields = sweep.types[type_name]["fields"] or []
    parts = ["__typename", "id"] if any(f["name"] == "id" for f in fields) else ["__typename"]
    if depth == 0:
        return " ".join(parts)
    for field in fields:
        name, _ = _named(field["type"])
        target = sweep.types.get(name)
        if target and target["kind"] == "OBJECT" and any(f["name"] == "id" for f in target["fields"] or []):
            parts.append(f"{field['name']} {{ {_id_selection(sweep, name, depth - 1)} }}")
    return " ".join(parts)


def _walk(value, found: list):
    if isinstance(value, dict):
        if "__typename" in value and "id" in value:
            found.append((value["__typename"], value["id"]))
        for item in value.values():
            _walk(item, found)
    elif isinstance(value, list):
        for item in value:
            _walk(item, found)


@pytest.mark.django_db
def test_every_single_get_says_not_found_for_their_ids(sweep):
    checked = 0
    for field in sweep.queries:
        if [a["name"] for a in field["args"]] != ["id"]:
            continue
        type_name, _ = _named(field["type"])
        for pk in sweep.their_ids(type_name):
            body = sweep.admin(f"{{ {field['name']}(id: {pk}) {{ id }} }}", errors=True)
            assert body["data"] is None, (field["name"], pk, body)
            assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", (field["name"], body)
            checked += 1
    assert checked >= 10


@pytest.mark.django_db
def test_no_list_or_nested_list_shows_their_objects(sweep):
    lists = 0
    for field in sweep.queries:
        type_name, _ = _named(field["type"])
        result_type = sweep.types[type_name]
        results = {f["name"]: f for f in result_type.get("fields") or []}.get("results")
        if results is None:
            continue
        if any(a["type"]["kind"] == "NON_NULL" for a in field["args"]):
            continue  # a page of one contract's (contractVisits): its wall is test_parity_pages_ids's
        item_type, _ = _named(results["type"])
        selection = _id_selection(sweep, item_type, 2)
        query = f"{{ {field['name']}(pagination: {{limit: 100}}) {{ totalCount results {{ {selection} }} }} }}"
        data = sweep.admin(query)[field["name"]]
        found: list = []
        _walk(data["results"], found)
        assert data["results"], f"{field['name']}: our organization has none, so the sweep proves nothing"
        leaked = [(t, pk) for t, pk in found if sweep.is_theirs(t, pk)]
        assert not leaked, (field["name"], leaked)
        model = model_of(item_type)
        assert data["totalCount"] == model.objects.filter(organization=sweep.org).count(), field["name"]
        lists += 1
    assert lists >= 10


def _reference_type(arg_name: str) -> str:
    """`contractId` -> `Contract`, `id` -> the mutation's own type."""
    base = arg_name.removesuffix("Id")
    return base[:1].upper() + base[1:]


# Mutations whose answer is not the object their `id` names.
ACTS_ON = {"pingWebhook": "Webhook", "redeliverWebhookEvents": "Webhook"}


def _mutation_type(sweep: Sweep, field) -> str:
    if field["name"] in ACTS_ON:
        return ACTS_ON[field["name"]]
    name, _ = _named(field["type"])
    union = sweep.types[name]
    if union["kind"] == "UNION":
        members = [t["name"] for t in union["possibleTypes"] if t["name"] not in ("OperationError", "Deleted")]
        if members:
            return members[0]
    # deleteX: the noun is the type
    return field["name"].removeprefix("delete")


def _minimal_input(sweep: Sweep, field) -> str:
    """A valid body for an action (REST validates the body before it looks the object up)."""
    input_arg = next((a for a in field["args"] if a["name"] == "input"), None)
    if input_arg is None:
        return ""
    names = {f["name"] for f in sweep.types[_named(input_arg["type"])[0]]["inputFields"]}
    return '{reason: "sweep"}' if "reason" in names and "name" not in names else "{}"


def _is_id_arg(arg) -> bool:
    return arg["name"] == "id" or arg["name"].endswith("Id")


def _own_id(sweep: Sweep, field, arg_name: str) -> int:
    type_name = _mutation_type(sweep, field) if arg_name == "id" else _reference_type(arg_name)
    return sweep.ours[model_of(type_name)._meta.label][0]


def _selection(sweep: Sweep, field) -> str:
    name, _ = _named(field["type"])
    return (
        "{ __typename ... on OperationError { kind message fields { path messages } } }"
        if sweep.types[name]["kind"] == "UNION"
        else "{ __typename }"
    )


@pytest.mark.django_db
def test_every_mutation_argument_refuses_their_ids(sweep):
    checked = 0
    for field in sweep.mutations:
        id_args = [a for a in field["args"] if a["name"] == "id" or a["name"].endswith("Id")]
        required_input = any(a["name"] == "input" and a["type"]["kind"] == "NON_NULL" for a in field["args"])
        for arg in id_args:
            type_name = _mutation_type(sweep, field) if arg["name"] == "id" else _reference_type(arg["name"])
            pk = sweep.their_ids(type_name)[0]
            others = [
                f"{a['name']}: {sweep.ours[model_of(_reference_type(a['name']))._meta.label][0]}"
                for a in id_args
                if a is not arg
            ]
            body = _minimal_input(sweep, field)
            args = ", ".join([f"{arg['name']}: {pk}", *others, *([f"input: {body}"] if body or required_input else [])])
            data = sweep.admin(f"mutation {{ {field['name']}({args}) {_selection(sweep, field)} }}")[field["name"]]
            assert data["__typename"] == "OperationError" and data["kind"] == "NOT_FOUND", (field["name"], data)
            checked += 1
    assert checked >= 15


@pytest.mark.django_db
def test_every_reference_in_a_mutation_input_refuses_their_ids(sweep):
    checked = 0
    for field in sweep.mutations:
        input_arg = next((a for a in field["args"] if a["name"] == "input"), None)
        if input_arg is None:
            continue
        input_type = sweep.types[_named(input_arg["type"])[0]]
        for ref in input_type["inputFields"]:
            if not ref["name"].endswith("Id") or _named(ref["type"])[0] != "ID":
                continue
            model = REFERENCES[(input_type["name"], ref["name"])]
            pk = sweep.theirs[model._meta.label][0]
            own = [f"{a['name']}: {_own_id(sweep, field, a['name'])}" for a in field["args"] if _is_id_arg(a)]
            args = ", ".join([*own, f"input: {{{ref['name']}: {pk}}}"])
            data = sweep.admin(f"mutation {{ {field['name']}({args}) {_selection(sweep, field)} }}")[field["name"]]
            assert data["__typename"] == "OperationError" and data["kind"] == "INVALID", (field["name"], ref, data)
            paths = {f["path"] for f in data["fields"]}
            assert ref["name"] in paths, (field["name"], ref["name"], data)
            checked += 1
    assert checked >= 5
