"""The role wall comes before any lookup, in GraphQL as in REST: a member whose role may not make
a write is refused (FORBIDDEN, REST's 403) whatever the ids it names, so the answer never says
whether an id exists. Swept over every mutation of the schema, so a new one cannot be forgotten
(found by an attacker's sweep: `createAmendment`, `createSignatureRequest` and `createVisitPlan`
looked their contract up first and told a viewer NOT_FOUND for an unknown id, FORBIDDEN for a
known one, where REST answers 403 to both)."""

from __future__ import annotations

import pytest

from config.graphql.schema import schema
from tests.contracts.factories import make_contract

NO_SUCH_ID = 999_999_999


def _mutations():
    return schema.get_type_by_name("Mutation").fields


def _call(field) -> str:
    args = []
    for argument in field.arguments:
        if argument.python_name == "id" or argument.python_name.endswith("_id"):
            args.append(f"{argument.graphql_name or _camel(argument.python_name)}: {NO_SUCH_ID}")
        elif argument.python_name == "input":
            args.append("input: {}")
    name = field.graphql_name or _camel(field.python_name)
    call = f"{name}({', '.join(args)})" if args else name
    return f"mutation {{ r: {call} {{ __typename ... on OperationError {{ kind message }} }} }}"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@pytest.mark.django_db
def test_a_viewer_is_refused_every_mutation_before_any_id_is_looked_up(gql):
    viewer = gql("viewer")
    answers = {field.python_name: viewer(_call(field))["r"] for field in _mutations()}
    assert len(answers) >= 50
    refused = {name for name, answer in answers.items() if answer.get("kind") == "FORBIDDEN"}
    assert refused == set(answers), {name: a for name, a in answers.items() if name not in refused}


@pytest.mark.django_db
@pytest.mark.parametrize("mutation", ["createAmendment", "createSignatureRequest", "createVisitPlan"])
def test_a_nested_create_tells_a_viewer_the_same_for_a_known_and_an_unknown_contract(gql, org, mutation):
    viewer = gql("viewer")
    contract = make_contract(org, status="active")
    inputs = {
        "createAmendment": '{effectiveDate: "2027-01-01", reason: "r", changes: {name: "x"}}',
        "createSignatureRequest": '{name: "Signer", email: "signer@example.com"}',
        "createVisitPlan": '{summary: "Check"}',
    }
    selection = "{ __typename ... on OperationError { kind message } }"
    known, unknown = (
        viewer(f"mutation {{ r: {mutation}(contractId: {pk}, input: {inputs[mutation]}) {selection} }}")["r"]
        for pk in (contract.pk, NO_SUCH_ID)
    )
    assert known == unknown
    assert known["kind"] == "FORBIDDEN"
    assert known["message"] == "This needs the manager role or higher; your role is viewer."
