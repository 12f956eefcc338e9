"""The embedded SQLite database of `make run` under concurrent requests (config/settings.py): reads
go on while something writes (WAL), and a transaction takes the write lock when it begins. On a
database file with the service's connection options, as `make run` has (the tests' own SQLite
database is in memory, where neither applies)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.backends.sqlite3.base import DatabaseWrapper

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's own locking")


def _connect(path) -> DatabaseWrapper:
    wrapper = DatabaseWrapper({**connection.settings_dict, "NAME": str(path)}, alias="sqlite-file")
    wrapper.ensure_connection()
    return wrapper


def test_a_read_goes_on_while_another_connection_writes(tmp_path, django_db_blocker):
    with django_db_blocker.unblock():  # a database of its own, not the tests' one
        writer, reader = _connect(tmp_path / "db.sqlite3"), _connect(tmp_path / "db.sqlite3")
    try:
        assert writer.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        writer.connection.execute("CREATE TABLE job (name TEXT)")
        writer.connection.execute("INSERT INTO job VALUES ('first')")
        writer.connection.commit()
        writer.connection.execute("BEGIN IMMEDIATE")
        writer.connection.execute("INSERT INTO job VALUES ('second')")
        # Spilled to the file, as a big transaction's pages are: with a rollback journal the
        # writer would now hold the file exclusively and the read would wait, then fail.
        writer.connection.execute("PRAGMA cache_size = 1")
        writer.connection.executemany("INSERT INTO job VALUES (?)", [("x" * 500,)] * 2000)
        reader.connection.execute("PRAGMA busy_timeout = 0")  # fail at once rather than wait
        assert reader.connection.execute("SELECT name FROM job").fetchall() == [("first",)]
        writer.connection.commit()
        assert reader.connection.execute("SELECT count(*) FROM job").fetchone()[0] == 2002
    finally:
        writer.close()
        reader.close()


def test_transactions_take_the_write_lock_when_they_begin():
    assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


@pytest.mark.django_db
def test_migrate_on_sqlite_warns_of_nothing():
    """The checks `migrate` runs (with the database's): a PostgreSQL covering index is built on
    SQLite without its INCLUDE columns, and `make run` printed models.W040 on every start."""
    from django.core import checks

    found = [m for m in checks.run_checks(databases=["default"]) if not m.is_silenced()]
    assert [m.id for m in found if m.level >= checks.WARNING] == []
