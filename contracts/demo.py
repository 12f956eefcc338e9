"""Demo counterparties."""

from tenancy.models import Organization

from .models import Counterparty

DEMO_COUNTERPARTIES = [
    ("demo", "CUST-001", "Northwind Fleet Workshops", "customer", "fleet@northwind.example"),
    ("demo", "CUST-002", "Harbour Fire Safety", "customer", "ops@harbourfire.example"),
    ("demo", "VEND-001", "Utility Crews Ltd", "vendor", "dispatch@utilitycrews.example"),
    ("demo", "BOTH-001", "Regional Emergency Management", "both", "contracts@rem.example"),
    ("other", "CUST-900", "Other Org Customer", "customer", "someone@other.example"),
]


def seed(log) -> None:
    for slug, reference, name, kind, email in DEMO_COUNTERPARTIES:
        Counterparty.objects.update_or_create(
            organization=Organization.objects.get(slug=slug),
            source="demo",
            source_id=reference,
            defaults={"name": name, "kind": kind, "reference": reference, "email": email},
        )
    log(f"{len(DEMO_COUNTERPARTIES)} counterparties")
