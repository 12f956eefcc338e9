"""Demo work orders on the demo contracts: some on time, some overdue, one on hold, one replayed."""

import datetime as dt

from django.utils import timezone

from contracts.models import Contract
from tenancy.models import Organization

from . import services
from .models import WorkOrder

# sourceID, contract, priority, summary, hours ago reported, [(status, hours ago), ...]
DEMO_JOBS = [
    ("DSP-1001", "DEMO-SC-001", "critical", "Fire pump fails to start", 30, [("in_progress", 29.5), ("resolved", 20)]),
    ("DSP-1002", "DEMO-SC-001", "high", "Fleet truck brake fault", 50, [("in_progress", 46)]),
    ("DSP-1003", "DEMO-SC-001", "critical", "Hydrant leak on main road", 6, []),
    ("DSP-1004", "DEMO-SC-001", "medium", "Annual extinguisher check", 72, [("in_progress", 70), ("on_hold", 60)]),
    ("DSP-1005", "DEMO-MA-001", "high", "Alarm panel fault", 3, [("in_progress", 2.5)]),
    ("DSP-1006", "DEMO-MA-001", "low", "Replace signage", 200, [("in_progress", 190), ("resolved", 100)]),
    ("DSP-1007", "DEMO-SC-001", "high", "Generator service overdue", 0.5, []),
]


def seed(log) -> None:
    demo = Organization.objects.get(slug="demo")
    now = timezone.now().replace(microsecond=0)
    created = 0
    for source_id, reference, priority, summary, reported_hours, history in DEMO_JOBS:
        if WorkOrder.objects.filter(organization=demo, source="demo-dispatch", source_id=source_id).exists():
            continue
        contract = Contract.objects.get(organization=demo, reference=reference)
        job = services.create_work_order(
            organization=demo,
            actor=None,
            data={
                "reference": source_id,
                "summary": summary,
                "source": "demo-dispatch",
                "source_id": source_id,
                "contract": contract,
                "priority": priority,
                "reported_at": now - dt.timedelta(hours=reported_hours),
            },
        )
        for status, hours_ago in history:
            data = {"status": status, "status_changed_at": now - dt.timedelta(hours=hours_ago)}
            if status == "on_hold":
                data["hold_reason"] = "Waiting for parts"
            services.update_work_order(instance=job, actor=None, data=data)
        created += 1
    log(f"{created} new work orders ({len(DEMO_JOBS)} in the demo)")
