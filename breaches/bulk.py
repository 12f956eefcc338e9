"""Set-based updates: many rows, each with its own values, in one statement (the scan's batches).

`update_from_values(Model, fields, rows)` writes `UPDATE table SET f = v.f ... FROM v WHERE
table.id = v.id`. Unlike `bulk_update` (a `CASE WHEN id = ...` per field, whose cost grows with the
square of the batch on PostgreSQL) each row is found by a join. On PostgreSQL `v` is `unnest` of
one typed array per column (a few parameters whatever the batch: the client does not parse a
statement with thousands of placeholders), each sent as one array literal (`array_literal`); on
SQLite (3.33+: UPDATE ... FROM) a `VALUES` list in a CTE, as many statements as its limit of
parameters needs (one for the scan's batches).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import connections, router

# SQLite's default limit of bound parameters is 32766 (3.32+); PostgreSQL's protocol allows 65535.
MAX_PARAMETERS = 30_000


def update_from_values(model, fields: list[str], rows: list[tuple], *, set_also: dict | None = None,
                       touch: str | None = None, touch_at=None, keep_if_none=()) -> int:  # fmt: skip
    """Update rows of `model` by primary key: `rows` are `(pk, value of each of fields...)`.

    `set_also`: columns set to one value on every row. `touch`: a column (e.g. `updated_at`) set to
    `touch_at` only on the rows whose tuple ends with an extra True (a "changed" flag), kept on the
    others. `keep_if_none`: fields (NOT NULL columns) whose value None means "unchanged": the row
    keeps its own (less to send when few values move). One statement per MAX_PARAMETERS parameters
    (one for any batch the scan makes).
    """
    if not rows:
        return 0
    width = 1 + len(fields) + (1 if touch else 0)
    if any(len(row) != width for row in rows):
        raise ValueError(f"each row must be (pk, {', '.join(fields)}{', changed' if touch else ''})")
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    opts = model._meta
    table = quote(opts.db_table)
    pk = opts.pk
    columns = [pk, *(opts.get_field(name) for name in fields)]
    postgres = connection.vendor == "postgresql"
    names = [f"c{i}" for i in range(len(columns) + (1 if touch else 0))]
    flag = f"v.c{len(columns)}"
    assignments = [
        f"{quote(field.column)} = COALESCE(v.c{i}, {table}.{quote(field.column)})"
        if field.name in keep_if_none
        else f"{quote(field.column)} = v.c{i}"
        for i, field in enumerate(columns)
        if i
    ]
    constants = []
    for name, value in (set_also or {}).items():
        field = opts.get_field(name)
        assignments.append(f"{quote(field.column)} = %s")
        constants.append(field.get_db_prep_value(value, connection))
    if touch:
        field = opts.get_field(touch)
        assignments.append(f"{quote(field.column)} = CASE WHEN {flag} THEN %s ELSE {table}.{quote(field.column)} END")
        constants.append(field.get_db_prep_value(touch_at, connection))
    where = f"{table}.{quote(pk.column)} = v.c0"
    with connection.cursor() as cursor:
        if postgres:
            # One array per column (a handful of parameters, whatever the number of rows): the
            # statement is as cheap to send and plan for 10,000 rows as for 10.
            types = [field.db_type(connection).split("(")[0] for field in columns] + (["boolean"] if touch else [])
            arrays = ", ".join(f"%s::{kind}[]" for kind in types)
            # The ids again as `= ANY(...)`: the rows are found through the primary key index,
            # never by a hash join over the whole table (whose cost would grow with it).
            sql = (
                f"UPDATE {table} SET {', '.join(assignments)} "
                f"FROM unnest({arrays}) AS v ({', '.join(names)}) "
                f"WHERE {where} AND {table}.{quote(pk.column)} = ANY(%s::{types[0]}[])"
            )
            columns_of_rows = [array_literal(column) for column in zip(*rows, strict=True)]
            cursor.execute(sql, constants + columns_of_rows + [columns_of_rows[0]])
            return cursor.rowcount
        preps = [field.get_db_prep_value for field in columns] + ([bool] if touch else [])
        per_statement = max(1, (MAX_PARAMETERS - len(constants)) // width)
        placeholder = "(" + ", ".join(["%s"] * width) + ")"
        updated = 0
        for offset in range(0, len(rows), per_statement):
            chunk = rows[offset : offset + per_statement]
            params = []
            for row in chunk:
                params.extend(
                    prep(value) if prep is bool else prep(value, connection)
                    for prep, value in zip(preps, row, strict=True)
                )
            sql = (
                f"WITH v ({', '.join(names)}) AS (VALUES {', '.join([placeholder] * len(chunk))}) "
                f"UPDATE {table} SET {', '.join(assignments)} FROM v WHERE {where}"
            )
            cursor.execute(sql, params + constants)
            updated += cursor.rowcount
    return updated


def _element(value) -> str:
    """One element of a PostgreSQL array literal (numbers and booleans bare, the rest quoted)."""
    if value is None:
        return "NULL"
    if isinstance(value, int | Decimal):  # bool too: 'True' / 'False' are boolean input
        return str(value)
    if isinstance(value, dt.datetime | str):
        text = str(value)  # a datetime as ISO 8601 with its offset: timestamptz input
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"no array literal for {type(value).__name__}")


def array_literal(values) -> str | list:
    """A column of values as PostgreSQL's array literal text (`{1,2,NULL}`), sent as ONE string and
    cast by the statement (`%s::bigint[]`): psycopg's client-side array dumper quotes and checks
    each element in Python (about 1 ms per 1,000 elements), `str.join` does it in C. Values of other
    types (none in this module's callers) go as a list, for psycopg to dump."""
    if all(type(value) is int for value in values):
        return "{" + ",".join(map(str, values)) + "}"
    try:
        return "{" + ",".join(map(_element, values)) + "}"
    except TypeError:
        return list(values)
