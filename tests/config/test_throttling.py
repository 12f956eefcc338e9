"""Rate limits (issue 8): X-RateLimit-* on every API response, Retry-After on a 429, login
limited per username and per address, and counts shared by two real server processes on one
Redis (REDIS_URL, default redis://127.0.0.1:6379/0, with a key prefix of this test run's own)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from bench.list_counterparties import free_port, stop, wait_for_health
from tests.processes import copy_sqlite, wait_for_a_whole_window

TOKEN = "/api/v1/token"


def rates(monkeypatch, **changed):
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, **changed})


def rate_headers(response) -> tuple[int, int, int]:
    return tuple(int(response[f"X-RateLimit-{name}"]) for name in ("Limit", "Remaining", "Reset"))


@pytest.mark.django_db
class TestHeaders:
    def test_every_api_response_carries_the_rate_limit(self, api, anon, monkeypatch):
        rates(monkeypatch, user="50/min", anon="7/min")
        client = api("viewer")
        now = time.time()
        for response, limit in (
            (client.get("/api/v1/counterparties"), 50),
            (client.get("/api/v1/counterparties/999"), 50),
            (client.get("/api/v1/counterparties?sort=nope"), 50),
            (client.post("/api/v1/counterparties", {"name": "x"}, format="json"), 50),
            (anon.get("/api/v1/counterparties"), 7),
            (anon.post(TOKEN, {"username": "nobody", "password": "x"}, format="json"), 7),
            (anon.get("/api/v1/no-such-thing"), 7),
        ):
            got_limit, remaining, reset = rate_headers(response)
            assert got_limit == limit, response
            assert 0 <= remaining <= limit
            assert now - 1 <= reset <= now + 61

    def test_a_401_shows_the_anonymous_count_without_adding_to_it(self, anon, monkeypatch):
        """README, THROTTLE_ANON_RATE: the address's count is spent where an answer needs no token
        (`/api/v1/token`, the schema, the docs); a 401 for a missing or bad token shows it."""
        rates(monkeypatch, anon="3/min")
        for _ in range(5):
            assert anon.get("/api/v1/counterparties").status_code == 401
        bad = anon.get("/api/v1/counterparties", HTTP_AUTHORIZATION="Bearer not-a-token")
        assert bad.status_code == 401 and rate_headers(bad)[:2] == (3, 3)
        assert rate_headers(anon.get("/api/v1/docs"))[:2] == (3, 2)
        assert rate_headers(anon.get("/api/v1/counterparties"))[:2] == (3, 2)

    def test_413_and_414_carry_none_since_the_caller_is_not_known_yet(self, api, settings):
        """docs/decisions.md, "Rate-limit headers": refused before authentication, a 413 or 414 has
        no limit it could truthfully show (neither counted, nor the caller's)."""
        client = api("viewer")
        too_long = client.get("/api/v1/counterparties?ids=" + "1," * settings.MAX_URL_BYTES)
        too_large = client.post(
            "/api/v1/counterparties", "x" * (settings.MAX_REQUEST_BYTES + 1), content_type="application/json"
        )
        for response, status in ((too_long, 414), (too_large, 413)):
            assert response.status_code == status and response.json()["message"]
            assert not [name for name in response.headers if name.startswith("X-RateLimit-")], status
        assert rate_headers(client.get("/api/v1/counterparties"))[0] == 6000

    def test_remaining_counts_down(self, api, monkeypatch):
        rates(monkeypatch, user="5/hour")
        client = api("viewer")
        remaining = [rate_headers(client.get("/api/v1/counterparties"))[1] for _ in range(3)]
        assert remaining == [4, 3, 2]

    def test_429_carries_retry_after_and_zero_remaining(self, api, monkeypatch):
        rates(monkeypatch, user="2/hour")
        client = api("viewer")
        statuses = [client.get("/api/v1/counterparties").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        response = client.get("/api/v1/counterparties")
        assert 1 <= int(response["Retry-After"]) <= 3600
        assert rate_headers(response)[1] == 0
        # One rounding: the header says what the message says (it said one second more).
        assert (
            response.json()["message"]
            == f"Request was throttled. Expected available in {response['Retry-After']} seconds."
        )


@pytest.mark.django_db
class TestLogin:
    def attempt(self, username: str, address: str):
        client = APIClient(REMOTE_ADDR=address)
        return client.post(TOKEN, {"username": username, "password": "wrong"}, format="json")

    def test_per_username_across_addresses(self, monkeypatch, make_member, org):
        rates(monkeypatch, login="3/hour", anon="1000/min")
        make_member("viewer", org, username="alice")
        statuses = [self.attempt("alice", f"10.0.0.{i}").status_code for i in range(1, 6)]
        assert statuses == [401, 401, 401, 429, 429]
        # The same guesser's target under another spelling is the same username.
        assert self.attempt("ALICE", "10.0.0.9").status_code == 429
        # Another user is not locked out by alice's guesser.
        assert self.attempt("bob", "10.0.0.1").status_code == 401

    def test_per_address_across_usernames(self, monkeypatch):
        rates(monkeypatch, login="3/hour", anon="1000/min")
        statuses = [self.attempt(f"user{i}", "10.0.0.7").status_code for i in range(5)]
        assert statuses == [401, 401, 401, 429, 429]
        assert self.attempt("user9", "10.0.0.8").status_code == 401

    def test_a_refused_login_shows_the_limit_that_refused_it(self, monkeypatch):
        """Found by a newcomer's sweep: with logins at 3/min and the anonymous limit at 4/min, the
        4th login was a 429 whose headers showed the anonymous limit (4): both had none left."""
        rates(monkeypatch, login="3/min", anon="4/min")
        responses = [self.attempt(f"z{i}", "10.0.0.30") for i in range(4)]
        assert [r.status_code for r in responses] == [401, 401, 401, 429]
        assert rate_headers(responses[-1])[:2] == (3, 0)
        assert rate_headers(responses[0])[:2] == (3, 2)  # the tightest remaining, as before

    def test_a_forwarded_for_the_client_wrote_is_not_its_address(self, monkeypatch):
        """Found by an outside sweep: each made-up X-Forwarded-For was a fresh address to count, so
        the per-address login limit and the anonymous limit did not hold."""
        rates(monkeypatch, login="3/hour", anon="1000/min")
        statuses = []
        for i in range(5):
            client = APIClient(REMOTE_ADDR="10.0.0.7", HTTP_X_FORWARDED_FOR=f"10.9.{i}.1")
            statuses.append(client.post(TOKEN, {"username": f"x{i}", "password": "x"}, format="json").status_code)
        assert statuses == [401, 401, 401, 429, 429]

    def test_behind_trusted_proxies_the_address_they_saw(self, monkeypatch):
        from rest_framework.settings import api_settings

        rates(monkeypatch, login="3/hour", anon="1000/min")
        monkeypatch.setattr(api_settings, "NUM_PROXIES", 1)

        def attempt(forwarded: str, i: int) -> int:
            client = APIClient(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)  # the proxy's own address
            return client.post(TOKEN, {"username": f"y{i}", "password": "x"}, format="json").status_code

        # What the client wrote comes first; the proxy appends the address it saw.
        assert [attempt(f"1.2.3.{i}, 203.0.113.5", i) for i in range(4)] == [401, 401, 401, 429]
        assert attempt("203.0.113.6", 9) == 401

    def test_the_admin_login_counts_with_the_apis(self, monkeypatch, make_member, org):
        """Found by an outside sweep: the admin's login had no limit, so a staff password could be
        guessed there at any rate (and then used on the API)."""
        from django.test import Client

        rates(monkeypatch, login="3/hour", anon="1000/min")
        member = make_member("admin", org, username="root-ish")
        member.user.is_staff = True
        member.user.set_password("right-one")
        member.user.save()
        client = Client(REMOTE_ADDR="10.0.0.20")
        statuses = [
            client.post("/admin/login/", {"username": "root-ish", "password": f"wrong{i}"}).status_code
            for i in range(3)
        ]
        assert statuses == [200, 200, 200]  # the form again, with its error
        refused = client.post("/admin/login/", {"username": "root-ish", "password": "right-one"})
        assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
        # The same username's budget on the API is spent too, from another address.
        assert self.attempt("root-ish", "10.0.0.21").status_code == 429
        assert Client().get("/admin/login/").status_code == 200  # reading the form is not an attempt


# --- two real server processes on one Redis --------------------------------------------------------


def post_login(port: int, username: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{TOKEN}",
        data=f'{{"username": "{username}", "password": "wrong"}}'.encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_login_limit_holds_across_two_server_processes_on_one_redis(tmp_path, migrated_sqlite_template):
    import redis

    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    redis.Redis.from_url(redis_url).ping()  # CI starts Redis (.ci/run); an unreachable one fails here
    root = Path(settings.BASE_DIR)
    env = {
        **os.environ,
        "DATABASE_URL": copy_sqlite(migrated_sqlite_template, tmp_path / "db.sqlite3"),
        "REDIS_URL": redis_url,
        "CACHE_KEY_PREFIX": f"test-{uuid.uuid4().hex}",  # this run's own keys; nothing is flushed
        "THROTTLE_LOGIN_RATE": "4/hour",
        "THROTTLE_ANON_RATE": "1000/min",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    ports = [free_port(), free_port()]
    servers = [
        subprocess.Popen(
            [str(Path(sys.executable).with_name("gunicorn")), "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1"],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for port in ports
    ]
    try:
        for port, server in zip(ports, servers, strict=True):
            wait_for_health(server, port)
        wait_for_a_whole_window(3600)
        # Alternate between the two processes: the fifth attempt is refused, whichever serves it.
        statuses = [post_login(ports[i % 2], "mallory") for i in range(6)]
        assert statuses == [401, 401, 401, 401, 429, 429]
    finally:
        for server in servers:
            stop(server)
