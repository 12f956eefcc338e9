"""Run every benchmark and print its figures: `make bench` (or `.venv/bin/python bench/run.py`).

The benchmarks run on PostgreSQL, in a database of their own that each benchmark resets:
BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/sla_bench. Nothing else is
touched. When that server is unreachable this says so and exits 1; it also exits 1 when a
benchmark fails (an exception or a wrong response). Figures are printed, never checked
against limits.

A benchmark is a module in bench/ with `run(database_url) -> dict` of named figures; add
its name to BENCHMARKS below. It fails when it raises or when its `errors` figure is not 0.
"""

import importlib
import os
import sys
import time
import traceback
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/sla_bench"

BENCHMARKS = [
    "list_counterparties",
    "clock_due",
    "calendar_cache",
    "scan",
    "ledger_bench",
    "event_cursor",
    "stream_latency",
    "deliveries",
    "reports_bench",
    "agreements",  # issue 13: contract matching, a year of planned visits
    "billing_bench",
    "collections_bench",  # issue 15: every collection beside the counterparty list and a plain DRF yardstick
    "graphql_bench",  # issue 10: the deep contract query, GraphQL beside REST
    "clock_recompute",  # issue 15: a job's clocks through the models, beside the pure clock
]


def main() -> int:
    sys.path[:0] = [str(BENCH_DIR), str(ROOT)]
    import pg_reachable

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    if pg_reachable.main(url) != 0:
        print(f"make bench: PostgreSQL is not reachable at {url}; set BENCH_DATABASE_URL.", file=sys.stderr)
        return 1

    failed = []
    for name in BENCHMARKS:
        print(f"== {name} ==", flush=True)
        started = time.monotonic()
        try:
            figures = importlib.import_module(name).run(url)
        except Exception:
            traceback.print_exc()
            print(f"== {name}: FAILED ==", flush=True)
            failed.append(name)
            continue
        for key, value in figures.items():
            print(f"  {key:<24} {value:.1f}" if isinstance(value, float) else f"  {key:<24} {value}")
        if figures.get("errors"):
            print(f"== {name}: FAILED, {figures['errors']} error(s) ==", flush=True)
            failed.append(name)
        else:
            print(f"== {name}: done in {time.monotonic() - started:.0f} s ==", flush=True)

    if failed:
        print(f"make bench: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"make bench: {len(BENCHMARKS)} benchmark(s) ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
