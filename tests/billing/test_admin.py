"""The billing admin on the demo data: periods on the contract page, the "export pending" action,
and instantiating a template."""

import pytest

from billing.models import BillingLine, ContractTemplate, ExportBatch, TemplateUse
from contracts.models import Contract, Counterparty

pytestmark = pytest.mark.django_db


def test_the_contract_page_shows_its_periods_with_money(demo_staff):
    contract = Contract.objects.get(reference="DEMO-MS-002")
    content = demo_staff.get(f"/admin/contracts/contract/{contract.pk}/change/").content.decode()
    assert "Billing periods" in content and "Overage charge" in content and "2400.00" in content
    assert "Billing plan" in content


def test_export_pending_action_makes_one_batch(demo_staff):
    pending = list(BillingLine.objects.filter(status="pending").values_list("pk", flat=True))
    assert pending
    response = demo_staff.post(
        "/admin/billing/billingline/", {"action": "export_pending", "_selected_action": pending}, follow=True
    )
    assert response.status_code == 200
    batch = ExportBatch.objects.get()
    assert batch.line_count == len(pending) and not BillingLine.objects.filter(status="pending").exists()


def instantiate_form(template, reference: str, start_date: str) -> dict:
    """The action's confirmation form, for the first counterparty of the template's organization."""
    counterparty = Counterparty.objects.filter(organization=template.organization).first()
    return {
        "action": "instantiate",
        "_selected_action": [template.pk],
        "apply": "Instantiate",
        "counterparty": counterparty.pk,
        "reference": reference,
        "start_date": start_date,
    }


def test_instantiate_action_asks_then_makes_a_draft(demo_staff):
    template = ContractTemplate.objects.get(name="Managed service, 20 hours a month")
    url = "/admin/billing/contracttemplate/"
    form = demo_staff.post(url, {"action": "instantiate", "_selected_action": [template.pk]})
    assert form.status_code == 200 and "Instantiate" in form.content.decode()
    body = instantiate_form(template, "MS-ADMIN-1", "2027-01-01")
    response = demo_staff.post(url, body, follow=True)
    assert response.status_code == 200
    contract = Contract.objects.get(reference="MS-ADMIN-1")
    assert (contract.status, contract.hours_per_period, str(contract.expiry_date)) == ("draft", 20, "2027-12-31")
    assert TemplateUse.objects.get(contract=contract).template == template
    assert contract.sla_rules.count() == 1 and contract.line_items.count() == 1


@pytest.mark.parametrize(
    ("start_date", "field", "message"),
    [
        # A 500 (year 10000 out of range while counting the term on from the start).
        ("9999-12-01", "start_date", "Must be from 2000-01-01 to 2999-12-31"),
        # Stored as a draft dated 1950-1951.
        ("1950-03-01", "start_date", "Must be from 2000-01-01 to 2999-12-31"),
        # Stored as a draft expiring 3000-05-31: the template's term runs past the service's dates.
        ("2999-06-01", "expiry_date", "Must be from 2000-01-01 to 2999-12-31"),
    ],
)
def test_instantiate_action_checks_the_contract_as_the_api_does(demo_staff, start_date, field, message):
    # Found by an outside sweep: the action built the contract by hand, without the API's checks.
    template = ContractTemplate.objects.get(name="Managed service, 20 hours a month")
    body = instantiate_form(template, "MS-ADMIN-BAD", start_date)
    response = demo_staff.post("/admin/billing/contracttemplate/", body)
    assert response.status_code == 200
    errors = response.context["form"].errors
    shown = errors[field] if field in errors else [e.removeprefix(f"{field}: ") for e in errors["__all__"]]
    assert any(message in error for error in shown), errors
    assert message in response.content.decode()
    assert not Contract.objects.filter(reference="MS-ADMIN-BAD").exists()
