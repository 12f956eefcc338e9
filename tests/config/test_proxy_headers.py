"""With NUM_PROXIES=0, headers a client on 127.0.0.1 wrote change nothing, under gunicorn started as
in production (the committed gunicorn.conf.py, read from the repository's root), with its sync
worker (WSGI) and the uvicorn worker (ASGI). Found by an outside tester: gunicorn's defaults trust
X-Forwarded-Proto from 127.0.0.1 (a request marked https) and the uvicorn worker also
X-Forwarded-For (the address the login limit counts), before Django's NUM_PROXIES is consulted.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from bench.list_counterparties import free_port, stop, wait_for_health
from tests.processes import copy_sqlite, wait_for_a_whole_window

ROOT = Path(settings.BASE_DIR)
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
WORKERS = {"wsgi": ["config.wsgi"], "uvicorn": ["config.asgi:application", "-k", "uvicorn_worker.UvicornWorker"]}


@pytest.fixture(scope="module")
def database(tmp_path_factory, migrated_sqlite_template):
    """A migrated SQLite file the servers share (the test database may be in memory)."""
    return copy_sqlite(migrated_sqlite_template, tmp_path_factory.mktemp("proxy") / "db.sqlite3")


@contextlib.contextmanager
def gunicorn(worker: str, database: str, **settings_env: str):
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ALLOWED_HOSTS": "127.0.0.1",
        "NUM_PROXIES": "0",
        "REDIS_URL": "",
        **settings_env,
    }
    for name in ("FORWARDED_ALLOW_IPS", "GUNICORN_LIMIT_REQUEST_LINE", "MAX_URL_BYTES"):
        env.pop(name, None)
    port = free_port()
    # No -c: gunicorn reads ./gunicorn.conf.py from the working directory, as in production.
    process = subprocess.Popen(
        [GUNICORN, *WORKERS[worker], "-b", f"127.0.0.1:{port}", "-w", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_health(process, port)
        yield port
    finally:
        stop(process)


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def call(port: int, path: str, headers: dict, body: bytes | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers)
    try:
        with urllib.request.build_opener(NoRedirects).open(request, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


@pytest.mark.parametrize("worker", sorted(WORKERS))
def test_x_forwarded_proto_does_not_make_a_request_https(worker, database):
    with gunicorn(worker, database, SECURE_SSL_REDIRECT="true") as port:
        status, headers = call(port, "/api/v1/counterparties", {"X-Forwarded-Proto": "https"})
    # Plain http, so SECURE_SSL_REDIRECT sends it to https; taken for https, it was a 401.
    assert status == 301 and headers["Location"].startswith("https://127.0.0.1"), (status, headers)


@pytest.mark.parametrize("worker", sorted(WORKERS))
def test_x_forwarded_for_does_not_change_the_address_the_login_limit_counts(worker, database):
    statuses = []
    with gunicorn(worker, database, THROTTLE_LOGIN_RATE="2/hour", THROTTLE_ANON_RATE="1000/hour") as port:
        wait_for_a_whole_window(3600)  # four 401s in CI: the minute the limit counted in had ended
        for i in range(4):  # a new username each time: only the per-address limit applies
            body = f'{{"username": "nobody-{i}", "password": "wrong"}}'.encode()
            headers = {"Content-Type": "application/json", "X-Forwarded-For": f"198.51.100.{i + 1}"}
            statuses.append(call(port, "/api/v1/token", headers, body)[0])
    # The uvicorn worker took each header for the client's address: four 401s. (gunicorn's sync
    # worker never rewrote REMOTE_ADDR; it is here so that no worker may start to.)
    assert statuses == [401, 401, 429, 429]
