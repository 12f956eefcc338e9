"""Helpers the database benchmarks share (not a benchmark itself; not listed in run.py).

- `database_url(base, name)`: the URL of a database `name` on the server of `base` (BENCH_DATABASE_URL).
- `reset_database(url)`: drop (WITH FORCE) and recreate it; `migrate(url)`: `manage.py migrate` in a subprocess.
- `connect(url, **kwargs)`: a psycopg connection (postgres:// URLs accepted).
- `copy_defaults(url)`: every NOT NULL column whose model field has a default gets it as a database
  default, so the COPY-built data sets keep loading when a migration adds such a column.
- `vacuum_analyze(url)`: statistics and visibility map, as autovacuum would have them on a live table.
- `use_django(url)`: Django set up on that database in this process. bench/run.py runs every benchmark
  in one process, and an earlier benchmark may already have set Django up on its own database: then
  the default database is pointed at `url` (its connections closed first), since settings are read once.
- `run_measured(command, env)`: run a child process and return (exit code, wall seconds, peak RSS MB,
  output), the peak RSS from `os.wait4`, i.e. of that child alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
# The benchmarks import the project's pure modules (the clock, the penalties) by name.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def database_url(base_url: str, name: str) -> str:
    return urlsplit(base_url)._replace(path=f"/{name}").geturl()


def _libpq(url: str) -> str:
    return urlsplit(url)._replace(scheme="postgresql").geturl()


def connect(url: str, **kwargs) -> psycopg.Connection:
    return psycopg.connect(_libpq(url), **kwargs)


def reset_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    admin_url = urlsplit(url)._replace(path="/postgres").geturl()
    with connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def migrate(url: str) -> None:
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)


_COPY_DEFAULTS = r"""
import django
django.setup()
from django.apps import apps
from django.db import connection

with connection.schema_editor() as editor:
    for model in apps.get_models():
        if not model._meta.managed or model._meta.proxy:
            continue
        for field in model._meta.local_concrete_fields:
            if field.null or field.primary_key or not field.has_default():
                continue
            value = editor.effective_default(field)
            if value is None:
                continue
            editor.execute(
                "ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s"
                % (editor.quote_name(model._meta.db_table), editor.quote_name(field.column), editor.quote_value(value))
            )
"""


def copy_defaults(url: str) -> None:
    """The models' defaults as database defaults (see the module docstring); `migrate` first."""
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings"}
    subprocess.run([sys.executable, "-c", _COPY_DEFAULTS], cwd=ROOT, env=env, check=True)


def vacuum_analyze(url: str) -> None:
    with connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def use_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()
        return
    import environ
    from django.conf import settings
    from django.db import connections

    connections.close_all()
    config = environ.Env.db_url_config(url)
    settings.DATABASES["default"].update({key: config[key] for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT")})


def run_measured(command: list[str], env: dict) -> tuple[int, float, float, str]:
    """Run `command` in ROOT; (exit code, wall seconds, peak RSS in MB of that process, stdout+stderr)."""
    with tempfile.TemporaryFile() as log:
        started = time.monotonic()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read().decode(errors="replace")
    return process.returncode, seconds, usage.ru_maxrss / 1024, output  # ru_maxrss is in KiB on Linux


def main(run) -> None:
    """Run one benchmark alone (`python bench/NAME.py`) on BENCH_DATABASE_URL and print its figures."""
    base_url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sla_bench")
    for key, value in run(base_url).items():
        print(f"  {key:<32} {value:.2f}" if isinstance(value, float) else f"  {key:<32} {value}")
