"""An update changes only what it was sent, on the row as it is when the change is made.

The views read the resource before the service's transaction; a service that saved that copy
whole wrote back every field as it was read, so two PATCHes of different fields at once lost one
(found by an outside tester: 2 to 5 of 6 fields lost, each PATCH answered 200 and wrote its
`*.updated` event). Here the race is played in order: a copy is read, another change commits, the
copy is handed to the service, as a view that read just before the other commit does.
"""

from __future__ import annotations

import pytest
from model_bakery import baker

from billing import services as billing_services
from billing.models import ContractTemplate
from contracts import services
from contracts.models import Contract, Counterparty, LineItem
from tests.contracts.factories import make_contract

pytestmark = pytest.mark.django_db


def test_a_counterparty_keeps_a_change_made_after_the_copy_was_read(org):
    counterparty = baker.make(Counterparty, organization=org, name="Acme", email="", phone="")
    read_before = Counterparty.objects.get(pk=counterparty.pk)
    services.update_counterparty(instance=counterparty, actor=None, data={"email": "ops@acme.example"})

    result = services.update_counterparty(instance=read_before, actor=None, data={"phone": "+31 20 555 0100"})

    stored = Counterparty.objects.get(pk=counterparty.pk)
    assert (stored.email, stored.phone) == ("ops@acme.example", "+31 20 555 0100")
    assert (result.email, result.phone) == (stored.email, stored.phone)  # what the 200 shows


def test_a_line_item_keeps_a_change_made_after_the_copy_was_read(org):
    contract = make_contract(org, status=Contract.Status.DRAFT)
    item = services.create_line_item(contract=contract, actor=None, data={"description": "Inspection"})
    read_before = LineItem.objects.get(pk=item.pk)
    services.update_line_item(item=item, actor=None, data={"sku": "INS-1"})

    services.update_line_item(item=read_before, actor=None, data={"notes": "yearly"})

    stored = LineItem.objects.get(pk=item.pk)
    assert (stored.sku, stored.notes) == ("INS-1", "yearly")


def test_a_template_keeps_a_change_made_after_the_copy_was_read(org):
    template = baker.make(
        ContractTemplate, organization=org, name="Standard", currency="EUR", line_items=[], sla_rules=[]
    )
    read_before = ContractTemplate.objects.get(pk=template.pk)
    billing_services.update_template(instance=template, actor=None, data={"term_months": 24})

    billing_services.update_template(instance=read_before, actor=None, data={"name": "Standard 2027"})

    stored = ContractTemplate.objects.get(pk=template.pk)
    assert (stored.term_months, stored.name) == (24, "Standard 2027")
