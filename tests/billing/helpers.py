"""Contracts with a billing plan, postings and run_lifecycle at fixed instants."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

from contracts.models import Contract
from contracts.services import run_lifecycle
from ledger.models import LedgerEntry
from slas.models import Calendar
from tests.contracts.factories import make_contract
from tests.ledger.helpers import job, post

AMS = zoneinfo.ZoneInfo("Europe/Amsterdam")


def local(year, month, day, hour=0, minute=0) -> dt.datetime:
    """An instant in the contracts' time zone (Europe/Amsterdam)."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=AMS)


def plan_contract(org, **terms) -> Contract:
    """An active monthly contract from 1 January 2026 for a year, with the given plan terms."""
    fields = {
        "status": Contract.Status.ACTIVE,
        "billing_period": "monthly",
        "start_date": dt.date(2026, 1, 1),
        "expiry_date": dt.date(2026, 12, 31),
        **terms,
    }
    return make_contract(org, **fields)


def office_calendar(org) -> Calendar:
    """Weekdays 08:00-17:00 in Amsterdam: a billing calendar for out-of-hours charging."""
    return Calendar.objects.create(
        organization=org,
        name="Office",
        time_zone="Europe/Amsterdam",
        hours=[{"weekday": day, "start": "08:00", "end": "17:00"} for day in range(1, 6)],
    )


def work_at(contract: Contract, hours, at: dt.datetime, work_order=None) -> LedgerEntry:
    work_order = work_order or job(contract, reported_at=at - dt.timedelta(hours=1))
    return post(contract, "work", hours, at=at, work_order=work_order)


def lifecycle(at: dt.datetime):
    return run_lifecycle(now=at)


def d(value) -> Decimal:
    return Decimal(str(value))
