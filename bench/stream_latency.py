"""Benchmark: the live stream's end-to-end latency, from COMMIT to the client, over 1,000 events.

In a database of its own (BENCH_DATABASE_URL's server, database `sla_bench_stream`, or
BENCH_STREAM_DATABASE; dropped WITH (FORCE), recreated and migrated) and on Redis (REDIS_URL, default
redis://127.0.0.1:6379/0, with a channel-layer prefix of this run's own): one uvicorn process serves
`config.asgi:application`; a WebSocket client (the `websockets` package, in a thread of this
process) authenticates and subscribes from now on; this process writes events through
`events.services.record_event`, one transaction each, and its poke goes through channels-redis to
the server, whose connection re-reads the log from its cursor and sends.

Latency of one event = the client's receipt time - the time its transaction committed (an
on-commit callback registered before the event's own poke), both on this process's monotonic
clock. Two runs of EVENTS events: `paced` (one every PACE_MS, about 200/s) and `burst` (written
back to back). Reported: p50, p99 and max in ms, and events/s through the pipeline in the burst
(bounded by the one writer's commit latency). An event not
received within 10 s, received twice or out of order is an error.

The machine is shared (2 cores, other work running): latencies include whatever else ran.
Run alone: `.venv/bin/python bench/stream_latency.py`.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
import uuid

import benchdb

DATABASE = os.environ.get("BENCH_STREAM_DATABASE", "sla_bench_stream")
EVENTS = int(os.environ.get("BENCH_STREAM_EVENTS", "1000"))
PACE_MS = 5


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(database_url: str) -> dict:
    url = benchdb.database_url(database_url, DATABASE)
    benchdb.reset_database(url)
    benchdb.migrate(url)
    benchdb.use_django(url)
    from channels.layers import channel_layers
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from websockets.sync.client import connect

    from events.services import record_event
    from tenancy.auth import issue_tokens
    from tenancy.models import Membership, Organization
    from tests.events.helpers import Thing
    from tests.stream.servers import AsgiServer, redis_url

    redis = redis_url()
    prefix = f"sla-bench-{uuid.uuid4().hex[:12]}"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": redis, "socket_timeout": 30}], "prefix": prefix},
        }
    }
    channel_layers.backends.clear()

    org = Organization.objects.create(slug="bench", name="Bench")
    user = get_user_model().objects.create_user(username="bench-viewer", password="x")
    token = issue_tokens(Membership.objects.create(user=user, organization=org, role="viewer"))["access"]

    figures: dict[str, float | int] = {"errors": 0}
    server = AsgiServer(
        {"DATABASE_URL": url, "REDIS_URL": redis, "CHANNEL_LAYER_PREFIX": prefix, "CACHE_KEY_PREFIX": prefix}
    )
    try:
        for mode, pace in (("paced", PACE_MS / 1000), ("burst", 0.0)):
            committed: dict[int, float] = {}
            received: dict[int, float] = {}
            order: list[int] = []
            ready = threading.Event()

            def client(order=order, received=received, ready=ready):
                with connect(f"{server.ws}/api/v1/stream", open_timeout=10) as ws:
                    ws.send(json.dumps({"type": "auth", "token": token}))
                    ws.recv(timeout=10)
                    ws.send(json.dumps({"type": "subscribe", "since": None}))
                    ws.recv(timeout=10)
                    ready.set()
                    while len(order) < EVENTS:
                        try:
                            message = json.loads(ws.recv(timeout=10))
                        except TimeoutError:
                            return
                        if message["type"] == "event":
                            received.setdefault(message["cursor"], time.monotonic())
                            order.append(message["cursor"])

            thread = threading.Thread(target=client)
            thread.start()
            assert ready.wait(15), "client did not subscribe"
            started = time.monotonic()
            for n in range(EVENTS):
                stamp: list[float] = []
                with transaction.atomic():
                    transaction.on_commit(lambda stamp=stamp: stamp.append(time.monotonic()))
                    event = record_event(type="bench.live", obj=Thing(org), payload={"n": n})
                committed[event.pk] = stamp[0]
                if pace:
                    time.sleep(pace)
            thread.join(30)
            elapsed = time.monotonic() - started
            latencies = [(received[i] - committed[i]) * 1000 for i in committed if i in received]
            errors = (len(committed) - len(latencies)) + (len(order) - len(set(order)))
            errors += int(order != sorted(order))
            figures["errors"] += errors
            figures[f"{mode}_events"] = len(latencies)
            figures[f"{mode}_p50_ms"] = statistics.median(latencies) if latencies else float("nan")
            figures[f"{mode}_p99_ms"] = percentile(latencies, 0.99) if latencies else float("nan")
            figures[f"{mode}_max_ms"] = max(latencies) if latencies else float("nan")
            if mode == "burst":
                figures["burst_events_per_s"] = len(latencies) / elapsed  # bounded by the one writer's commits
    finally:
        server.stop()
    figures["load_average_1m"] = os.getloadavg()[0]
    return figures


if __name__ == "__main__":
    benchdb.main(run)
