"""Demo data of issue 13: assets, a warranty covering one of them, a contract rule, jobs pushed
without a contract (matched by asset and by rule), and planned visits (a quarterly inspection).
Idempotent, like every app's demo; runs last (this app is the top layer)."""

import datetime as dt

from django.contrib.auth import get_user_model
from django.utils import timezone

from contracts import assets, services
from contracts.models import Asset, Contract, Counterparty
from tenancy.models import Organization
from workorders import rules
from workorders.models import ContractRule, VisitPlan, WorkOrder
from workorders.services import create_work_order
from workorders.visits import generate_visits

# sourceID, counterparty, name, kind, serial, site, (lon, lat)
DEMO_ASSETS = [
    ("AST-1", "CUST-002", "Fire pump P-7", "diesel pump", "DP-4471", "Harbour fire station", (4.8897, 52.3770)),
    ("AST-2", "CUST-002", "Hydrant H-12", "hydrant", "HY-0012", "Harbour quay", (4.9100, 52.3800)),
    ("AST-3", "CUST-001", "Fleet truck T-3", "vehicle", "VIN-88231", "Northwind depot", (4.7800, 52.3300)),
]


def _point(lon, lat) -> dict:
    return {"type": "Point", "coordinates": [lon, lat]}


def seed(log) -> None:
    demo = Organization.objects.get(slug="demo")
    users = {u.username: u for u in get_user_model().objects.filter(username__startswith="demo-")}
    manager = users["demo-manager"]
    for source_id, party, name, kind, serial, site, (lon, lat) in DEMO_ASSETS:
        if not Asset.objects.filter(organization=demo, source="demo", source_id=source_id).exists():
            assets.create_asset(
                organization=demo,
                actor=manager,
                data={
                    "name": name, "kind": kind, "serial_number": serial, "site": site, "location": _point(lon, lat),
                    "counterparty": Counterparty.objects.get(organization=demo, source="demo", source_id=party),
                    "source": "demo", "source_id": source_id,
                },
            )  # fmt: skip
    pump = Asset.objects.get(organization=demo, source="demo", source_id="AST-1")
    truck = Asset.objects.get(organization=demo, source="demo", source_id="AST-3")
    log(f"{len(DEMO_ASSETS)} assets")

    today = timezone.localdate(timezone.now(), timezone=dt.UTC)
    if not Contract.objects.filter(organization=demo, reference="DEMO-WA-002").exists():
        warranty = services.create_contract(
            organization=demo,
            actor=manager,
            data={
                "reference": "DEMO-WA-002",
                "name": "Warranty on fire pump P-7",
                "contract_type": "warranty",
                "counterparty": pump.counterparty,
                "counterparty_role": "customer",
                "start_date": today - dt.timedelta(days=90),
                "expiry_date": today + dt.timedelta(days=640),
                "covered_assets": [pump],
            },
        )
        services.submit_contract(contract=warranty, actor=manager)
        services.approve_contract(contract=warranty, actor=users["demo-approver"], comment="Manufacturer warranty")
        services.approve_contract(contract=warranty, actor=users["demo-admin"], comment="Approved")
    log("a warranty (DEMO-WA-002) covering the fire pump")

    if not ContractRule.objects.filter(organization=demo, name="Drills are not covered").exists():
        rules.create_contract_rule(
            organization=demo,
            actor=manager,
            data={
                "name": "Drills are not covered",
                "sequence": 10,
                "criteria": [{"field": "summary", "operator": "contains", "value": "drill"}],
                "outcome": ContractRule.Outcome.NOT_COVERED,
            },
        )
    log("a contract rule (drills are not covered)")

    now = timezone.now().replace(microsecond=0)
    for source_id, summary, data in [
        ("DSP-2001", "Fire pump P-7 loses pressure", {"asset": pump, "priority": "high"}),
        ("DSP-2002", "Fire drill at the harbour station", {"counterparty": pump.counterparty, "priority": "low"}),
    ]:
        if not WorkOrder.objects.filter(organization=demo, source="demo-dispatch", source_id=source_id).exists():
            create_work_order(
                organization=demo,
                actor=None,
                data={"reference": source_id, "summary": summary, "source": "demo-dispatch", "source_id": source_id,
                      "reported_at": now - dt.timedelta(hours=2), **data},
            )  # fmt: skip
    log("2 jobs pushed without a contract (matched by asset, and by rule)")

    for reference, summary, rule, asset, days in [
        ("DEMO-MA-001", "Quarterly pump inspection", "FREQ=MONTHLY;BYMONTH=1,4,7,10;BYMONTHDAY=1;BYHOUR=8", pump, 45),
        ("DEMO-SC-001", "Monthly fleet check", "FREQ=MONTHLY;BYDAY=1MO;BYHOUR=9", truck, 35),
    ]:
        contract = Contract.objects.get(organization=demo, reference=reference)
        if asset.counterparty_id != contract.counterparty_id:
            asset = None
        if not VisitPlan.objects.filter(contract=contract, summary=summary).exists():
            rules.create_visit_plan(
                contract=contract,
                actor=manager,
                data={"summary": summary, "recurrence": rule, "asset": asset, "duration_minutes": 120,
                      "hours_allocated": "2.00", "generate_days_in_advance": days, "tolerance_minutes": 240},
            )  # fmt: skip
    generated = generate_visits(now=now)
    log(f"2 visit plans (a quarterly inspection); {generated} visits generated")
