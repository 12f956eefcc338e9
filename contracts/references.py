"""What higher apps hold of contracts' objects, for the delete services (registered in each app's
AppConfig.ready(), as the other registries of `contracts.services`).

- `NAMED_BY`: references no foreign key holds: a higher app's JSON that names a counterparty, an
  asset or a contract by id (a contract rule's criteria). Deleting what is named would leave the
  name pointing at nothing (the rule silently matching nothing, and refused as it stands at its
  next edit), so the delete services ask each first. `finder(obj) -> str | None`: what still
  names `obj` ("contract rules 3, 4"), None for nothing.
- `DRAFT_PARTS`: a higher app's rows that are part of a draft and go with it, as its SLA rules do
  (a renewal's draft carries its original's visit plans): `delete(contract, actor)`, through the
  app's own delete service (its events, its refusals).
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import models

from config.errors import Conflict

NAMED_BY: dict[str, Callable[[models.Model], str | None]] = {}


def register_named_by(name: str, finder: Callable[[models.Model], str | None]) -> None:
    NAMED_BY[name] = finder


def refuse_if_named(obj: models.Model) -> None:
    """A 409 naming what still names `obj`, before anything is deleted or recorded."""
    names = [found for finder in NAMED_BY.values() if (found := finder(obj))]
    if names:
        label = str(obj._meta.verbose_name).capitalize()
        raise Conflict(
            f"{label} {obj.pk} is named by {'; '.join(names)}; it cannot be deleted (change or delete those first)."
        )


DRAFT_PARTS: dict[str, Callable[..., None]] = {}
# The models of those rows, with the field naming their contract (the admin's delete page).
DRAFT_PART_MODELS: dict[type[models.Model], str] = {}


def register_draft_part(name: str, delete: Callable[..., None], *, model: type[models.Model], field: str) -> None:
    DRAFT_PARTS[name] = delete
    DRAFT_PART_MODELS[model] = field


def is_draft_part(obj: models.Model, drafts: set[int]) -> bool:
    """Whether `obj` is a part of one of the drafts (ids) that goes with it."""
    field = DRAFT_PART_MODELS.get(type(obj))
    return field is not None and getattr(obj, f"{field}_id") in drafts


def delete_draft_parts(contract, *, actor) -> None:
    for delete in DRAFT_PARTS.values():
        delete(contract, actor=actor)
