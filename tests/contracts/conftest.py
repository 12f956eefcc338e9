"""Contract fixtures: a counterparty and a contract factory that starts in any state."""

import pytest
from model_bakery import baker

from contracts.models import Counterparty
from tests.contracts.factories import make_contract as _make_contract


@pytest.fixture
def counterparty(org):
    return baker.make(Counterparty, organization=org, name="Northwind", kind="customer")


@pytest.fixture
def make_contract(org, counterparty):
    """`make_contract(status="active", ...)`: a contract of `org` in that state, saved as given."""

    def make(organization=None, **fields):
        organization = organization or org
        if organization == org:
            fields.setdefault("counterparty", counterparty)
        return _make_contract(organization, **fields)

    return make
