"""`bulk_insert`: `bulk_create` for a batch of plain rows, on PostgreSQL as ONE JSON document.

Django 5.2's bulk INSERT on PostgreSQL sends one array per column through `unnest`; with
client-side binding psycopg quotes every element of those arrays in Python (a regex substitution
per quote in each JSON payload), which was most of the client's cost of writing a scan's events
and outbox. Here the rows go as one `jsonb` array of arrays (encoded by the C `json` encoder,
quoted once), read back by `jsonb_array_elements` in order: one statement, as before, with the
primary keys returned in the objects' order. Anything outside plain columns (other returned
fields, database defaults, values with no JSON form) takes `bulk_create` as it is.

`builder(Model, attnames)` makes the new instances such a batch inserts (a scan's events, outbox
rows and breaches) as `Model(**values)` would, through Django's positional `__init__`.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from functools import partial
from operator import attrgetter

from django.db import connections, models, router

_PLAIN = (str, int, bool, type(None))  # float: NaN and precision take Django's path


def _json_value(value):
    """A prepared column value as JSON, or raise TypeError (then: `bulk_create`)."""
    if isinstance(value, (*_PLAIN, float)):
        return value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()  # aware datetimes keep their offset: timestamptz reads it
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)  # numeric / uuid read from text, exactly
    raise TypeError(type(value))


# `pre_save` methods that only read the attribute unless the field sets it (auto_now, auto_now_add).
_READS_ONLY = (models.Field.pre_save, models.DateField.pre_save, models.DateTimeField.pre_save)


def _reader(field):
    """`field.pre_save(obj, True)` for a new row: the attribute itself where that is all it reads
    (one C call per value, not a method call through the field), else the field's own."""
    if type(field).pre_save in _READS_ONLY and not (
        getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
    ):
        return attrgetter(field.attname)
    return partial(field.pre_save, add=True)


def builder(model, attnames: tuple[str, ...]):
    """`build(*values)`: a new `model` instance with the fields `attnames` (attribute names, e.g.
    `organization_id`) set to `values` and every other field at its default, as
    `model(**dict(zip(attnames, values)))` builds it. Through Django's positional `__init__`: its
    keyword path looks every field up and asks for its default per instance, which was most of
    the cost of building a scan's ~35,000 events and outbox rows. A callable default (e.g. `list`)
    is called per instance, as Django does; any other default is computed once."""
    fields = model._meta.concrete_fields
    index = {field.attname: i for i, field in enumerate(fields)}
    unknown = [name for name in attnames if name not in index]
    if unknown or len(set(attnames)) != len(attnames):
        raise ValueError(f"not (distinct) fields of {model.__name__}: {', '.join(unknown) or attnames}")
    positions = [index[name] for name in attnames]
    template, per_instance = [], []
    for i, field in enumerate(fields):
        if field.attname in attnames:
            template.append(None)
        elif field.has_default() and callable(field.default):
            template.append(None)
            per_instance.append((i, field.get_default))
        else:
            template.append(field.get_default())
    slots = list(zip(positions, range(len(positions)), strict=True))
    width = len(attnames)

    def build(*values):
        if len(values) != width:
            raise TypeError(f"{model.__name__}: {width} values expected ({', '.join(attnames)}), not {len(values)}")
        args = template.copy()
        for position, i in slots:
            args[position] = values[i]
        for position, default in per_instance:
            args[position] = default()
        return model(*args)

    return build


def bulk_insert(model, objs: list) -> list:
    """Insert `objs` (new instances of `model`, auto primary key unset) and set their pks."""
    objs = list(objs)
    if not objs:
        return objs
    alias = router.db_for_write(model)
    connection = connections[alias]
    opts = model._meta
    fields = [f for f in opts.concrete_fields if not f.primary_key]
    if (
        connection.vendor != "postgresql"
        or not isinstance(opts.pk, models.AutoField)
        or opts.parents
        or any(getattr(f, "generated", False) or f.db_returning or f.has_db_default() for f in fields)
        or any(obj.pk is not None for obj in objs)
    ):
        return model.objects.bulk_create(objs)
    plan = [(_reader(field), isinstance(field, models.JSONField), field) for field in fields]
    rows = []
    try:
        for obj in objs:
            if obj._state.fields_cache:  # a related instance assigned: Django's checks (else they do nothing)
                obj._prepare_related_fields_for_save(operation_name="bulk_create")
            row = []
            for read, is_json, field in plan:
                value = read(obj)
                if is_json:
                    # The document carries the value itself (SQL NULL for None, as Django writes it);
                    # a field's own encoder is applied as Django would.
                    if value is not None and field.encoder is not None:
                        value = json.loads(json.dumps(value, cls=field.encoder))
                    row.append(value)
                elif type(value) in _PLAIN:
                    # What Django's preparation would give back unchanged (its per-value field calls
                    # were most of the remaining client cost): the server's cast does the rest.
                    row.append(value)
                elif type(value) is dt.datetime and value.tzinfo is not None:
                    row.append(value.isoformat())
                else:
                    row.append(_json_value(field.get_db_prep_save(value, connection)))
            rows.append(row)
        # No encoder: a value Django's own JSON dump would refuse (or NaN) takes bulk_create's path.
        document = json.dumps(rows, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return model.objects.bulk_create(objs)
    quote = connection.ops.quote_name
    selects = []
    for i, field in enumerate(fields):
        if isinstance(field, models.JSONField):
            selects.append(f"NULLIF(e.r -> {i}, 'null'::jsonb)")
        else:
            selects.append(f"(e.r ->> {i})::{field.db_type(connection)}")
    sql = (
        f"INSERT INTO {quote(opts.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"SELECT {', '.join(selects)} FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS e (r, n) "
        f"ORDER BY e.n RETURNING {quote(opts.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [document])
        returned = cursor.fetchall()
    for obj, (pk,) in zip(objs, returned, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = alias
    return objs
