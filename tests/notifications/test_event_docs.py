"""docs/events.md is what integrators code against (README: "code against that page"). A newcomer's
sweep found event types the service records that the page did not name (`billing.exported`,
`contract.balance_low`, `sla_rule.amended`, `webhook.secret_rotated`, ...): every type the code
records is documented, and the webhook events' payloads hold the keys the page lists."""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path

import pytest
from django.core.management import call_command

from events.models import Event
from notifications import services

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "events.md"
SKIP_DIRS = {"tests", "bench", ".venv", "var"}


def _doc_rows() -> list[tuple[list[str], str, set[str], str]]:
    """(types, object types, payload keys, the payload cell) of each row of the page's per-type table."""
    rows = []
    for line in DOC.read_text().splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows.append((re.findall(r"`([^`]+)`", cells[0]), cells[1], set(re.findall(r"`([^`]+)`", cells[2])), cells[2]))
    return rows


def _row_of(event_type: str):
    rows = _doc_rows()
    for row in rows:
        if event_type in row[0]:
            return row
    prefix, _, verb = event_type.partition(".")
    for row in rows:  # the resources' generic row: `asset.*` with created/updated/deleted
        if f"{prefix}.*" in row[0] and verb in ("created", "updated", "deleted"):
            return row
    return None


def _recorded_types() -> set[str]:
    """Every event type a `record_event(s)(type=...)` or `save_changes(event_type=...)` names."""
    found = set()
    for path in ROOT.rglob("*.py"):
        if SKIP_DIRS & set(path.relative_to(ROOT).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            for keyword in node.keywords:
                if keyword.arg not in ("type", "event_type"):
                    continue
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                if keyword.arg == "type" and name not in ("record_event", "record_events"):
                    continue
                for const in ast.walk(keyword.value):
                    value = const.value if isinstance(const, ast.Constant) else None
                    if isinstance(value, str) and re.fullmatch(r"[a-z_]+\.[a-z_]+", value):
                        found.add(value)
    return found


def test_every_event_type_the_service_records_is_on_the_page():
    recorded = _recorded_types()
    # The scan sees the service: a few types every integrator meets must be among what it found.
    assert {"breach.detected", "work_order.created", "webhook.ping", "billing.exported"} <= recorded
    missing = sorted(t for t in recorded if _row_of(t) is None)
    assert missing == [], f"recorded but not in docs/events.md: {missing}"


@pytest.mark.django_db
def test_webhook_events_carry_the_keys_the_page_lists(org, api, endpoint):
    client = api("admin")
    assert client.post(f"/api/v1/webhooks/{endpoint.pk}/rotate_secret").status_code == 200
    assert client.patch(f"/api/v1/webhooks/{endpoint.pk}", {"description": "ops"}, format="json").status_code == 200
    assert client.post(f"/api/v1/webhooks/{endpoint.pk}/ping").status_code in (200, 201, 202)
    other = services.create_endpoint(
        organization=org, actor=None, data={"url": endpoint.url, "event_types": ["webhook.*"]}
    )
    assert client.delete(f"/api/v1/webhooks/{other.pk}").status_code == 204
    [delivery, *_] = client.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries").json()
    requested = client.post(f"/api/v1/webhooks/{endpoint.pk}/deliveries/{delivery['id']}/redeliver")
    assert requested.status_code == 200, requested.content
    events = client.get("/api/v1/events?since=0&per_page=100").json()
    seen = {}
    for event in events:
        seen.setdefault(event["type"], event)
    assert {"webhook.created", "webhook.updated", "webhook.secret_rotated", "webhook.ping", "webhook.deleted",
            "webhook.redelivery_requested"} <= set(seen)  # fmt: skip
    for event_type, event in seen.items():
        row = _row_of(event_type)
        assert row is not None, f"{event_type} is not in docs/events.md"
        _, object_types, keys, _cell = row
        assert f"`{event['object_type']}`" in object_types, (event_type, event["object_type"])
        assert set(event["payload"]) <= keys, (event_type, sorted(set(event["payload"]) - keys))


@pytest.mark.django_db
def test_the_demo_writes_only_documented_keys():
    """The payloads the demo really writes hold only keys their row names (the regression sweep:
    `billing.period_closed`'s figures were not named)."""
    call_command("seed_demo", stdout=io.StringIO())
    seen: dict[str, set[str]] = {}
    for event_type, payload in Event.objects.values_list("type", "payload"):
        seen.setdefault(event_type, set()).update(payload)
    assert len(seen) >= 20  # the demo writes breaches, billing, ledger, snapshots and updates
    problems = []
    for event_type, keys in sorted(seen.items()):
        row = _row_of(event_type)
        if row is None:
            problems.append(f"{event_type}: no row")
            continue
        types, _, names, cell = row
        if event_type.endswith(".updated") or cell.split(" ")[0] == "`changes`":
            if keys != {"changes"}:
                problems.append(f"{event_type}: {sorted(keys)} where the row says changes")
        elif "..." in cell or event_type not in types:
            continue  # a snapshot of the resource's writable fields, open-ended on purpose
        elif keys - names:
            problems.append(f"{event_type}: {sorted(keys - names)} not in docs/events.md")
    assert not problems, problems
