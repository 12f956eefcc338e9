"""Set-based updates: many rows, each with its own values, in one statement (the scan's batches).

`update_from_values(Model, fields, rows)` writes `UPDATE table SET f = v.f ... FROM v WHERE
table.id = v.id` with the rows as a `VALUES` list in a CTE. Unlike `bulk_update` (a `CASE WHEN id
= ...` per field, whose cost grows with the square of the batch on PostgreSQL) each row is found
by a join. Works on PostgreSQL and on SQLite 3.33+ (UPDATE ... FROM); on PostgreSQL each column
is cast to its field's type, since a VALUES column of NULLs alone would be text.
"""

from __future__ import annotations

from django.db import connections, router

# SQLite's default limit of bound parameters is 32766 (3.32+); PostgreSQL's protocol allows 65535.
MAX_PARAMETERS = 30_000


def update_from_values(model, fields: list[str], rows: list[tuple], *, set_also: dict | None = None,
                       touch: str | None = None, touch_at=None) -> int:  # fmt: skip
    """Update rows of `model` by primary key: `rows` are `(pk, value of each of fields...)`.

    `set_also`: columns set to one value on every row. `touch`: a column (e.g. `updated_at`) set to
    `touch_at` only on the rows whose tuple ends with an extra True (a "changed" flag), kept on the
    others. One statement per MAX_PARAMETERS parameters (one for any batch the scan makes).
    """
    if not rows:
        return 0
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    opts = model._meta
    table = quote(opts.db_table)
    pk = opts.pk
    columns = [pk, *(opts.get_field(name) for name in fields)]
    postgres = connection.vendor == "postgresql"

    def value_of(index: int, field) -> str:
        ref = f"v.c{index}"
        return f"CAST({ref} AS {field.cast_db_type(connection)})" if postgres else ref

    names = [f"c{i}" for i in range(len(columns) + (1 if touch else 0))]
    assignments = [f"{quote(field.column)} = {value_of(i, field)}" for i, field in enumerate(columns) if i]
    constants = []
    for name, value in (set_also or {}).items():
        field = opts.get_field(name)
        assignments.append(f"{quote(field.column)} = %s")
        constants.append(field.get_db_prep_value(value, connection))
    if touch:
        field = opts.get_field(touch)
        flag = f"CAST(v.c{len(columns)} AS boolean)" if postgres else f"v.c{len(columns)}"
        assignments.append(f"{quote(field.column)} = CASE WHEN {flag} THEN %s ELSE {table}.{quote(field.column)} END")
        constants.append(field.get_db_prep_value(touch_at, connection))
    preps = [field.get_db_prep_value for field in columns] + ([bool] if touch else [])
    width = len(preps)
    per_statement = max(1, (MAX_PARAMETERS - len(constants)) // width)
    placeholder = "(" + ", ".join(["%s"] * width) + ")"
    updated = 0
    with connection.cursor() as cursor:
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
                f"UPDATE {table} SET {', '.join(assignments)} FROM v WHERE {table}.{quote(pk.column)} = "
                f"{value_of(0, pk)}"
            )
            cursor.execute(sql, params + constants)
            updated += cursor.rowcount
    return updated
