"""Concurrent transactions in a fixed interleaving (PostgreSQL): each `Session` runs in a thread of
its own with a connection of its own, and the test waits until one is really waiting for a lock
(`wait_until_blocked`) before it lets the next step happen, so a race is reproduced every time
instead of by chance."""

from __future__ import annotations

import threading
import time

from django.db import connection, transaction


class Session(threading.Thread):
    """`work()` on a connection of its own; its result or exception are kept for the test."""

    def __init__(self, work):
        super().__init__(daemon=True)
        self.work = work
        self.pid = None
        self.result = self.error = None
        self.connected = threading.Event()

    def run(self):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.pid = cursor.fetchone()[0]
            self.connected.set()
            self.result = self.work()
        except Exception as exc:  # reported by the test
            self.error = exc
        finally:
            self.connected.set()
            connection.close()

    def finish(self, timeout: float = 30):
        self.join(timeout)
        assert not self.is_alive(), "a session hung"
        return self


def start(work) -> Session:
    session = Session(work)
    session.start()
    assert session.connected.wait(10)
    return session


def holding(work, release: threading.Event, done: threading.Event | None = None):
    """A session's work: `work()` in a transaction kept open until `release` is set."""

    def run():
        with transaction.atomic():
            result = work()
            if done is not None:
                done.set()
            assert release.wait(30), "never released"
        return result

    return run


def wait_until_blocked(session: Session, timeout: float = 10) -> None:
    """Return once the session's connection waits for a lock (a row, an advisory lock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [session.pid])
            row = cursor.fetchone()
        if row and row[0] == "Lock":
            return
        assert session.is_alive(), f"the session finished instead of waiting: {session.error!r}"
        time.sleep(0.01)
    raise AssertionError("the session never waited for a lock")
