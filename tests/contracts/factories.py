"""Plain factories for contract data, usable from fixtures and from API test-base subclasses."""

import datetime as dt
import itertools

from model_bakery import baker

from contracts.models import Contract, Counterparty

_references = itertools.count(1)


def make_contract(organization, counterparty=None, **fields) -> Contract:
    """A contract of `organization`, saved in whatever state the fields say (default draft)."""
    defaults = {
        "reference": f"C-{next(_references):05d}",
        "name": "Maintenance of the fleet",
        "contract_type": "maintenance_agreement",
        "counterparty": counterparty or baker.make(Counterparty, organization=organization),
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
