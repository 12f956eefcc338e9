"""A contract covers only its own counterparty's assets, also when the asset moves to another
counterparty at the same moment (PostgreSQL, a fixed interleaving).

The move holds the organization's event order and checks that no contract covers the asset; the
contract's create (or its PATCH of `covered_asset_ids`) checked the asset's counterparty as its
serializer had read it, before the move committed, and then waited for the order at its event:
both answered 2xx, and the contract covered another counterparty's asset. Forced here: the move is
open while the request checks, and commits once the request waits on it (as
tests/config/test_lost_create_race.py).
"""

from __future__ import annotations

import pytest
from django.db import connection
from model_bakery import baker

from contracts.assets import update_asset
from contracts.models import Asset, Contract, Counterparty
from tests.config.test_lost_create_race import contract_body, race
from tests.contracts.factories import make_contract

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent transactions (SQLite has one writer)"),
]


@pytest.fixture
def parties(org):
    return baker.make(Counterparty, organization=org, kind="customer", _quantity=2)


def moved(asset: Asset, to: Counterparty):
    return lambda: update_asset(instance=asset, actor=None, data={"counterparty": to})


def test_a_contract_created_while_its_asset_moves_away_is_told_so(org, api, parties):
    ours, theirs = parties
    asset = baker.make(Asset, organization=org, counterparty=ours, name="Pump 1")
    body = {**contract_body(ours), "covered_asset_ids": [asset.pk]}
    _, response = race(api("manager"), "post", "/api/v1/contracts", body, moved(asset, theirs))
    assert response.status_code == 422, response.content
    assert response.json()["errors"] == {"covered_asset_ids": [f"Asset {asset.pk} belongs to another counterparty."]}
    assert not Contract.objects.exists()


def test_a_draft_given_an_asset_that_moves_away_meanwhile_is_told_so(org, api, parties):
    ours, theirs = parties
    asset = baker.make(Asset, organization=org, counterparty=ours, name="Pump 1")
    contract = make_contract(org, counterparty=ours)
    url = f"/api/v1/contracts/{contract.pk}"
    _, response = race(api("manager"), "patch", url, {"covered_asset_ids": [asset.pk]}, moved(asset, theirs))
    assert response.status_code == 422, response.content
    assert response.json()["errors"] == {"covered_asset_ids": [f"Asset {asset.pk} belongs to another counterparty."]}
    assert not contract.covered_assets.exists()
