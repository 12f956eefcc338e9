"""Writes on counterparties (and contracts). Each writes its event in the same transaction."""

from __future__ import annotations

from django.db import transaction
from django.db.models import ProtectedError

from config.api.exceptions import Conflict
from events.services import apply_changes, record_event, snapshot

from .models import Counterparty

COUNTERPARTY_FIELDS = ["name", "kind", "reference", "email", "phone", "address", "remarks", "source", "source_id"]


@transaction.atomic
def create_counterparty(*, organization, actor, data: dict) -> Counterparty:
    counterparty = Counterparty.objects.create(organization=organization, **data)
    record_event(
        type="counterparty.created",
        obj=counterparty,
        actor=actor,
        payload=snapshot(counterparty, COUNTERPARTY_FIELDS),
    )
    return counterparty


@transaction.atomic
def update_counterparty(*, instance: Counterparty, actor, data: dict) -> Counterparty:
    changes = apply_changes(instance, data)
    if changes:
        instance.save()
        record_event(
            type="counterparty.updated",
            obj=instance,
            actor=actor,
            payload={"changes": changes},
        )
    return instance


@transaction.atomic
def delete_counterparty(*, instance: Counterparty, actor) -> None:
    record_event(
        type="counterparty.deleted",
        obj=instance,
        actor=actor,
        payload=snapshot(instance, COUNTERPARTY_FIELDS),
    )
    try:
        instance.delete()
    except ProtectedError as exc:
        used_by = sorted({obj._meta.verbose_name_plural for obj in exc.protected_objects})
        raise Conflict(
            f"Counterparty {instance.pk} is still used by {', '.join(used_by)}; it cannot be deleted."
        ) from None
