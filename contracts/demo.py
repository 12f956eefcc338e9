"""Demo counterparties and contracts of all seven types across the lifecycle's states."""

import datetime as dt

from django.contrib.auth import get_user_model
from django.utils import timezone

from tenancy.models import Organization

from . import services
from .models import Contract, Counterparty

DEMO_COUNTERPARTIES = [
    ("demo", "CUST-001", "Northwind Fleet Workshops", "customer", "fleet@northwind.example"),
    ("demo", "CUST-002", "Harbour Fire Safety", "customer", "ops@harbourfire.example"),
    ("demo", "VEND-001", "Utility Crews Ltd", "vendor", "dispatch@utilitycrews.example"),
    ("demo", "BOTH-001", "Regional Emergency Management", "both", "contracts@rem.example"),
    ("other", "CUST-900", "Other Org Customer", "customer", "someone@other.example"),
]

AMSTERDAM = {
    "type": "Feature",
    "properties": {"name": "Amsterdam metro"},
    "geometry": {
        "type": "Polygon",
        "coordinates": [[[4.72, 52.28], [5.08, 52.28], [5.08, 52.45], [4.72, 52.45], [4.72, 52.28]]],
    },
}

# reference, type, counterparty, role, state to reach, start offset (days), expiry offset, extra terms
DEMO_CONTRACTS = [
    ("DEMO-SC-001", "service_contract", "CUST-001", "customer", "active", -200, 20,
     {"hours_budget": "200.00", "contract_value": "48000", "coverage_areas": AMSTERDAM, "notice_period_days": 14}),
    ("DEMO-MA-001", "maintenance_agreement", "CUST-002", "customer", "active", -300, 65,
     {"auto_renew": True, "renewal_term_months": 12, "notice_period_days": 30, "hours_budget": "120.00",
      "contract_value": "18500.50"}),
    ("DEMO-PS-001", "parts_supply", "VEND-001", "vendor", "draft", 10, 375, {"contract_value": "7300"}),
    ("DEMO-MU-001", "mutual_aid", "BOTH-001", "customer", "pending_approval", 0, 365, {}),
    ("DEMO-MS-001", "managed_service", "CUST-001", "customer", "scheduled", 30, 395, {"hours_budget": "500.00"}),
    ("DEMO-PR-001", "project", "BOTH-001", "vendor", "suspended", -60, 120, {"contract_value": "99000"}),
    ("DEMO-WA-001", "warranty", "VEND-001", "vendor", "expired", -400, -35, {}),
    ("DEMO-SC-000", "service_contract", "CUST-002", "customer", "terminated", -500, 200, {}),
]  # fmt: skip


def _users():
    User = get_user_model()
    return {name: User.objects.get(username=name) for name in ("demo-manager", "demo-approver", "demo-admin")}


def _bring_to(contract: Contract, state: str, users: dict) -> None:
    if state == "draft":
        return
    services.submit_contract(contract=contract, actor=users["demo-manager"])
    if state == "pending_approval":
        services.approve_contract(contract=contract, actor=users["demo-approver"], comment="Rates checked")
        return
    services.approve_contract(contract=contract, actor=users["demo-approver"], comment="Rates checked")
    services.approve_contract(contract=contract, actor=users["demo-admin"], comment="Approved")
    if state == "suspended":
        services.suspend_contract(contract=contract, actor=users["demo-manager"], reason="Invoices overdue")
    elif state == "terminated":
        services.terminate_contract(contract=contract, actor=users["demo-manager"], reason="Replaced by SC-001")
    # "expired": run_lifecycle below expires it, as cron would.


def seed(log) -> None:
    for slug, reference, name, kind, email in DEMO_COUNTERPARTIES:
        organization = Organization.objects.get(slug=slug)
        # Created once (an edit made since is staff's and stays), through the service: its event.
        if Counterparty.objects.filter(organization=organization, source="demo", source_id=reference).exists():
            continue
        services.create_counterparty(
            organization=organization,
            actor=None,
            data={"name": name, "kind": kind, "reference": reference, "email": email, "source": "demo",
                  "source_id": reference},
        )  # fmt: skip
    log(f"{len(DEMO_COUNTERPARTIES)} counterparties")

    demo = Organization.objects.get(slug="demo")
    users = _users()
    today = timezone.localdate(timezone.now(), timezone=dt.UTC)
    created = 0
    for reference, kind, party, role, state, start, expiry, terms in DEMO_CONTRACTS:
        if Contract.objects.filter(organization=demo, reference=reference).exists():
            continue
        contract = services.create_contract(
            organization=demo,
            actor=users["demo-manager"],
            data={
                "reference": reference,
                "name": f"{dict(Contract.Type.choices)[kind]} with {party}",
                "contract_type": kind,
                "counterparty": Counterparty.objects.get(organization=demo, source="demo", source_id=party),
                "counterparty_role": role,
                "start_date": today + dt.timedelta(days=start),
                "expiry_date": today + dt.timedelta(days=expiry),
                **terms,
            },
        )
        _bring_to(contract, state, users)
        created += 1
    summary = services.run_lifecycle(now=timezone.now())
    log(f"{created} new contracts ({len(DEMO_CONTRACTS)} in the demo); lifecycle run: {summary}")
    _seed_amendment(demo, users, today)


def _seed_amendment(demo, users, today) -> None:
    """An approved amendment: DEMO-MA-001 gets 30 more hours and a longer notice period in 10 days."""
    from . import amendments

    contract = Contract.objects.filter(organization=demo, reference="DEMO-MA-001", status="active").first()
    if contract is None or contract.amendments.exists():
        return
    amendment = amendments.create_amendment(
        contract=contract,
        actor=users["demo-manager"],
        data={
            "effective_date": today + dt.timedelta(days=10),
            "changes": {"hours_budget": "150.00", "notice_period_days": 45},
            "reason": "Second site added: more hours, longer notice",
        },
    )
    amendments.submit_amendment(amendment=amendment, actor=users["demo-manager"])
    amendments.approve_amendment(amendment=amendment, actor=users["demo-approver"], comment="Checked")
    amendments.approve_amendment(amendment=amendment, actor=users["demo-admin"], comment="Approved")
