"""A template's items (`sla_rules`, `line_items`) are judged by their resources' own serializers,
and their errors named as every other error is: `sla_rules[1].priorities[0]`, the message the
SLA rule's own endpoint gives (found by an attacker's sweep: a bad priority in a template's rule
was `{"sla_rules[0].priorities": ["0"]}`, the index of the bad item given as its message)."""

from __future__ import annotations

import pytest

URL = "/api/v1/contract_templates"
RULE = {"name": "Respond in 4h", "metric": "response", "priorities": ["high"], "target_minutes": 240}
TEMPLATE = {"name": "Gold", "contract_type": "service_contract", "currency": "EUR"}

pytestmark = pytest.mark.django_db


def test_a_list_fields_error_in_an_item_names_the_item_and_its_index(api):
    client = api("manager")
    rules = [RULE, {**RULE, "priorities": ["high", "p9"]}]
    response = client.post(URL, {**TEMPLATE, "sla_rules": rules}, format="json")
    assert response.status_code == 422, response.content
    message = '"p9" is not a valid choice: one of critical, high, medium, low, planned.'
    assert response.json() == {"message": "Validation failed.", "errors": {"sla_rules[1].priorities[1]": [message]}}


def test_an_items_error_reads_as_the_rules_own_endpoint_writes_it(api, org):
    from tests.contracts.factories import make_contract

    client = api("manager")
    contract = make_contract(org)
    rule = {**RULE, "priorities": ["p9"]}
    own = client.post("/api/v1/sla_rules", {**rule, "contract_id": contract.pk}, format="json").json()["errors"]
    template = client.post(URL, {**TEMPLATE, "sla_rules": [rule]}, format="json").json()["errors"]
    assert template == {f"sla_rules[0].{path}": messages for path, messages in own.items()}
