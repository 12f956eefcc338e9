"""PostgreSQL connections plan for tables in memory or on SSD (issue 15, config/settings.py).

At the server's default `random_page_cost` of 4 a list's rows joined to their references by
primary key were planned as hash joins over every row of the referenced tables; the service sets
1.1 (or PG_RANDOM_PAGE_COST) as a startup option of each of its connections.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, connections

ROOT = Path(__file__).resolve().parents[2]
on_postgresql = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="a PostgreSQL planner setting")


def _show(name: str, on=connection) -> str:
    with on.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


@pytest.mark.django_db
@on_postgresql
def test_every_connection_plans_for_cached_pages():
    expected = settings.DATABASES["default"]["OPTIONS"]["options"].split("random_page_cost=")[1].split()[0]
    assert float(_show("random_page_cost")) == float(expected)
    assert float(expected) < 4  # below PostgreSQL's default, which the bench's plans lost to


@pytest.mark.django_db
@on_postgresql
def test_a_new_connection_gets_it_too():
    fresh = connections.create_connection("default")  # connects anew, with the startup option
    try:
        assert float(_show("random_page_cost", fresh)) == float(_show("random_page_cost"))
    finally:
        fresh.close()


def _options_with(page_cost: str) -> subprocess.CompletedProcess:
    """The PostgreSQL connection options the settings give with this PG_RANDOM_PAGE_COST."""
    env = {**os.environ, "DATABASE_URL": "postgres://someone@127.0.0.1:5432/nowhere", "PG_RANDOM_PAGE_COST": page_cost}
    code = "import config.settings as s; print(repr(s.DATABASES['default'].get('OPTIONS', {}).get('options')))"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)


@pytest.mark.parametrize(
    ("page_cost", "options"), [("1.1", "'-c random_page_cost=1.1'"), ("2", "'-c random_page_cost=2.0'"), ("", "None")]
)
def test_the_setting_once_or_none_when_left_empty(page_cost, options):
    # Empty keeps the server's own (a pooler that refuses startup options); never set twice.
    result = _options_with(page_cost)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == options


def test_a_page_cost_that_is_not_a_number_is_a_configuration_error():
    result = _options_with("fast")
    assert result.returncode != 0
    assert "PG_RANDOM_PAGE_COST must be a number, not 'fast'" in result.stderr
