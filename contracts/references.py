"""References to contracts' objects that no foreign key holds: a higher app's JSON that names a
counterparty, an asset or a contract by id (a contract rule's criteria). Deleting what is named
would leave the name pointing at nothing (the rule silently matching nothing, and refused as it
stands at its next edit), so the delete services ask each registered app first.

`finder(obj) -> str | None`: what still names `obj` ("contract rules 3, 4"), None for nothing;
registered in the app's AppConfig.ready(), as the other registries of `contracts.services`.
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
