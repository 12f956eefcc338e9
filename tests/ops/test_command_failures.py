"""The scheduled and operator's commands as cron runs them, in real processes: a database that is down
or does not answer, or a setting the service cannot use, ends a command with exit status 1 and one line
on stderr naming the cause (never a password), not a traceback of a hundred lines or a hang."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

COMMANDS = [
    ["scan_breaches"],
    ["run_lifecycle"],
    ["verify_ledger"],
    ["generate_visits"],
    ["deliver_notifications", "--once"],
    ["prune_notifications"],
    ["seed_demo", "--quiet"],
    ["issue_token", "demo-admin"],
]
PASSWORD = "n0t-in-any-log"


def run(command: list[str], env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    environment.update(DJANGO_SETTINGS_MODULE="config.settings", **env)
    return subprocess.run(
        [sys.executable, "manage.py", *command],
        cwd=Path(settings.BASE_DIR),
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_database_that_is_down_is_one_line_and_exit_1(command):
    url = f"postgres://sla:{PASSWORD}@127.0.0.1:{free_port()}/sla"  # nothing listens there
    done = run(command, {"DATABASE_URL": url})
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert line.startswith("CommandError: Database error (OperationalError): connection failed"), line
    assert "127.0.0.1" in line and PASSWORD not in done.stderr + done.stdout


def test_a_database_that_does_not_answer_ends_the_command(silent_port):
    # libpq waits for ever by default: without a connect timeout this ran until the subprocess limit.
    url = f"postgres://sla:{PASSWORD}@127.0.0.1:{silent_port}/sla"
    done = run(["verify_ledger"], {"DATABASE_URL": url, "DATABASE_CONNECT_TIMEOUT": "1"}, timeout=60)
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert line.startswith("CommandError: Database error (OperationalError)") and "timeout" in line, line


def test_healthz_answers_503_when_the_database_does_not_answer(silent_port):
    url = f"postgres://sla:{PASSWORD}@127.0.0.1:{silent_port}/sla"
    probe = (
        "import django; django.setup(); from django.test import Client; "
        "r = Client().get('/healthz'); print(r.status_code, r.content.decode())"
    )
    environment = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL"}}
    environment.update(DJANGO_SETTINGS_MODULE="config.settings", DATABASE_URL=url, DATABASE_CONNECT_TIMEOUT="1")
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=Path(settings.BASE_DIR), env=environment, capture_output=True,
        text=True, timeout=60,
    )
    assert done.stdout.startswith('503 {"status": "error", "database": "unreachable: OperationalError"}'), done
    assert PASSWORD not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"DATABASE_URL": f"postgres://sla:{PASSWORD}@db:port/sla"},
            "ImproperlyConfigured: DATABASE_URL must be a database URL such as postgres://user:pass@host:5432/name,"
            " not 'postgres://sla:***@db:port/sla' (ValueError: Port could not be cast to integer value as 'port')",
        ),
        (
            {"DATABASE_URL": f"mysql://sla:{PASSWORD}@db/sla"},
            "ImproperlyConfigured: DATABASE_URL must be a database URL such as postgres://user:pass@host:5432/name,"
            " not 'mysql://sla:***@db/sla' (KeyError: 'not a postgres:// or sqlite:// URL')",
        ),
        (
            {"REDIS_URL": f"redis://:{PASSWORD}@cache:port/0"},
            "ImproperlyConfigured: REDIS_URL must be a redis://, rediss:// or unix:// URL"
            " (Port could not be cast to integer value as 'port')",
        ),
        (
            {"SECRET_KEY": "  "},
            "ImproperlyConfigured: SECRET_KEY must not be empty: set a long random value (or unset it for a trial)",
        ),
        (
            {"LOG_LEVEL": "loud"},
            "ImproperlyConfigured: LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not 'loud'",
        ),
        ({"DATABASE_CONNECT_TIMEOUT": "0"}, "ImproperlyConfigured: DATABASE_CONNECT_TIMEOUT must be at least 1, not 0"),
    ],
    ids=["database-port", "database-scheme", "redis-port", "empty-secret", "log-level", "connect-timeout"],
)
def test_a_bad_setting_is_one_line_naming_it_and_exit_1(env, message):
    done = run(["verify_ledger"], {"DATABASE_URL": "sqlite:///:memory:", **env})
    assert done.returncode == 1
    assert one_line(done.stderr) == message
    assert PASSWORD not in done.stderr + done.stdout


def test_an_empty_jwt_signing_key_means_the_secret_key():
    # README: "An empty value means the default". JWT_SIGNING_KEY= made the key "" and every login a 500
    # (PyJWT: "HMAC key must not be empty").
    probe = (
        "import django; django.setup(); from django.conf import settings; from rest_framework_simplejwt.tokens "
        "import AccessToken; t = AccessToken(); t['org'] = 'x'; str(t); "
        "print(settings.SIMPLE_JWT['SIGNING_KEY'] == settings.SECRET_KEY == 'the-deployment-secret')"
    )
    environment = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL"}}
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL="sqlite:///:memory:",
        SECRET_KEY="the-deployment-secret",
        JWT_SIGNING_KEY="",
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=Path(settings.BASE_DIR), env=environment, capture_output=True,
        text=True, timeout=60,
    )
    assert done.stdout.strip() == "True", done.stderr[-2000:]
