"""Where a collection's request spends CPU, behind gunicorn as the collections bench serves it (issue 15).

Not one of `make bench`'s benchmarks: a tool for the next pass. The collections bench measures
throughput on a 2-core machine, where the server, PostgreSQL and the client share the CPU: a
collection's ratio follows the sum of the three. This serves the bench's data (seeded by
bench/profile_collection.py unless present) with the bench's gunicorn (2 workers, 4 client
threads, real JWTs), drives N requests per collection and prints, per request, the CPU time of the
gunicorn workers, of the PostgreSQL backends of the database and of this client (from /proc), so a
change can be judged by its CPU on a machine busy with other work, where throughput is noise.

    .venv/bin/python bench/cpu_per_request.py counterparties work_orders [...]   (N=800 by default)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [p for p in (str(ROOT / "bench"), str(ROOT)) if p not in sys.path]

import collections_bench  # noqa: E402 - bench/ on the path first
import profile_collection  # noqa: E402 - bench/ on the path first
from list_counterparties import free_port, stop, wait_for_health  # noqa: E402 - bench/ on the path first

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes (those that have exited count nothing)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def pids(pattern: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return [int(pid) for pid in found.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", help="collections as bench/collections_bench.py names them")
    names = parser.parse_args().names
    count = int(os.environ.get("N", "800"))
    url = os.environ.get("BENCH_DATABASE_URL", profile_collection.DEFAULT_URL)
    os.environ.update({"DEBUG": "false", "LOG_LEVEL": "WARNING", "THROTTLE_USER_RATE": "100000000/min"})
    ids = profile_collection.seeded(False, url)
    token = profile_collection.token()
    from django.db import connections

    connections.close_all()
    database = connections["default"].settings_dict["NAME"]
    port = free_port()
    # One connection per worker for the whole run: a backend that exits mid-run (CONN_MAX_AGE's
    # default 60 s) takes its CPU with it, and the postgres figure comes out short or negative.
    command, env = collections_bench.gunicorn(
        url, port, REDIS_URL="", CACHE_KEY_PREFIX=f"cpu-{port}", CONN_MAX_AGE="3600"
    )
    paths = {name: (path, kind) for name, path, kind in collections_bench.collections(ids)}
    if unknown := [name for name in names if name not in paths]:
        parser.error(f"unknown collections {unknown}; these are known: {', '.join(paths)}")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_health(server, port)
        for name in names:
            path, kind = paths[name]
            errors: list[str] = []
            collections_bench.drive(port, token, path, kind, 40, lambda i: i % 100 + 1, errors, name)  # warm up
            workers, backends = pids(f"gunicorn config.wsgi.*{port}"), pids(f"postgres: .*{database} ")
            before = cpu_seconds(workers), cpu_seconds(backends), time.process_time(), time.monotonic()
            latencies = collections_bench.drive(
                port, token, path, kind, count, lambda i: i * 37 % 100 + 1, errors, name
            )
            after = cpu_seconds(workers), cpu_seconds(backends), time.process_time(), time.monotonic()
            n = len(latencies)
            server_ms, pg_ms, client_ms = ((after[i] - before[i]) * 1000 / n for i in range(3))
            print(
                f"{name:<20} {n / (after[3] - before[3]):6.1f} req/s   CPU ms per request: gunicorn {server_ms:5.2f}"
                f"  postgres {pg_ms:5.2f}  client {client_ms:5.2f}  total {server_ms + pg_ms + client_ms:5.2f}"
                + (f"  errors {len(errors)}" if errors else ""),
                flush=True,
            )
    finally:
        stop(server)


if __name__ == "__main__":
    main()
