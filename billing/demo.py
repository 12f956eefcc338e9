"""Demo billing: a monthly managed-service contract (20 included hours, half of the unused hours
rolled over, overage at 110.00, an automatic top-up of 5 hours below 2) that began four months
ago, with its work posted month by month and each month closed as cron would have, so that the
periods and the billing lines show real figures; and a template to make more like it."""

import datetime as dt
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.utils import timezone

from contracts import services as contracts
from contracts.models import Contract, Counterparty
from ledger import services as ledger
from ledger.models import LedgerEntry
from tenancy.models import Organization
from workorders.services import create_work_order

from . import periods, services
from .models import ContractTemplate

REFERENCE = "DEMO-MS-002"
PLAN = {
    "billing_period": "monthly",
    "period_charge": Decimal("2400.00"),
    "invoice_timing": "in_advance",
    "hours_per_period": Decimal("20.00"),
    "rollover_percent": 50,
    "overage_rate": Decimal("110.00"),
    "rounding_minutes": 15,
    "minimum_charge_minutes": 30,
    "annual_increase_percent": Decimal("3.00"),
    "auto_top_up": {"threshold_hours": "2", "mode": "by", "hours": "5", "price_per_hour": "95.00"},
}
# Hours of the jobs of each month (the current month: only those already past).
MONTHS = [
    ["2.00", "3.50", "1.25", "4.00", "2.00"],
    ["4.00", "6.00", "5.00", "4.00", "3.00", "8.00"],
    ["6.00", "7.50", "9.00", "4.00", "16.00"],
    ["1.50", "2.75", "3.00"],
]


def _contract(demo, now) -> Contract:
    users = {u.username: u for u in get_user_model().objects.filter(username__startswith="demo-")}
    start = contracts.add_months(now.date().replace(day=1), -(len(MONTHS) - 1))
    contract = contracts.create_contract(
        organization=demo,
        actor=users["demo-manager"],
        data={
            "reference": REFERENCE,
            "name": "Managed service: 20 hours a month, rollover and top-up",
            "contract_type": "managed_service",
            "counterparty": Counterparty.objects.get(organization=demo, source="demo", source_id="CUST-001"),
            "counterparty_role": "customer",
            "start_date": start,
            "expiry_date": contracts.add_months(start, 12) - dt.timedelta(days=1),
            **PLAN,
        },
    )
    contracts.submit_contract(contract=contract, actor=users["demo-manager"])
    contracts.approve_contract(contract=contract, actor=users["demo-approver"], comment="Plan checked")
    contracts.approve_contract(contract=contract, actor=users["demo-admin"], comment="Approved")
    return Contract.objects.get(pk=contract.pk)


def seed(log) -> None:
    demo = Organization.objects.get(slug="demo")
    if not Contract.objects.filter(organization=demo, reference=REFERENCE).exists():
        now = timezone.now().replace(microsecond=0)
        contract = _contract(demo, now)
        spans = periods.spans(contract, until=now)
        for span, jobs in zip(spans, MONTHS, strict=False):
            services.bill_contract(Contract.objects.get(pk=contract.pk), now=span.start + dt.timedelta(minutes=5))
            for n, hours in enumerate(jobs):
                at = span.start + dt.timedelta(days=2 + 5 * n, hours=9 + n % 6)
                if at >= now - dt.timedelta(hours=1):
                    break
                job = create_work_order(
                    organization=demo,
                    actor=None,
                    data={"contract": contract, "summary": f"Managed service visit {n + 1}", "reported_at": at},
                    now=at,
                )
                ledger.post_entry(
                    organization=demo,
                    actor=None,
                    data={
                        "contract": Contract.objects.get(pk=contract.pk),
                        "entry_type": LedgerEntry.Type.WORK,
                        "hours": Decimal(hours),
                        "work_order": job,
                        "occurred_at": at + dt.timedelta(hours=float(hours)),
                        "description": "Engineer time",
                    },
                    now=now,
                )
        services.bill_contract(Contract.objects.get(pk=contract.pk), now=now)
    if not ContractTemplate.objects.filter(organization=demo, name="Managed service, 20 hours a month").exists():
        services.create_template(
            organization=demo,
            actor=None,
            data={
                "name": "Managed service, 20 hours a month",
                "contract_type": "managed_service",
                "term_months": 12,
                "currency": demo.default_currency,
                **PLAN,
                "line_items": [{"kind": "service", "description": "Remote and on-site support", "quantity": "1.000"}],
                "sla_rules": [
                    {
                        "name": "Respond to critical jobs within an hour",
                        "metric": "response",
                        "priorities": ["critical"],
                        "target_minutes": 60,
                        "calendar_id": None,
                        "pause_on_hold": False,
                    },
                ],  # fmt: skip
            },
        )
    contract = Contract.objects.get(organization=demo, reference=REFERENCE)
    lines = contract.billing_lines.count()
    log(f"{REFERENCE}: {contract.billing_periods.count()} billing periods, {lines} billing lines; 1 contract template")
