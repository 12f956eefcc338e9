"""Charged hours of a work entry (issue 12): what the balance, the lots and the burn rate consume.

A work entry keeps `hours` as worked. Its `charged_hours` apply the contract's billing plan:

1. at least `minimum_charge_minutes`,
2. then rounded up to a multiple of `rounding_minutes`,
3. then the share of the work that lay outside the `billing_calendar`'s working time counts
   `out_of_hours_multiplier` times. The work is taken to span the `hours` that end at its
   `occurred_at` (a visit is posted when it is done), and the working time inside that span is
   measured with the SLA clock (`slas.clock.business_seconds`: holidays, DST, to the second).

The result is rounded half-up to the hundredth of an hour, like every figure of the ledger.
A contract without those terms charges the hours as worked, and every other entry's charged
hours are its hours.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from slas.clock import business_seconds

HUNDREDTH = Decimal("0.01")


def charge(
    hours: Decimal,
    *,
    minimum_minutes: int = 0,
    rounding_minutes: int = 0,
    multiplier: Decimal | None = None,
    calendar=None,
    ended_at: dt.datetime | None = None,
) -> Decimal:
    """The charged hours of `hours` worked up to `ended_at` (see the module's rules)."""
    minutes = max(Decimal(hours) * 60, Decimal(minimum_minutes or 0))
    if rounding_minutes:
        minutes = (minutes / rounding_minutes).to_integral_value(rounding=ROUND_CEILING) * rounding_minutes
    if multiplier is not None and calendar is not None and hours > 0:
        worked = int(Decimal(hours) * 3600)  # hours have two places: a whole number of seconds
        inside = business_seconds(calendar, ended_at - dt.timedelta(seconds=worked), ended_at)
        outside_share = Decimal(worked - inside) / worked
        minutes = minutes * (1 + (Decimal(multiplier) - 1) * outside_share)
    return (minutes / 60).quantize(HUNDREDTH, rounding=ROUND_HALF_UP)


def charged_hours_for(contract, hours: Decimal, occurred_at: dt.datetime) -> Decimal:
    """Work on `contract`, as its billing plan charges it."""
    plain = not (contract.minimum_charge_minutes or contract.rounding_minutes)
    if plain and (contract.out_of_hours_multiplier is None or contract.billing_calendar_id is None):
        return Decimal(hours)
    calendar = contract.billing_calendar.spec if contract.billing_calendar_id else None
    return charge(
        hours,
        minimum_minutes=contract.minimum_charge_minutes,
        rounding_minutes=contract.rounding_minutes,
        multiplier=contract.out_of_hours_multiplier,
        calendar=calendar,
        ended_at=occurred_at,
    )
