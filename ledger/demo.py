"""Demo ledger: a few months of work on the demo contracts and an expiring prepaid lot. The
allocations and the penalties of the demo breaches were posted by the system already."""

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from contracts.models import Contract
from tenancy.models import Organization
from workorders.models import WorkOrder

from . import services
from .models import LedgerEntry

WORK = {"DEMO-SC-001": ["1.50", "3.00", "2.25", "4.00", "0.75", "2.50"], "DEMO-MA-001": ["1.00", "2.00", "1.50"]}


def seed(log) -> None:
    demo = Organization.objects.get(slug="demo")
    now = timezone.now()
    posted = 0
    for reference, hours_list in WORK.items():
        contract = Contract.objects.get(organization=demo, reference=reference)
        if LedgerEntry.objects.filter(contract=contract, entry_type=LedgerEntry.Type.WORK).exists():
            continue
        jobs = list(WorkOrder.objects.filter(contract=contract).order_by("pk"))
        start = max(contract.start_of_day(contract.start_date), now - dt.timedelta(days=100))
        step = (now - dt.timedelta(days=1) - start) / len(hours_list)
        for index, hours in enumerate(hours_list):
            job = jobs[index % len(jobs)]
            # Work is done after its job was reported (and never in the future).
            occurred_at = min(max(start + step * (index + 1), job.reported_at + dt.timedelta(minutes=30)), now)
            services.post_entry(
                organization=demo,
                actor=None,
                data={
                    "contract": contract,
                    "entry_type": LedgerEntry.Type.WORK,
                    "hours": Decimal(hours),
                    "work_order": job,
                    "occurred_at": occurred_at,
                    "description": "Engineer time on site",
                },
            )
            posted += 1
    contract = Contract.objects.get(organization=demo, reference="DEMO-SC-001")
    if not LedgerEntry.objects.filter(contract=contract, entry_type=LedgerEntry.Type.CREDIT).exists():
        services.post_entry(
            organization=demo,
            actor=None,
            data={
                "contract": contract,
                "entry_type": LedgerEntry.Type.CREDIT,
                "hours": Decimal("16.00"),
                "occurred_at": now - dt.timedelta(days=10),
                "expires_at": now + dt.timedelta(days=20),
                "description": "Goodwill credit: prepaid hours that expire in 20 days",
            },
        )
        posted += 1
    total = LedgerEntry.objects.filter(organization=demo).count()
    log(f"{posted} new entries; {total} in the demo ledger (allocations and penalties posted by the system)")
