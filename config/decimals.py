"""The decimals the service takes: one rule for request bodies, JSON clauses, filters and GraphQL.

A decimal string is plain: ASCII digits with an optional leading minus and an optional point
followed by digits ("12.50", "-2.5", "7"). No exponent ("1e3"), no plus sign, no spaces, no digit
separators ("1_000") and no other scripts' digits ("١٢"), all of which Python's `Decimal()` (and
so DRF's and Django's decimal fields) would take and guess a number from. A JSON number is taken
as it is parsed. Whether a negative value is allowed is each field's own limit (`decimal_error`).
"""

from __future__ import annotations

import re
from decimal import Decimal

PLAIN = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
NOT_PLAIN = 'Must be a plain decimal number such as "12.50".'


def parse(text: str) -> Decimal | None:
    """The value of a plain decimal string, or None."""
    return Decimal(text) if PLAIN.fullmatch(text) else None


def pattern(whole_digits: int | None, places: int | None) -> str:
    """The rule as an ECMA-262 pattern for the OpenAPI document and JSON Schemas (`[0-9]`, not
    `\\d`: Python's `\\d` matches any script's digits), at most `whole_digits` before the point and
    `places` after it."""
    whole = "[0-9]+" if whole_digits is None else "0" if whole_digits == 0 else f"[0-9]{{1,{whole_digits}}}"
    if places == 0:
        return f"^-?{whole}$"
    fraction = "[0-9]+" if places is None else f"[0-9]{{1,{places}}}"
    return f"^-?{whole}(?:\\.{fraction})?$"


def decimal_error(value, *, places: int, minimum: Decimal | int = 0, maximum: Decimal | int) -> str | None:
    """What is wrong with a decimal (a string by the rule, or a JSON number), naming the limit it
    breaks: its form, sign, size or places. None when nothing is."""
    if isinstance(value, str):
        number = parse(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = Decimal(str(value))  # a float as written in the JSON (0.1, not its binary value)
    else:
        number = None
    if number is None or not number.is_finite():
        return NOT_PLAIN
    if number < minimum:
        return "Must not be negative." if minimum == 0 else f"Must be at least {minimum}."
    if number > maximum:
        return f"Must be at most {maximum}."
    if -number.as_tuple().exponent > places:
        return f"At most {places} decimal places."
    return None


def is_amount(value) -> bool:
    """A value `decimal_error` judges: a string or a JSON number (anything else is a type error)."""
    return isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool))


def amount_errors(clause, limits: dict[str, tuple[int, Decimal | int]], root: str) -> dict[str, list[str]]:
    """The decimals of a JSON clause (`{"hours": "1.5", ...}`) against their limits, `{key: (places,
    maximum)}`, none negative: `{root.key: [message]}`. Its JSON Schema's pattern, minimum and
    maximum say the same to clients; their errors at these keys are left out (`judged`), since a
    pattern's error cannot tell a size or a sign from a typo."""
    if not isinstance(clause, dict):
        return {}
    errors = {}
    for key, (places, maximum) in limits.items():
        value = clause.get(key)
        if is_amount(value) and (message := decimal_error(value, places=places, maximum=maximum)):
            errors[f"{root}.{key}"] = [message]
    return errors


def judged(clause, path, limits: dict) -> bool:
    """Whether a JSON Schema error at `path` is about a decimal `amount_errors` judges."""
    return len(path) == 1 and path[0] in limits and isinstance(clause, dict) and is_amount(clause[path[0]])
