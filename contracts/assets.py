"""Writes on assets (issue 13): the equipment and sites of counterparties that contracts cover.

Each write records its event in the same transaction, like every service of the project.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import ProtectedError

from config.errors import Conflict, Unprocessable
from events.feed import locked
from events.services import record_event, save_changes, snapshot

from .models import Asset
from .references import refuse_if_named

ASSET_FIELDS = [
    "name", "kind", "serial_number", "counterparty_id", "site", "location", "remarks", "source", "source_id",
]  # fmt: skip


def _check_counterparty_move(asset: Asset, data: dict) -> None:
    """An asset covered by contracts stays with its counterparty (contracts cover their own party's assets)."""
    if "counterparty" not in data or data["counterparty"].pk == asset.counterparty_id:
        return
    covering = list(asset.covering_contracts.values_list("reference", flat=True)[:5])
    if covering:
        raise Unprocessable(
            "The asset is covered by contracts of its counterparty; it cannot move to another one.",
            {"counterparty_id": [f"Covered by {', '.join(covering)}."]},
        )


@transaction.atomic
def create_asset(*, organization, actor, data: dict) -> Asset:
    asset = Asset.objects.create(organization=organization, **data)
    record_event(type="asset.created", obj=asset, actor=actor, payload=snapshot(asset, ASSET_FIELDS))
    return asset


@transaction.atomic
def update_asset(*, instance: Asset, actor, data: dict) -> Asset:
    asset = locked(Asset, instance)
    _check_counterparty_move(asset, data)
    return save_changes(asset, data, actor=actor, event_type="asset.updated")


@transaction.atomic
def delete_asset(*, instance: Asset, actor) -> None:
    asset = locked(Asset, instance)
    if asset.covering_contracts.exists():
        raise Conflict(f"Asset {asset.pk} is covered by contracts; it cannot be deleted.")
    refuse_if_named(asset)
    record_event(type="asset.deleted", obj=asset, actor=actor, payload=snapshot(asset, ASSET_FIELDS))
    try:
        asset.delete()
    except ProtectedError:
        raise Conflict(
            f"Asset {asset.pk} is still used by work orders or visit plans; it cannot be deleted."
        ) from None
