"""SQL pieces the reports need on both databases.

- `PercentilesCont(expression, fractions)`: PostgreSQL's `percentile_cont(ARRAY[..]) WITHIN GROUP
  (ORDER BY x)` (one sort for all the fractions); on SQLite an aggregate registered on every
  connection that computes the same continuous percentiles exactly (linear interpolation between
  the two nearest ranks).
- `Epoch(expression)`: an instant as whole UTC epoch seconds, computed by the database, so a
  batch read hands the clock integers instead of building datetimes.
"""

from __future__ import annotations

import math

from django.db.models import Aggregate, BigIntegerField, Func, TextField


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """The continuous percentile of `values` (PostgreSQL's definition); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class _SQLitePercentiles:
    """`percentiles_cont(x, '0.5,0.9')` as an SQLite aggregate: the values as "p50,p90" text
    (NULL when no value), NULLs ignored, like the PostgreSQL expression below."""

    def __init__(self):
        self.values: list[float] = []
        self.fractions = ""

    def step(self, value, fractions):
        self.fractions = fractions
        if value is not None:
            self.values.append(value)

    def finalize(self):
        if not self.values:
            return None
        return ",".join(repr(float(percentile_cont(self.values, float(f)))) for f in self.fractions.split(","))


def register_sqlite_functions(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_aggregate("percentiles_cont", 2, _SQLitePercentiles)


class PercentilesCont(Aggregate):
    """Several continuous percentiles of one expression, from one sort, as "a,b" text (see
    `parse_percentiles`): PostgreSQL's `percentile_cont(ARRAY[..]) WITHIN GROUP (ORDER BY x)`."""

    function = "percentile_cont"
    output_field = TextField()
    template = "array_to_string(%(function)s(ARRAY[%(fractions)s]) WITHIN GROUP (ORDER BY %(expressions)s), ',')"

    def __init__(self, expression, fractions: tuple[float, ...], **extra):
        if not fractions or not all(0 <= f <= 1 for f in fractions):
            raise ValueError("percentiles are fractions from 0 to 1")
        super().__init__(expression, fractions=",".join(repr(float(f)) for f in fractions), **extra)

    def as_sqlite(self, compiler, connection, **extra_context):
        template = "percentiles_cont(%(expressions)s, '%(fractions)s')"
        return self.as_sql(compiler, connection, template=template, **extra_context)


def parse_percentiles(value: str | None, count: int) -> list[float | None]:
    if value is None:
        return [None] * count
    return [float(item) for item in value.split(",")]


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
