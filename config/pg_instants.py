"""Read PostgreSQL `timestamptz` values with the C ISO parser (issue 15).

Django registers its own `timestamptz` loader on every psycopg connection, a subclass of
psycopg's pure-Python loader (so that it can set the connection's time zone): it parses each
instant with a regular expression, about 4 µs a value, which was the largest single cost of
loading a page of work orders with their clocks (about 700 instants). `datetime.fromisoformat`
reads PostgreSQL's ISO output (`2026-03-01 09:00:00.5+00`) in C; values it cannot read
(`infinity`, years past 9999, BC) go to Django's loader, which says what is wrong as before.

Connected to `connection_created` (tenancy's AppConfig), for the connection's own adapters only.
"""

from __future__ import annotations

import datetime as dt

from django.db.backends.signals import connection_created

_fromisoformat = dt.datetime.fromisoformat


def register_fast_instants(sender, connection, **kwargs) -> None:
    if connection.vendor != "postgresql":
        return
    from psycopg.adapt import Loader
    from psycopg.pq import Format

    raw = connection.connection
    slow = raw.adapters.get_loader(raw.adapters.types["timestamptz"].oid, Format.TEXT)
    if slow is None or getattr(slow, "fast", False):
        return
    zone = getattr(slow, "timezone", None)
    if zone is None:
        return  # USE_TZ off or a naive setup: leave Django's loader alone

    class InstantLoader(Loader):
        # `timezone` is what Django's cursor checks before it registers a loader of its own.
        timezone = slow.timezone
        fast = True

        def __init__(self, oid, context=None):
            super().__init__(oid, context)
            self._slow = slow(oid, context)

        def load(self, data):
            try:
                return _fromisoformat(bytes(data).decode()).astimezone(zone)
            except ValueError:
                return self._slow.load(data)

    raw.adapters.register_loader("timestamptz", InstantLoader)


def connect() -> None:
    connection_created.connect(register_fast_instants, dispatch_uid="config-fast-instants")
