"""Profile one collection's page in-process (issue 15): where a request's CPU goes, without HTTP noise.

Not one of `make bench`'s benchmarks: a tool for the next pass. It seeds the collections bench's data
(bench/collections_bench.py: 10,000 rows of the bench organization) unless the database already holds
it, then requests pages spread over all 100 through Django's WSGI handler with a real JWT, and prints
the wall and process-CPU milliseconds per request (the CPU figure holds up on a busy machine, the wall
does not). With `--profile`, cProfile's top functions by the given sort key.

With `--blocks N` the requests run in N blocks after the warm-up, with what the process holds frozen
out of the garbage collector's sight as gunicorn's workers do (gunicorn.conf.py), and it prints the
lowest and the median block's CPU per request, then what a page of it costs to render as JSON
(the server's renderer) and to parse (what the bench's client does): on a machine whose speed
wanders, the lowest block is the figure that repeats, and each list is shown against the first.

With `--phases`, the CPU per request of each stage of a list (`STAGES`: authentication, filters, the
row plan, the page's queries, the rows written, the page's own work, headers, JSON), each timed whole.

    .venv/bin/python bench/profile_collection.py work_orders ['work_orders&fields=id,status' ...] [--requests 200]
        [--profile tottime] [--blocks 9] [--phases] [--reseed]

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
    parser.add_argument("--blocks", type=int, help="run in blocks, GC frozen; print the lowest and median block")
    parser.add_argument("--phases", action="store_true", help="CPU per request of each stage of a list")
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    os.environ.update({"DEBUG": "false", "LOG_LEVEL": "WARNING", "THROTTLE_USER_RATE": "100000000/min"})
    os.environ.setdefault("MEMBERSHIP_CACHE", "true")  # as production has it (collections_bench.gunicorn)
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    ids = seeded(args.reseed, url)
    from django.test import Client

    paths = {name: path for name, path, _ in collections_bench.collections(ids)}
    for name in args.names:  # `work_orders&fields=id,status`: a collection's page with more parameters
        base, _, more = name.partition("&")
        if more:
            paths[name] = f"{paths[base]}&{more}"
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token()}", HTTP_ACCEPT="application/json")
    if args.blocks:
        blocks(client, [(name, paths[name]) for name in args.names], args.requests, args.blocks)
        return
    if args.phases:
        phases(client, [(name, paths[name]) for name in args.names], args.requests)
        return
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


def blocks(client, lists: list[tuple[str, str]], requests: int, count: int) -> None:
    """CPU ms per request of each list: lowest and median of `count` blocks, with the JSON
    rendering and parsing of one of its pages; the process frozen as a gunicorn worker is."""
    import gc
    import json

    from django.urls import get_resolver
    from rest_framework.renderers import JSONRenderer

    for _, path in lists:
        for i in range(20):  # warm caches and the connection before the freeze, as a worker would
            assert client.get(path.format(page=i % 100 + 1)).status_code == 200
    get_resolver().url_patterns  # noqa: B018 - what gunicorn.conf.py loads before freezing
    gc.collect()
    gc.freeze()

    def per_call(call, n: int) -> list[float]:
        figures = []
        for _ in range(count):
            started = time.process_time()
            for i in range(n):
                call(i)
            figures.append((time.process_time() - started) / n * 1000)
        return sorted(figures)

    print(f"{'list':<20} {'lowest':>7} {'median':>7} {'x first':>8} {'json':>6} {'parse':>6} {'bytes':>7}  (CPU ms)")
    first = None
    for name, path in lists:
        cpu = per_call(lambda i, path=path: client.get(path.format(page=i * 37 % 100 + 1)), max(1, requests // count))
        response = client.get(path.format(page=3))
        data, body = response.data, response.content
        render = per_call(lambda i, data=data: JSONRenderer().render(data), 100)[0]
        parse = per_call(lambda i, body=body: json.loads(body), 100)[0]
        first = first or cpu[0]
        print(
            f"{name:<20} {cpu[0]:7.2f} {cpu[len(cpu) // 2]:7.2f} {first / cpu[0]:8.2f} {render:6.2f} {parse:6.2f}"
            f" {len(body):7}",
            flush=True,
        )


# The stages of a list request (config/api): (label, owner, method). Indented labels run inside the
# stage above them; a serializer's `prepare_rows` (the page's own work, e.g. the work orders' clocks)
# runs inside the rows' rendering.
STAGES = [
    ("authentication, permissions, throttles", "config.api.viewsets.ResourceViewSet", "initial"),
    ("filters", "config.api.viewsets.ResourceViewSet", "filter_queryset"),
    ("row plan (serializer, fields)", "config.api.viewsets.ResourceViewSet", "row_plan"),
    ("page: count, ids, rows queries", "config.api.pagination.PagePagination", "paginate_queryset"),
    ("rows written", "config.api.rows.RowPlan", "render"),
    ("  of which prepare_rows", None, "prepare_rows"),
    ("    work orders: clocks query", "workorders.api", "clocks_by_job"),
    ("    work orders: holds query", "workorders.api", "holds_by_job"),
    ("    work orders: clocks written", "workorders.api", "clocks_json"),
    ("page headers", "config.api.viewsets.ResourceViewSet", "get_paginated_response"),
    ("JSON rendered", "rest_framework.renderers.JSONRenderer", "render"),
]


def phases(client, lists: list[tuple[str, str]], requests: int) -> None:
    """CPU ms per request of each stage (`STAGES`) of each list, and the whole request, in one block
    after a warm-up with the process frozen as a gunicorn worker is: where a list's time goes
    against another's, without a profiler's overhead per call (each stage is timed as a whole)."""
    import gc
    import importlib

    from django.urls import get_resolver

    from config.api.viewsets import ResourceViewSet

    get_resolver().url_patterns  # noqa: B018 - imports every list's viewset before they are looked for
    spent: dict[str, float] = {}

    def timed(label, function):
        def stage(*args, **kwargs):
            started = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.process_time() - started

        return stage

    serializers = {view.serializer_class for view in _subclasses(ResourceViewSet) if view.serializer_class}
    patched = []
    for label, owner, method in STAGES:
        if owner:
            owners = [_import(importlib, owner)]
        else:  # every class that defines it among the lists' serializers
            owners = {cls for serializer in serializers for cls in serializer.__mro__ if method in vars(cls)}
        for cls in owners:
            patched.append((cls, method, vars(cls).get(method)))  # None: inherited, deleted after
            setattr(cls, method, timed(label, getattr(cls, method)))
    try:
        for _, path in lists:
            for i in range(20):
                assert client.get(path.format(page=i % 100 + 1)).status_code == 200
        gc.collect()
        gc.freeze()
        for name, path in lists:
            spent.clear()
            started = time.process_time()
            for i in range(requests):
                client.get(path.format(page=i * 37 % 100 + 1))
            whole = (time.process_time() - started) / requests * 1000
            print(f"{name}: {whole:.2f} ms CPU per request")
            for label, _, _ in STAGES:
                if label in spent:
                    print(f"  {label:<42} {spent[label] / requests * 1000:6.3f}")
    finally:
        for cls, method, original in reversed(patched):
            if original is None:
                delattr(cls, method)
            else:
                setattr(cls, method, original)


def _import(importlib, dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


if __name__ == "__main__":
    main()
