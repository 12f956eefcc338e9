"""Benchmark: what the lossless cursor (events.feed's per-organization order lock) costs writers.

On PostgreSQL, in a database of its own (BENCH_DATABASE_URL's server, database `sla_bench_cursor`,
or BENCH_CURSOR_DATABASE; dropped WITH (FORCE), recreated and migrated), events are written through
the product's path (`events.services.record_event` / `record_events`, one transaction each, the poke
on commit going to the in-memory channel layer) for SECONDS seconds per case, with the order lock
("lock") and with it switched off ("nolock", `hold_order` a no-op: the old behaviour, which can skip):

- `one_writer`: one thread, one event per transaction (the uncontended cost: one more round trip);
- `same_org_4`: 4 threads writing events of ONE organization (the lock serialises them from the
  INSERT to the COMMIT: this is the price);
- `spread_4`: 4 threads, each its own organization (no contention: the lock alone);
- `same_org_4_slow_tx`: as same_org_4, but each transaction does 2 ms of other work after its event
  (a service that records its event and then runs handlers): the lock is held through it;
- `bulk_1000`: `record_events` of 1,000 events over 10 organizations in one transaction (a scan's
  batch), events/s.

Each thread has its own connection. Figures are events/s (higher is better) and the ratio
lock/nolock, each the best of ROUNDS alternated runs. The machine is shared (2 cores, other work
running): compare within one run.
Run alone: `.venv/bin/python bench/event_cursor.py`; SECONDS with BENCH_CURSOR_SECONDS.
"""

from __future__ import annotations

import os
import threading
import time

import benchdb

DATABASE = os.environ.get("BENCH_CURSOR_DATABASE", "sla_bench_cursor")
SECONDS = float(os.environ.get("BENCH_CURSOR_SECONDS", "3"))
ROUNDS = 2
THREADS = 4


def run(database_url: str) -> dict:
    url = benchdb.database_url(database_url, DATABASE)
    benchdb.reset_database(url)
    benchdb.migrate(url)
    benchdb.use_django(url)
    from django.conf import settings
    from django.db import connection, transaction
    from django.utils import timezone

    from events import feed
    from events.services import record_event, record_events
    from tenancy.models import Organization
    from tests.events.helpers import Thing

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    orgs = [Organization.objects.create(slug=f"org{i}", name=f"Org {i}") for i in range(10)]

    def writer(org, stop, counts, index, extra_work):
        n = 0
        try:
            while not stop.is_set():
                with transaction.atomic():
                    record_event(type="bench.written", obj=Thing(org), payload={"n": n})
                    if extra_work:
                        time.sleep(extra_work)
                n += 1
        finally:
            counts[index] = n
            connection.close()

    def measure(targets, extra_work=0.0) -> float:
        stop, counts = threading.Event(), [0] * len(targets)
        threads = [
            threading.Thread(target=writer, args=(org, stop, counts, i, extra_work)) for i, org in enumerate(targets)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        time.sleep(SECONDS)
        stop.set()
        for thread in threads:
            thread.join()
        return sum(counts) / (time.monotonic() - started)

    def bulk() -> float:
        items = [(Thing(orgs[i % 10]), {"n": i}) for i in range(1000)]
        best = 0.0
        for _ in range(5):
            started = time.monotonic()
            with transaction.atomic():
                record_events(type="bench.batch", items=items, occurred_at=timezone.now())
            best = max(best, 1000 / (time.monotonic() - started))
        return best

    cases = {
        "one_writer": lambda: measure([orgs[0]]),
        "same_org_4": lambda: measure([orgs[0]] * THREADS),
        "spread_4": lambda: measure(orgs[:THREADS]),
        "same_org_4_slow_tx": lambda: measure([orgs[0]] * THREADS, extra_work=0.002),
        "bulk_1000": bulk,
    }
    figures: dict[str, float | int] = {}
    original = feed.hold_order
    for name, case in cases.items():
        lock, nolock = [], []
        for _ in range(ROUNDS):  # alternated, best of each: the shared machine's noise hits both
            lock.append(case())
            feed.hold_order = lambda ids: None
            try:
                nolock.append(case())
            finally:
                feed.hold_order = original
        figures[f"{name}_lock_per_s"], figures[f"{name}_nolock_per_s"] = max(lock), max(nolock)
        figures[f"{name}_ratio"] = max(lock) / max(nolock)
    figures["load_average_1m"] = os.getloadavg()[0]
    figures["errors"] = 0
    return figures


if __name__ == "__main__":
    benchdb.main(run)
