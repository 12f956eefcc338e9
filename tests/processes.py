"""Real OS processes on the test database, released together (PostgreSQL concurrency tests).

`at_barrier(table, command, copies=2, env=...)` starts `copies` of `manage.py <command>` on the
test database while the test holds an EXCLUSIVE lock on `table`; once every process waits on that
lock (their `SELECT ... FOR UPDATE` needs a row lock, which waits on it), the test commits and
they run side by side. Returns their outputs; a process that exits non-zero fails the test.
`organization=`: the test holds that organization's event order (`events.feed.hold_order`)
instead, for commands that take it before they lock any row (the breach scan's batches).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection


def database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{credentials}@{host}/{quote(db['NAME'], safe='')}"


def start_command(command: list[str], env: dict | None = None) -> subprocess.Popen:
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        **(env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", *command],
        cwd=Path(settings.BASE_DIR),
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def at_barrier(
    table: str | None, command: list[str], copies: int = 2, env: dict | None = None, organization: int | None = None
) -> list[str]:
    import psycopg

    from events.feed import EVENT_LOCK_CLASS, _lock_key

    db = connection.settings_dict
    barrier = psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
    )
    processes = []
    try:
        if organization is None:
            barrier.execute(f'LOCK TABLE "{table}" IN EXCLUSIVE MODE')
            waits = "SELECT count(*) FROM pg_locks WHERE relation = %s::regclass AND NOT granted", [table]
        else:
            key = [EVENT_LOCK_CLASS, _lock_key(organization)]
            barrier.execute("SELECT pg_advisory_xact_lock(%s, %s)", key)
            waits = (
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = %s"
                " AND objid::bigint = %s AND objsubid = 2 AND NOT granted",
                key,
            )
        processes = [start_command(command, env) for _ in range(copies)]
        deadline = time.monotonic() + 120
        waiting = 0
        while waiting < copies:
            crashed = [p for p in processes if p.poll() is not None]
            assert not crashed, [p.communicate() for p in crashed]
            assert time.monotonic() < deadline, f"the {copies} processes never all reached the barrier"
            time.sleep(0.05)
            waiting = barrier.execute(*waits).fetchone()[0]
        barrier.commit()  # all are waiting: let them go at once
        outputs = []
        for process in processes:
            out, err = process.communicate(timeout=300)
            assert process.returncode == 0, (out, err)
            outputs.append(out)
        return outputs
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
        barrier.close()


def wait_for_a_whole_window(seconds: int, needed: float = 30.0) -> None:
    """Sleep past the end of the current rate-limit window (they are fixed: an hour counts from
    the start of the hour) when less than `needed` seconds of it are left, so that the requests a
    test sends to a real server next are counted in one window."""
    left = seconds - time.time() % seconds
    if left < needed:
        time.sleep(left + 0.1)


def migrated_sqlite(template_dir: Path) -> Path:
    """A SQLite file `manage.py migrate` made, in `template_dir` (made once per test session by the
    `migrated_sqlite_template` fixture: migrating takes 10 s of CPU, 30 s on a loaded machine)."""
    path = template_dir / "migrated.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}", "DJANGO_SETTINGS_MODULE": "config.settings"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=Path(settings.BASE_DIR), env=env, check=True)
    return path


def copy_sqlite(template: Path, target: Path) -> str:
    """A copy of the migrated `template` at `target` (SQLite's backup, whole even in WAL mode); its URL."""
    source, copy = sqlite3.connect(template), sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    return f"sqlite:///{target}"
