"""JSON Schemas of the rule configurations, served at /api/v1/schemas/<name> and used to
validate input; a fault is reported at its JSON path (e.g. `escalation[1].at_percent`)."""

from __future__ import annotations

import jsonschema

from config import decimals
from tenancy.currencies import MONEY_LIMIT

MONEY_LIMIT_NUMBER = int(MONEY_LIMIT)  # the schema's `maximum` (tenancy.currencies: what a contract may state)

_AMOUNT = {
    "description": "A non-negative amount in the contract's currency, as a decimal string or a number.",
    "type": ["string", "number"],
    "pattern": r"^[0-9]{1,13}(\.[0-9]{1,4})?$",  # for clients; the server judges by `AMOUNTS`
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

# The shape of a calendar's working hours, for the OpenAPI document; `clock.parse_hours` judges them
# (and names overlaps and an end before its start, which no schema can say).
WORKING_HOURS = {
    "description": 'Weekly working intervals in the calendar\'s local time: ISO weekday (Monday = 1), "HH:MM".',
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["weekday", "start", "end"],
        "properties": {
            "weekday": {"type": "integer", "minimum": 1, "maximum": 7},
            "start": {"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]$"},
            "end": {"type": "string", "pattern": r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"},
        },
    },
}

SCHEMAS = {"escalation": ESCALATION, "penalty_clause": PENALTY_CLAUSE}
# A clause's amounts (config.decimals): 4 places, as money columns keep; at most MONEY_LIMIT.
AMOUNTS = {key: (4, MONEY_LIMIT) for key in ("fixed_amount", "per_unit_amount", "per_breach_cap")}


def _path(root: str, error: jsonschema.ValidationError) -> str:
    path = root
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def validation_errors(name: str, value, root: str) -> dict[str, list[str]]:
    """`{json_path: [message, ...]}` of every fault of `value` against schema `name`; a penalty
    clause's amounts by `config.decimals`, whose errors name the limit broken (form, sign, size,
    places) where the pattern's could not."""
    validator = jsonschema.Draft202012Validator(SCHEMAS[name])
    amounts = AMOUNTS if name == "penalty_clause" else {}
    errors: dict[str, list[str]] = decimals.amount_errors(value, amounts, root)
    for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
        if not decimals.judged(value, error.absolute_path, amounts):
            errors.setdefault(_path(root, error), []).append(error.message)
    if name == "escalation" and not errors:
        seen = set()
        for index, level in enumerate(value):
            if level["at_percent"] in seen:
                errors[f"{root}[{index}].at_percent"] = ["Each level needs its own at_percent."]
            seen.add(level["at_percent"])
    return errors
