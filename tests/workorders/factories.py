"""Work orders made through the services (so they get their clocks, holds and events)."""

from __future__ import annotations

import datetime as dt
import itertools

from django.utils import timezone

from workorders import services
from workorders.models import WorkOrder

_references = itertools.count(1)


def make_job(organization, *, now: dt.datetime | None = None, **data) -> WorkOrder:
    """A job reported as `data` says (default: a high-priority job reported 2026-01-09 15:00 UTC)."""
    defaults = {
        "reference": f"WO-{next(_references):05d}",
        "summary": "Pump does not start",
        "priority": "high",
        "reported_at": dt.datetime(2026, 1, 9, 15, 0, tzinfo=dt.UTC),
    }
    return services.create_work_order(organization=organization, actor=None, data={**defaults, **data}, now=now)


def change(job: WorkOrder, *, now: dt.datetime | None = None, **data) -> WorkOrder:
    """Update a job through the service (`now` for a live-like step)."""
    return services.update_work_order(instance=job, actor=None, data=data, now=now)


def freeze_now(monkeypatch) -> dt.datetime:
    """One instant (`timezone.now()`) for the rest of a test, so that running clocks read the same
    in every request."""
    instant = timezone.now().replace(microsecond=0)
    monkeypatch.setattr(timezone, "now", lambda: instant)
    return instant
