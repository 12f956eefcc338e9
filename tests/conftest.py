"""Shared fixtures: organizations, members of every role, and authenticated API clients.

`api(role)` is a client for a member with that role in `org`; `api(role, org=other_org)` for
another organization. Tokens are real JWTs issued the way `POST /api/v1/token` issues them.
"""

from __future__ import annotations

import itertools
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.test import APIClient

from tenancy.auth import issue_tokens
from tenancy.models import Membership, Organization

_counter = itertools.count(1)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness protects real passwords; tests only need hashing to work.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True, scope="session")
def _local_memory_cache():
    # Issue 8: with REDIS_URL set the service caches in Redis; the suite keeps its cache in
    # memory anyway, so clearing it between tests never flushes a shared Redis database.
    # (tests/config/test_throttling.py runs real servers on Redis, under a key prefix of its own.)
    from django.test import override_settings

    with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}):
        yield


@pytest.fixture(autouse=True, scope="session")
def _quick_flush():
    # After each `transaction=True` test Django empties every table with one TRUNCATE, which on
    # PostgreSQL makes new files for each of the tables and their indexes: 2-3 s a test, where
    # DELETE FROM each table takes 0.05 s on tables a test left a few rows in. Same tables, same
    # single transaction (Django's foreign keys are DEFERRABLE INITIALLY DEFERRED, checked at its
    # commit, when all are empty). Test runs only; a RESTART IDENTITY flush is left to Django.
    # The content types and permissions (what migrate made, the same for every test) are kept:
    # flush's post_migrate then finds them all instead of inserting them again (0.4 s a test).
    from django.db.backends.postgresql.base import DatabaseOperations as PostgreSQL

    kept = {"django_content_type", "auth_permission"}
    truncate = PostgreSQL.sql_flush

    def postgresql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences:
            return truncate(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        delete_from = f"{style.SQL_KEYWORD('DELETE')} {style.SQL_KEYWORD('FROM')}"
        return [f"{delete_from} {style.SQL_FIELD(self.quote_name(table))};" for table in tables if table not in kept]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PostgreSQL, "sql_flush", postgresql_flush)
        yield


@pytest.fixture(autouse=True)
def _one_rate_limit_window(monkeypatch):
    # The rate limits count in fixed windows (the minute from its start): a test whose requests
    # straddled a window's end counted them in two windows, and its 429 never came. In-process,
    # every request of one test is counted at the instant the test began. (WindowThrottle
    # inherits `timer` from DRF's throttles; set on it, it shadows theirs.)
    from config.api.throttling import WindowThrottle

    instant = time.time()
    monkeypatch.setattr(WindowThrottle, "timer", lambda self: instant, raising=False)


@pytest.fixture(autouse=True)
def _clear_cache(_local_memory_cache):
    # Throttle counters live in the cache; every test starts with a clean slate.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def org(db) -> Organization:
    return Organization.objects.create(
        slug="acme", name="Acme Field Services", default_currency="EUR", default_time_zone="Europe/Amsterdam"
    )


@pytest.fixture
def other_org(db) -> Organization:
    return Organization.objects.create(
        slug="globex", name="Globex", default_currency="USD", default_time_zone="America/New_York"
    )


@pytest.fixture
def make_member(db):
    def make(role: str = "manager", org: Organization | None = None, username: str | None = None) -> Membership:
        user = get_user_model().objects.create_user(
            username=username or f"user{next(_counter)}-{role}", password="secret-password"
        )
        return Membership.objects.create(user=user, organization=org, role=role)

    return make


def client_for(membership: Membership) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_tokens(membership)['access']}")
    client.membership = membership
    return client


@pytest.fixture
def api(org, make_member):
    """`api("operator")` -> an APIClient authenticated as a new operator of `org`."""

    def make(role: str = "manager", org: Organization = org) -> APIClient:
        return client_for(make_member(role, org))

    return make


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture(autouse=True)
def _membership_cache(settings):
    # As production runs it (REDIS_URL set): the membership behind a token cached. A test runs in
    # one process, whose local-memory cache every request of the test shares; the query counts
    # asserted are production's. tests/tenancy/test_membership_cache.py checks it off too.
    settings.MEMBERSHIP_CACHE = True


@pytest.fixture(autouse=True)
def _in_memory_channel_layer(settings):
    # Live-stream pokes stay in this process even when REDIS_URL is exported; the end-to-end
    # stream tests configure Redis (with a prefix of their own) explicitly.
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    yield
    from channels.layers import channel_layers

    channel_layers.backends.clear()


@pytest.fixture
def demo_staff(db):
    """A browser signed in to the admin as demo-admin (a superuser), on the seeded demo data."""
    import io

    from django.core.management import call_command
    from django.test import Client

    call_command("seed_demo", stdout=io.StringIO())
    client = Client()
    client.force_login(get_user_model().objects.get(username="demo-admin"))
    return client


@pytest.fixture
def silent_port():
    """The port of a TCP server on 127.0.0.1 that accepts every connection and never says a word: a hung
    or overloaded server, a half-open network path (Redis in tests/config, PostgreSQL in tests/ops)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()
