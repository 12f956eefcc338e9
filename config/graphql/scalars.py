"""Scalars that GraphQL writes as REST writes them (DESIGN §5).

`DateTime`: an instant is written in UTC with `Z` (`2026-03-10T09:00:00Z`), as DRF's
`DateTimeField` writes it (`config.api.rows.utc_text`), whatever zone the value was computed in (a
visit's occurrence, an amendment's start of day in the contract's zone). Reading is strawberry's
own: any ISO 8601 offset (`Z`, `+01:00`) is accepted in arguments and inputs.

`Decimal`: a string is read by REST's rule (`config.decimals`), a plain decimal ("12.50");
strawberry's `Decimal()` took "1_0" as 10 and "١٢" as 12, and passed them on to REST as "10" and
"12", past its check. A number is taken as before.

`BigInt`: a whole number of 64 bits, for event ids used as cursors (`since`, `until`, a stream
message's `cursor`) and an event's `objectId`. GraphQL's `Int` is 32 bits, so event 2,147,483,648
could be neither passed nor returned. Written as a JSON number, as REST writes ids (a client in
JavaScript reads it exactly up to 2^53, as it reads REST); read from a number or a string of ASCII
digits, so an `Int` literal a client already sends (`since: 41`) keeps its meaning.

`DateOrInstant`: a window bound REST takes as a date or an instant (`contractVisits(from:, to:)`,
REST's `?from=2027-01-01`, the contract's local day); the text goes to REST's own parser.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import typing

from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.schema.types.base_scalars import DateTimeDefinition, DecimalDefinition
from strawberry.types.scalar import ScalarDefinition

from config import decimals
from config.api.rows import utc_text


def instant_text(value: dt.datetime) -> str:
    """An instant as REST writes it: UTC, `Z`. A naive value is taken as UTC (the service's
    TIME_ZONE), as DRF's `DateTimeField` does."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return utc_text(value)


DateTime = dataclasses.replace(
    DateTimeDefinition,
    description="An instant, ISO 8601: written in UTC with Z (as REST), read with any offset (Z or ±HH:MM).",
    serialize=instant_text,
)


def decimal_value(value: object) -> decimal.Decimal:
    if isinstance(value, str):
        parsed = decimals.parse(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        parsed = decimal.Decimal(str(value))
    else:
        parsed = None
    if parsed is None or not parsed.is_finite():
        raise StrawberryInputCoercionError(f'Value cannot represent a Decimal: "{value}". {decimals.NOT_PLAIN}')
    return parsed


Decimal = dataclasses.replace(
    DecimalDefinition,
    description='A decimal: a plain decimal string ("12.50", "-2.5": ASCII digits, no exponent) or a number.',
    parse_value=decimal_value,
)

BIG_INT_MIN, BIG_INT_MAX = -(2**63), 2**63 - 1


def big_int_value(value: object) -> int:
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        digits = value.removeprefix("-")
        if digits.isascii() and digits.isdigit() and len(digits) <= 19:
            number = int(value)
    if number is None or not BIG_INT_MIN <= number <= BIG_INT_MAX:
        raise StrawberryInputCoercionError(
            # The value as the client wrote it (JSON): `true`, not Python's `True`; a string quoted.
            f"BigInt cannot represent {json.dumps(value, default=str)}: "
            f"a whole number from {BIG_INT_MIN} to {BIG_INT_MAX} "
            "(a number, or a string of ASCII digits)."
        )
    return number


def _scalar(name: str, description: str, serialize, parse_value) -> ScalarDefinition:
    """A scalar of our own (its annotation a `typing.NewType`, mapped in SCALAR_OVERRIDES)."""
    return ScalarDefinition(
        name=name,
        description=description,
        specified_by_url=None,
        serialize=serialize,
        parse_value=parse_value,
        parse_literal=None,
    )


BigInt = typing.NewType("BigInt", int)  # the annotation; its definition is one of SCALAR_OVERRIDES

BigIntDefinition = _scalar(
    "BigInt",
    "A whole number of 64 bits (event ids): written as a JSON number, read from a number or a string of ASCII digits.",
    int,
    big_int_value,
)


def date_or_instant_value(value: object) -> str:
    if not isinstance(value, str):
        raise StrawberryInputCoercionError(
            f"DateOrInstant cannot represent {json.dumps(value, default=str)}: a string, YYYY-MM-DD or an "
            "ISO 8601 instant with offset."
        )
    return value  # read by the REST parameter's own parser, with its words (`visits.api.day_or_instant`)


DateOrInstant = typing.NewType("DateOrInstant", str)  # the annotation; its definition is one of SCALAR_OVERRIDES

DateOrInstantDefinition = _scalar(
    "DateOrInstant",
    "A date (YYYY-MM-DD: the start of that day in the object's time zone, as REST's `?from=`) or an ISO 8601 "
    "instant with offset.",
    str,
    date_or_instant_value,
)

SCALAR_OVERRIDES = {
    dt.datetime: DateTime,
    decimal.Decimal: Decimal,
    BigInt: BigIntDefinition,
    DateOrInstant: DateOrInstantDefinition,
}
