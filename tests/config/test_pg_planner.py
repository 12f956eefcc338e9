"""PostgreSQL connections plan for tables in memory or on SSD (issue 15, config/settings.py).

At the server's default `random_page_cost` of 4 a list's rows joined to their references by
primary key were planned as hash joins over every row of the referenced tables; the service sets
1.1 (or PG_RANDOM_PAGE_COST) as a startup option of each of its connections.
"""

import pytest
from django.conf import settings
from django.db import connection, connections

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="a PostgreSQL planner setting"),
]


def _show(name: str, on=connection) -> str:
    with on.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


def test_every_connection_plans_for_cached_pages():
    expected = settings.DATABASES["default"]["OPTIONS"]["options"].split("random_page_cost=")[1].split()[0]
    assert float(_show("random_page_cost")) == float(expected)
    assert float(expected) < 4  # below PostgreSQL's default, which the bench's plans lost to


def test_a_new_connection_gets_it_too():
    fresh = connections.create_connection("default")  # connects anew, with the startup option
    try:
        assert float(_show("random_page_cost", fresh)) == float(_show("random_page_cost"))
    finally:
        fresh.close()
