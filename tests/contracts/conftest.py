"""Contract fixtures: a counterparty and a contract factory that starts in any state."""

import datetime as dt

import pytest
from model_bakery import baker

from contracts.models import Contract, Counterparty


@pytest.fixture
def counterparty(org):
    return baker.make(Counterparty, organization=org, name="Northwind", kind="customer")


@pytest.fixture
def make_contract(org, counterparty):
    """`make_contract(status="active", ...)`: a contract of `org` in that state, saved as given."""

    def make(organization=None, **fields):
        organization = organization or org
        party = counterparty if organization == org else baker.make(Counterparty, organization=organization)
        defaults = {
            "reference": f"C-{Contract.objects.count() + 1:05d}",
            "name": "Maintenance of the fleet",
            "contract_type": "maintenance_agreement",
            "counterparty": party,
            "counterparty_role": "customer",
            "start_date": dt.date(2026, 1, 1),
            "expiry_date": dt.date(2026, 12, 31),
            "time_zone": "Europe/Amsterdam",
            "currency": "EUR",
        }
        contract = Contract(organization=organization, **{**defaults, **fields})
        contract.notice_date = contract.compute_notice_date()
        contract.save()
        return contract

    return make
