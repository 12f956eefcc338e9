"""Scalars that GraphQL writes as REST writes them (DESIGN §5).

`DateTime`: an instant is written in UTC with `Z` (`2026-03-10T09:00:00Z`), as DRF's
`DateTimeField` writes it (`config.api.rows.utc_text`), whatever zone the value was computed in (a
visit's occurrence, an amendment's start of day in the contract's zone). Reading is strawberry's
own: any ISO 8601 offset (`Z`, `+01:00`) is accepted in arguments and inputs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from strawberry.schema.types.base_scalars import DateTimeDefinition

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

SCALAR_OVERRIDES = {dt.datetime: DateTime}
