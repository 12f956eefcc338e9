"""SQL pieces the reports need on both databases.

- `PercentileCont(expression, fraction)`: PostgreSQL's `percentile_cont(f) WITHIN GROUP (ORDER BY x)`;
  on SQLite an aggregate of the same name, registered on every connection, that computes the
  same continuous percentile exactly (linear interpolation between the two nearest ranks).
- `Epoch(expression)`: an instant as whole UTC epoch seconds, computed by the database, so a
  batch read hands the clock integers instead of building datetimes.
"""

from __future__ import annotations

import math

from django.db.models import Aggregate, BigIntegerField, FloatField, Func


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """The continuous percentile of `values` (PostgreSQL's definition); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class _SQLitePercentile:
    """`percentile_cont(x, f)` as an SQLite aggregate: NULLs ignored, like PostgreSQL."""

    def __init__(self):
        self.values: list[float] = []
        self.fraction = 0.5

    def step(self, value, fraction):
        self.fraction = fraction
        if value is not None:
            self.values.append(value)

    def finalize(self):
        return percentile_cont(self.values, self.fraction)


def register_sqlite_functions(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_aggregate("percentile_cont", 2, _SQLitePercentile)


class PercentileCont(Aggregate):
    function = "percentile_cont"
    output_field = FloatField()
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression, fraction: float, **extra):
        if not 0 <= fraction <= 1:
            raise ValueError("a percentile is a fraction from 0 to 1")
        super().__init__(expression, fraction=float(fraction), **extra)

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler, connection, template="%(function)s(%(expressions)s, %(fraction)s)", **extra_context
        )


class Epoch(Func):
    """Whole UTC epoch seconds of a timestamp (NULL stays NULL)."""

    output_field = BigIntegerField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(
            # date_part (a double) is much cheaper than extract (a numeric); floored, it is exact to the
            # second for microsecond timestamps (doubles near 2e9 are spaced 2.4e-7 apart).
            compiler,
            connection,
            template="floor(date_part('epoch', %(expressions)s))::bigint",
            **extra_context,
        )

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler, connection, template="CAST(strftime('%%%%s', %(expressions)s) AS INTEGER)", **extra_context
        )
