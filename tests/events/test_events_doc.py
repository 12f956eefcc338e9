"""docs/events.md is what an integrator codes against: the payloads the demo really writes hold
only keys their row names (regression sweep of the eleventh round: `billing.period_closed`'s
figures were not named). That every type the code records has a row is checked by
tests/notifications/test_event_docs.py."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from django.core.management import call_command

from events.models import Event

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"`([^`]+)`")
TYPE = re.compile(r"^[a-z_]+\.[a-z_*]+$")
# A wildcard row (`asset.*`) documents these actions: a snapshot, or `changes`.
WILDCARD_ACTIONS = {"created", "updated", "deleted"}


def documented() -> dict[str, tuple[str, set[str]]]:
    """{type: (payload cell, the key names it gives)} from the per-type table."""
    text = (ROOT / "docs" / "events.md").read_text()
    table = text[text.index("## Per type") :]
    rows = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        prefix = None
        for name in NAME.findall(cells[0]):
            if "." not in name and prefix:  # `billing.period_opened` / `period_closed`
                name = f"{prefix}.{name}"
            if TYPE.match(name):
                prefix = name.split(".")[0]
                rows[name] = (cells[2], set(NAME.findall(cells[2])))
    return rows


def row_of(event_type: str, rows: dict) -> tuple[str, set[str]] | None:
    if event_type in rows:
        return rows[event_type]
    prefix, action = event_type.split(".", 1)
    if action in WILDCARD_ACTIONS:
        return rows.get(f"{prefix}.*")
    return None


@pytest.mark.django_db
def test_the_demo_writes_only_documented_keys():
    call_command("seed_demo", stdout=io.StringIO())
    rows = documented()
    seen: dict[str, set[str]] = {}
    for event_type, payload in Event.objects.values_list("type", "payload"):
        seen.setdefault(event_type, set()).update(payload)
    assert len(seen) >= 20  # the demo writes breaches, billing, ledger, snapshots and updates
    problems = []
    for event_type, keys in sorted(seen.items()):
        row = row_of(event_type, rows)
        if row is None:
            problems.append(f"{event_type}: no row")
            continue
        cell, names = row
        if event_type.endswith(".updated") or cell.split(" ")[0] == "`changes`":
            if keys != {"changes"}:
                problems.append(f"{event_type}: {sorted(keys)} where the row says changes")
        elif "..." in cell or event_type not in rows:
            continue  # a snapshot of the resource's writable fields, open-ended on purpose
        elif keys - names:
            problems.append(f"{event_type}: {sorted(keys - names)} not in docs/events.md")
    assert not problems, problems
