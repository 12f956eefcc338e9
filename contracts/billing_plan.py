"""The billing plan of a contract (issue 12): which fields it has and the rules between them.

The fields are contract terms (editable only in draft, see `services.TERM_FIELDS`); the `billing`
app, above the ledger, turns them into periods, lots and billing lines. Contract templates carry
the same fields under the same names, so both validate through `plan_errors`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from decimal import Decimal
from typing import Any

import jsonschema

from config import decimals
from tenancy.currencies import MONEY_BOUNDS, MONEY_LIMIT

# Term names as on the model (`billing_calendar` goes in as `billing_calendar_id`).
BILLING_PLAN_FIELDS = frozenset(
    {
        "billing_period", "period_charge", "invoice_timing", "hours_per_period", "rollover_percent",
        "overage_rate", "rounding_minutes", "minimum_charge_minutes", "out_of_hours_multiplier",
        "billing_calendar", "annual_increase_percent", "prepay_hours_per_period", "prepay_expiry_months",
        "prepay_price_per_hour", "auto_top_up",
    }
)  # fmt: skip
# The same, as column names (to copy a plan without loading the calendar).
BILLING_PLAN_MODEL_FIELDS = sorted(
    name if name != "billing_calendar" else "billing_calendar_id" for name in BILLING_PLAN_FIELDS
)

# What the REST resources (contracts, contract templates) read and write.
BILLING_PLAN_API_FIELDS = [
    "billing_period", "period_charge", "invoice_timing", "hours_per_period", "rollover_percent", "overage_rate",
    "rounding_minutes", "minimum_charge_minutes", "out_of_hours_multiplier", "billing_calendar",
    "billing_calendar_id", "annual_increase_percent", "prepay_hours_per_period", "prepay_expiry_months",
    "prepay_price_per_hour", "auto_top_up",
]  # fmt: skip
# The plan's prices, written as a unit price is (`ResourceSerializer.Meta.price_fields`): in the
# currency's minor units, or with the finer places they were given with ("110.125"), not with the
# four places the column keeps ("1200.0000").
BILLING_PLAN_PRICES = ("period_charge", "overage_rate", "prepay_price_per_hour")
_MONEY = MONEY_BOUNDS
# One posting's or one period's hours at most: times a rate (tenancy.currencies.MONEY_LIMIT), an
# out-of-hours multiplier (at most 100) or a sum over many periods, they still fit their columns.
HOURS_LIMIT = Decimal(10**6)
_HOURS = {"min_value": Decimal("0.01"), "max_value": HOURS_LIMIT}
BILLING_PLAN_LIMITS = {
    "period_charge": _MONEY,
    "overage_rate": _MONEY,
    "prepay_price_per_hour": _MONEY,
    "hours_per_period": _HOURS,
    "prepay_hours_per_period": _HOURS,
    "rollover_percent": {"min_value": 0, "max_value": 100},
    "rounding_minutes": {"min_value": 0, "max_value": 1440},
    "minimum_charge_minutes": {"min_value": 0, "max_value": 1440},
    "out_of_hours_multiplier": {"min_value": Decimal("0.01"), "max_value": 100},
    "annual_increase_percent": {"min_value": 0, "max_value": 100},
    "prepay_expiry_months": {"min_value": 1, "max_value": 120},
}

# Hours as the ledger keeps them (two places); a price as a plan states it (tenancy.currencies).
# For clients; the server judges the decimals by `config.decimals` (`TOP_UP_DECIMALS`), whose
# errors name the limit broken. `[0-9]`: Python's `\d` is any script's digit.
_HOURS_JSON = {"type": ["string", "number"], "pattern": r"^[0-9]{1,7}(\.[0-9]{1,2})?$", "minimum": 0, "maximum": 10**6}
_PRICE_JSON = {
    "type": ["string", "number"], "pattern": r"^[0-9]{1,13}(\.[0-9]{1,4})?$", "minimum": 0,
    "maximum": int(MONEY_LIMIT),
}  # fmt: skip
TOP_UP_DECIMALS = {"threshold_hours": (2, HOURS_LIMIT), "hours": (2, HOURS_LIMIT), "price_per_hour": (4, MONEY_LIMIT)}

AUTO_TOP_UP = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "/api/v1/schemas/auto_top_up",
    "title": "Auto top-up",
    "description": (
        "When a posting brings the remaining hours below threshold_hours, one credit lot is added: up to "
        "`hours` (mode `to`) or by `hours` (mode `by`), bought at price_per_hour."
    ),
    "type": "object",
    "additionalProperties": False,
    "required": ["threshold_hours", "mode", "hours", "price_per_hour"],
    "properties": {
        "threshold_hours": _HOURS_JSON,
        "mode": {"enum": ["to", "by"]},
        "hours": _HOURS_JSON,
        "price_per_hour": _PRICE_JSON,
    },
}

# Plan fields that only mean something with periods.
_NEEDS_PERIODS = ("period_charge", "hours_per_period", "prepay_hours_per_period", "annual_increase_percent")
# Overage is billed when a period closes: without periods the rate let the contract overrun and the
# overrun was never billed (an outside test). Checked when a write sets the rate or the period, so
# a plan stored before the rule can still have its other terms changed.
_OVERAGE = ("overage_rate", "billing_period")


def top_up_errors(value: Any, path: str = "auto_top_up") -> dict[str, list[str]]:
    """JSON-schema faults at their paths, then the rules between the values."""
    if value is None:
        return {}
    # Every fault was 'Must be a plain decimal number' ("-5", "1.123", 10^15): each decimal's error
    # now names its form, sign, size or places.
    errors = decimals.amount_errors(value, TOP_UP_DECIMALS, path)
    for error in jsonschema.Draft202012Validator(AUTO_TOP_UP).iter_errors(value):
        if not decimals.judged(value, error.absolute_path, TOP_UP_DECIMALS):
            where = path + "".join(f".{part}" for part in error.absolute_path)
            errors.setdefault(where, []).append(error.message)
    if errors:
        return errors
    if Decimal(str(value["hours"])) <= 0:
        errors[f"{path}.hours"] = ["Must be more than 0."]
    elif value["mode"] == "to" and Decimal(str(value["hours"])) <= Decimal(str(value["threshold_hours"])):
        errors[f"{path}.hours"] = ["Topping up *to* a level needs a level above threshold_hours."]
    return errors


def normalise_top_up(value: dict | None) -> dict | None:
    """Decimals as strings, so the stored terms read the same whatever the client sent."""
    if value is None:
        return None
    return {key: str(val) if key != "mode" else val for key, val in value.items()}


def plan_errors(value: Callable[[str], Any], written: Collection[str] | None = None) -> dict[str, list[str]]:
    """The rules between plan fields; `value(name)` reads the field as it will be (input or stored),
    `written` names the fields the write sets (None: all of them, as for a new plan)."""
    errors: dict[str, list[str]] = top_up_errors(value("auto_top_up"))
    periodic = (value("billing_period") or "none") != "none"
    needs_periods = list(_NEEDS_PERIODS)
    if written is None or set(_OVERAGE) & set(written):
        needs_periods.append("overage_rate")
    for name in needs_periods:
        if value(name) is not None and not periodic:
            errors[name] = ["Needs a billing_period other than none."]
    if value("rollover_percent") and value("hours_per_period") is None:
        errors["rollover_percent"] = ["Rolls over included hours: needs hours_per_period."]
    if value("out_of_hours_multiplier") is not None and value("billing_calendar") is None:
        errors["out_of_hours_multiplier"] = ["Needs billing_calendar_id: the calendar whose working time is in hours."]
    if value("prepay_hours_per_period") is not None and value("prepay_price_per_hour") is None:
        errors["prepay_price_per_hour"] = ["Required with prepay_hours_per_period."]
    for name in ("prepay_expiry_months", "prepay_price_per_hour"):
        if value(name) is not None and value("prepay_hours_per_period") is None and name not in errors:
            errors[name] = ["Only with prepay_hours_per_period."]
    return errors
