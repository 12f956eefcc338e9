"""Redis that accepts connections and never answers (a hung or overloaded server, a half-open network
path), with the cache and channel layer the settings configure for REDIS_URL: found by an attacker of
the ninth round, where a refused port (test_redis_outage.py) answers at once. Each cache call waited its
2 s socket timeout (a `/me` 6 s, a login 8 s) and every write's live-stream poke the channel layer's
30 s after its commit (a POST answered in 36 s). Now the cache is not asked again for a few seconds
after it failed, and a poke waits at most POKE_TIMEOUT_SECONDS, then none is sent for a few seconds."""

import runpy
import time
from pathlib import Path

import pytest
from channels.layers import channel_layers
from django.conf import settings as django_settings


@pytest.fixture
def hung_redis(silent_port):
    """redis://127.0.0.1:<port>/0 of a server that accepts every connection and never says a word."""
    return f"redis://127.0.0.1:{silent_port}/0"


@pytest.fixture
def as_configured(hung_redis, settings, monkeypatch):
    """The cache and channel layer that config/settings.py builds for this REDIS_URL."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("REDIS_URL", hung_redis)
    loaded = runpy.run_path(str(Path(django_settings.BASE_DIR) / "config" / "settings.py"))
    settings.REDIS_URL = hung_redis
    settings.CACHES = {"default": {**loaded["CACHES"]["default"], "KEY_PREFIX": "hung"}}
    settings.CHANNEL_LAYERS = loaded["CHANNEL_LAYERS"]
    channel_layers.backends.clear()
    # Long enough that no pause ends within a test (each is 5 s in production).
    monkeypatch.setattr("config.cache.BACKOFF_SECONDS", 60.0)
    monkeypatch.setattr("events.feed.POKE_BACKOFF_SECONDS", 60.0)
    yield
    channel_layers.backends.clear()


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_a_hung_redis_costs_requests_its_timeout_once_not_on_every_call(as_configured, api):
    client = api("viewer")
    first, _ = timed(lambda: client.get("/api/v1/me"))
    assert first.status_code == 200, first.content
    again, seconds = timed(lambda: client.get("/api/v1/me"))
    assert again.status_code == 200, again.content
    assert seconds < 1, f"a request waited {seconds:.1f} s on a Redis that just failed"


def test_a_write_with_a_hung_redis_is_answered_without_waiting_out_the_channel_layer(
    as_configured, api, django_capture_on_commit_callbacks
):
    client = api("manager")
    client.get("/api/v1/me")  # the cache's own first timeout, not measured here
    with django_capture_on_commit_callbacks(execute=True):
        created, seconds = timed(
            lambda: client.post("/api/v1/counterparties", {"name": "A", "kind": "customer"}, format="json")
        )
    assert created.status_code == 201, created.content
    assert seconds < 4, f"the write's poke waited {seconds:.1f} s"
    with django_capture_on_commit_callbacks(execute=True):
        second, seconds = timed(
            lambda: client.post("/api/v1/counterparties", {"name": "B", "kind": "customer"}, format="json")
        )
    assert second.status_code == 201, second.content
    assert seconds < 1, f"the next write's poke waited {seconds:.1f} s on a layer that just failed"
