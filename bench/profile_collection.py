"""Profile one collection's page in-process (issue 15): where a request's CPU goes, without HTTP noise.

Not one of `make bench`'s benchmarks: a tool for the next pass. It seeds the collections bench's data
(bench/collections_bench.py: 10,000 rows of the bench organization) unless the database already holds
it, then requests pages spread over all 100 through Django's WSGI handler with a real JWT, and prints
the wall and process-CPU milliseconds per request (the CPU figure holds up on a busy machine, the wall
does not). With `--profile`, cProfile's top functions by the given sort key.

    .venv/bin/python bench/profile_collection.py work_orders [breaches ...] [--requests 200]
        [--profile tottime] [--reseed]

BENCH_DATABASE_URL picks the database (default postgres://postgres@127.0.0.1:5432/sla_profile).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [p for p in (str(ROOT / "bench"), str(ROOT)) if p not in sys.path]

import benchdb  # noqa: E402 - bench/ on the path first
import collections_bench  # noqa: E402 - bench/ on the path first

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/sla_profile"


def seeded(reseed: bool, url: str) -> dict:
    """The nested parents' ids, seeding first when the database lacks the bench organization."""
    if not reseed:
        benchdb.use_django(url)
        from django.db import DatabaseError, connections

        try:
            from contracts.models import Contract
            from notifications.models import WebhookEndpoint

            org = {"organization__slug": "bench"}
            return {
                "contract": Contract.objects.filter(**org).order_by("id").values_list("id", flat=True)[0],
                "webhook": WebhookEndpoint.objects.filter(**org).order_by("id").values_list("id", flat=True)[0],
            }
        except (DatabaseError, IndexError):  # no database, no tables or no rows: seed
            connections.close_all()
    benchdb.reset_database(url)
    benchdb.migrate(url)
    benchdb.use_django(url)
    _, ids = collections_bench.seed()
    benchdb.vacuum_analyze(url)
    return ids


def token() -> str:
    from tenancy.auth import issue_tokens
    from tenancy.models import Membership

    return issue_tokens(Membership.objects.get(user__username="bench-admin"))["access"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", help="collections as bench/collections_bench.py names them")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--profile", metavar="SORT", help="cProfile sort key, e.g. tottime or cumulative")
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    os.environ.update({"DEBUG": "false", "LOG_LEVEL": "WARNING", "THROTTLE_USER_RATE": "100000000/min"})
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    ids = seeded(args.reseed, url)
    from django.test import Client

    paths = {name: path for name, path, _ in collections_bench.collections(ids)}
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token()}", HTTP_ACCEPT="application/json")
    for name in args.names:
        path = paths[name]
        for i in range(20):  # warm caches and the connection
            assert client.get(path.format(page=i % 100 + 1)).status_code == 200
        profiler = cProfile.Profile() if args.profile else None
        wall, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        for i in range(args.requests):
            response = client.get(path.format(page=i * 37 % 100 + 1))
            assert response.status_code == 200, response.content[:200]
        if profiler:
            profiler.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        n = args.requests
        print(f"{name:<20} wall {wall / n * 1000:6.2f} ms  cpu {cpu / n * 1000:6.2f} ms per request", flush=True)
        if profiler:
            pstats.Stats(profiler).sort_stats(args.profile).print_stats(args.top)


if __name__ == "__main__":
    main()
