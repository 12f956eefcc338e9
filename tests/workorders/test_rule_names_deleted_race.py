"""A contract rule never names a counterparty, an asset or a contract deleted under it (PostgreSQL,
a fixed interleaving; the twelfth round's "not done").

A delete holds the organization's event order while it looks for the rules naming its row
(`contracts.references`, `workorders.rules.rules_naming`); a rule's create or edit checked the ids
of its criteria in its serializer, before its transaction, and waited for the order only at its
event. So a rule written while its counterparty was deleted answered 201 and named a row that no
longer existed (its criteria then matched nothing, and its next edit was refused). Forced here: the
delete is open while the request checks, and commits once the request waits on it (as
tests/config/test_lost_create_race.py).
"""

from __future__ import annotations

import pytest
from django.db import connection
from model_bakery import baker

from contracts.models import Asset, Counterparty
from contracts.services import delete_counterparty
from tests.config.test_lost_create_race import race
from tests.contracts.factories import make_contract
from workorders.models import ContractRule

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent transactions (SQLite has one writer)"),
]


def test_a_rule_created_while_the_counterparty_it_names_is_deleted_is_told_so(org, api):
    contract = make_contract(org, status="active")
    party = baker.make(Counterparty, organization=org)
    body = {
        "name": "Northwind's jobs",
        "sequence": 1,
        "criteria": [{"field": "counterparty", "operator": "equals", "value": party.pk}],
        "outcome": "contract",
        "contract_id": contract.pk,
    }
    _, response = race(
        api("manager"),
        "post",
        "/api/v1/contract_rules",
        body,
        lambda: delete_counterparty(instance=party, actor=None),
    )
    assert response.status_code == 422, response.content
    assert response.json()["errors"] == {"criteria[0].value": [f"Counterparty {party.pk} does not exist."]}
    assert not ContractRule.objects.exists()


def test_a_rule_edited_to_name_an_asset_deleted_meanwhile_is_told_so(org, api):
    from contracts.assets import delete_asset

    contract = make_contract(org, status="active")
    asset = baker.make(Asset, organization=org, counterparty=contract.counterparty)
    rule = ContractRule.objects.create(
        organization=org, name="All", sequence=1, criteria=[], outcome="contract", contract=contract
    )
    criteria = [{"field": "asset", "operator": "in", "value": [asset.pk]}]
    _, response = race(
        api("manager"),
        "patch",
        f"/api/v1/contract_rules/{rule.pk}",
        {"criteria": criteria},
        lambda: delete_asset(instance=asset, actor=None),
    )
    assert response.status_code == 422, response.content
    assert response.json()["errors"] == {"criteria[0].value": [f"Asset {asset.pk} does not exist."]}
    assert ContractRule.objects.get(pk=rule.pk).criteria == []
