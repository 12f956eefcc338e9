"""Under ASGI, requests do not keep PostgreSQL connections (found by an outside tester).

Each request's sync code runs in a fresh thread under ASGI, and with CONN_MAX_AGE (60 s by default)
the connection of a finished thread was never looked at again: one idle connection per request
until PostgreSQL refused new clients. The ASGI entry points (config/asgi.py, `manage.py runserver`)
turn persistent connections off. Real servers on 127.0.0.1 against the test's PostgreSQL database,
their connections counted in pg_stat_activity by an application_name of their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
from django.db import connection

from bench.list_counterparties import free_port, stop, wait_for_health
from tenancy.auth import issue_tokens
from tests.stream.servers import ROOT, AsgiServer, database_url

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        "connection.vendor == 'sqlite'", reason="PostgreSQL's connections: the SQLite test database is in memory"
    ),
]

REQUESTS = 12


def server_env(name: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": f"{database_url(connection.settings_dict)}?application_name={name}",
        "REDIS_URL": "",  # this process's own memory: nothing else to connect to
        "THROTTLE_USER_RATE": "100000/min",
    }
    return env


def connections_of(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [name])
        return cursor.fetchone()[0]


def settled_count(name: str, bound: int, timeout: float = 5) -> int:
    """The server's connections, given up to `timeout` to fall to `bound` (a backend ends just
    after its client closes)."""
    deadline = time.monotonic() + timeout
    while (count := connections_of(name)) > bound and time.monotonic() < deadline:
        time.sleep(0.1)
    return count


def get(base: str, path: str, token: str) -> int:
    request = urllib.request.Request(f"{base}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


@pytest.fixture
def viewer(make_member, org):
    return issue_tokens(make_member("viewer", org))["access"]


@pytest.mark.parametrize("kind", ["uvicorn", "daphne"])
def test_an_asgi_server_keeps_no_connection_per_request(kind, viewer):
    name = f"asgi-{uuid.uuid4().hex[:12]}"
    with AsgiServer(server_env(name), server=kind) as server:
        for _ in range(REQUESTS):
            assert get(server.http, "/api/v1/counterparties", viewer) == 200
        assert settled_count(name, 0) == 0  # were several, more as the requests went on


def test_runserver_which_serves_through_daphne_keeps_none_either(viewer):
    name = f"runserver-{uuid.uuid4().hex[:12]}"
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "ALLOWED_HOSTS": "127.0.0.1", **server_env(name)}
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_health(server, port)
        for _ in range(REQUESTS):
            assert get(f"http://127.0.0.1:{port}", "/api/v1/counterparties", viewer) == 200
        # One: the main thread's, which checked the migrations before serving (it never ends).
        assert settled_count(name, 1) == 1  # were more, growing with the requests
    finally:
        stop(server)
