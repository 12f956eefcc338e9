"""The admin names an object to a staff user only when that user may view its model (found by the
admin sweep): a raw-id reference field named the chosen contract or calendar beside its id, and the
contract template's "instantiate" form listed the template organization's counterparties, to a user
whose permissions do not include viewing them."""

import pytest
from model_bakery import baker

from billing.models import ContractTemplate
from contracts.models import Counterparty
from tests.contracts.factories import make_contract
from tests.slas.factories import make_calendar, make_rule
from tests.test_admin_permissions import client_of, staff


@pytest.fixture
def rule(org):
    contract = make_contract(org, reference="SECRET-REF", name="Hidden customer deal")
    return make_rule(contract, name="Response", metric="response", target_minutes=60,
                     calendar=make_calendar(org, name="Hidden hours"))  # fmt: skip


@pytest.mark.django_db
def test_a_raw_id_field_names_its_object_only_to_who_may_view_it(rule):
    url = f"/admin/slas/slarule/{rule.pk}/change/"
    names = ("SECRET-REF", "Hidden customer deal", "Hidden hours")
    page = client_of(staff("rules-only", "view_slarule", "change_slarule")).get(url).content.decode()
    assert f'name="contract" value="{rule.contract_id}"' in page  # the id itself is the field's value
    assert not [name for name in names if name in page]
    page = client_of(staff("rules-and-more", "change_slarule", "view_contract", "view_calendar")).get(url)
    assert all(name in page.content.decode() for name in names)


@pytest.mark.django_db
def test_a_posting_s_contract_is_named_only_to_who_may_view_contracts(rule):
    url = f"/admin/ledger/ledgerentry/add/?contract={rule.contract_id}"
    page = client_of(staff("poster", "add_ledgerentry", "view_ledgerentry")).get(url).content.decode()
    assert f'value="{rule.contract_id}"' in page and "SECRET-REF" not in page
    page = client_of(staff("poster-viewer", "add_ledgerentry", "view_contract")).get(url).content.decode()
    assert "SECRET-REF" in page


@pytest.mark.django_db
def test_instantiating_a_template_lists_counterparties_only_to_who_may_view_them(org):
    template = baker.make(ContractTemplate, organization=org, name="Standard", term_months=12, currency="EUR")
    baker.make(Counterparty, organization=org, name="Hidden Customer Ltd")
    form = {"action": "instantiate", "_selected_action": [template.pk]}
    url = "/admin/billing/contracttemplate/"
    blind = client_of(staff("adder", "add_contract", "view_contracttemplate"))
    assert "instantiate" not in blind.get(url).content.decode()  # the action is not offered
    response = blind.post(url, form, follow=True)
    assert "Hidden Customer Ltd" not in response.content.decode()
    seeing = client_of(staff("adder-viewer", "add_contract", "view_contracttemplate", "view_counterparty"))
    assert "Hidden Customer Ltd" in seeing.post(url, form).content.decode()
