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


def test_instantiate_action_asks_then_makes_a_draft(demo_staff):
    template = ContractTemplate.objects.get(name="Managed service, 20 hours a month")
    url = "/admin/billing/contracttemplate/"
    form = demo_staff.post(url, {"action": "instantiate", "_selected_action": [template.pk]})
    assert form.status_code == 200 and "Instantiate" in form.content.decode()
    counterparty = Counterparty.objects.filter(organization=template.organization).first()
    body = {
        "action": "instantiate",
        "_selected_action": [template.pk],
        "apply": "Instantiate",
        "counterparty": counterparty.pk,
        "reference": "MS-ADMIN-1",
        "start_date": "2027-01-01",
    }
    response = demo_staff.post(url, body, follow=True)
    assert response.status_code == 200
    contract = Contract.objects.get(reference="MS-ADMIN-1")
    assert (contract.status, contract.hours_per_period, str(contract.expiry_date)) == ("draft", 20, "2027-12-31")
    assert TemplateUse.objects.get(contract=contract).template == template
    assert contract.sla_rules.count() == 1 and contract.line_items.count() == 1
