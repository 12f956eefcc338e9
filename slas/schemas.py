"""JSON Schemas of the rule configurations, served at /api/v1/schemas/<name> and used to
validate input; a fault is reported at its JSON path (e.g. `escalation[1].at_percent`)."""

from __future__ import annotations

from decimal import Decimal

import jsonschema

from tenancy.currencies import MONEY_LIMIT

MONEY_LIMIT_NUMBER = int(MONEY_LIMIT)  # the schema's `maximum` (tenancy.currencies: what a contract may state)

_AMOUNT = {
    "description": "A non-negative amount in the contract's currency, as a decimal string or a number.",
    "type": ["string", "number"],
    "pattern": r"^\d{1,13}(\.\d{1,4})?$",  # a string (its value checked by `validation_errors`)
    "minimum": 0,
    "maximum": MONEY_LIMIT_NUMBER,
}

ESCALATION = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "/api/v1/schemas/escalation",
    "title": "Escalation levels",
    "description": "Levels reached as a running clock uses up its target; each is announced once per clock.",
    "type": "array",
    "maxItems": 10,
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["at_percent", "name"],
        "properties": {
            "at_percent": {"type": "integer", "minimum": 1, "maximum": 100},
            "name": {"type": "string", "minLength": 1, "maxLength": 80},
            "notify": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 254}, "maxItems": 20},
        },
    },
}

PENALTY_CLAUSE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "/api/v1/schemas/penalty_clause",
    "title": "Penalty clause",
    "description": (
        "Per breach: fixed_amount plus per_unit_amount for every started unit_minutes of overage, "
        "capped at per_breach_cap; the rule's monthly_penalty_cap caps a calendar month."
    ),
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "fixed_amount": _AMOUNT,
        "per_unit_amount": _AMOUNT,
        "unit_minutes": {"type": "integer", "minimum": 1},
        "per_breach_cap": {"oneOf": [_AMOUNT, {"type": "null"}]},
    },
    "dependentRequired": {"per_unit_amount": ["unit_minutes"]},
}

SCHEMAS = {"escalation": ESCALATION, "penalty_clause": PENALTY_CLAUSE}


def _path(root: str, error: jsonschema.ValidationError) -> str:
    path = root
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def readable(error: jsonschema.ValidationError) -> str:
    """The schema's message, but a decimal that does not match its pattern says what is wanted
    (not the regular expression)."""
    if error.validator == "pattern":
        return 'Must be a plain decimal number such as "12.50" (at most 4 decimal places).'
    return error.message


def validation_errors(name: str, value, root: str) -> dict[str, list[str]]:
    """`{json_path: [message, ...]}` of every fault of `value` against schema `name`."""
    validator = jsonschema.Draft202012Validator(SCHEMAS[name])
    errors: dict[str, list[str]] = {}
    for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
        errors.setdefault(_path(root, error), []).append(readable(error))
    if name == "penalty_clause" and not errors:
        # `maximum` holds a JSON number only: an amount sent as a string is held here.
        for key in ("fixed_amount", "per_unit_amount", "per_breach_cap"):
            if value.get(key) is not None and Decimal(str(value[key])) > MONEY_LIMIT:
                errors[f"{root}.{key}"] = [f"Must be at most {MONEY_LIMIT}."]
    if name == "escalation" and not errors:
        seen = set()
        for index, level in enumerate(value):
            if level["at_percent"] in seen:
                errors[f"{root}[{index}].at_percent"] = ["Each level needs its own at_percent."]
            seen.add(level["at_percent"])
    return errors
