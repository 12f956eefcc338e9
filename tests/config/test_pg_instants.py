"""`config.pg_instants`: PostgreSQL instants read by the C ISO parser, the same values as Django's."""

import datetime as dt

import pytest
from django.db import DataError, connection
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from psycopg.pq import Format

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="psycopg's timestamptz loader"),
]

TEXTS = [
    "2026-03-01 09:00:00+00",
    "2026-03-01 09:00:00.5+00",
    "2026-03-29 01:30:15.123456+02",
    "2026-10-25 02:30:00-09:30",
    "0044-03-15 10:00:00+00",
    "9999-12-31 23:59:59.999999+00",
    "1900-01-01 00:00:00+05:53:28",  # an offset in seconds (historical zones): Django's loader too
]


def _read(sql, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def _loader():
    connection.ensure_connection()
    adapters = connection.connection.adapters
    return adapters.get_loader(adapters.types["timestamptz"].oid, Format.TEXT)


def test_the_connection_reads_instants_with_the_fast_loader():
    assert getattr(_loader(), "fast", False)
    assert _loader().timezone == connection.timezone  # Django's cursor keeps it, no loader of its own


@pytest.mark.parametrize("text", TEXTS)
def test_same_instants_as_djangos_loader(text):
    fast = _read("SELECT %s::timestamptz", [text])[0]
    with connection.cursor() as cursor:
        djangos = type("DjangosTzLoader", (BaseTzLoader,), {"timezone": connection.timezone})
        cursor.cursor.adapters.register_loader("timestamptz", djangos)
        cursor.execute("SELECT %s::timestamptz", [text])
        slow = cursor.fetchone()[0]
    assert fast == slow
    assert fast.tzinfo is dt.UTC and slow.tzinfo is dt.UTC
    assert fast.isoformat() == slow.isoformat()


def test_values_python_cannot_hold_are_refused_as_before():
    with pytest.raises(DataError, match="infinity"):
        _read("SELECT 'infinity'::timestamptz")
    with pytest.raises(DataError):
        _read("SELECT '0044-03-15 10:00:00+00 BC'::timestamptz")


def test_many_rows_and_nulls():
    rows = _read(
        "SELECT CASE WHEN g % 3 = 0 THEN NULL"
        " ELSE timestamptz '2026-01-01 00:00:00+00' + g * interval '37 minutes 1.25 seconds' END"
        " FROM generate_series(1, 300) g"
    )
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for g, value in enumerate(rows, start=1):
        assert value == (None if g % 3 == 0 else start + g * dt.timedelta(minutes=37, seconds=1.25))
