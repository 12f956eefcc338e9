"""Benchmark: due times through the model path with 10,000 calendars in use, beside the pure clock.

What is measured, in one process and one run:

- `pure_per_second`: `slas.clock.due(compiled, start, minutes)` on one precompiled calendar (as
  bench/clock_due.py), the ceiling;
- `model_per_second`: the path the services take for a job's clock, `workorders.clocks.calendar_of(rule)`
  (the rule's calendar row -> its compiled calendar, cached per row and `updated_at`) then
  `clock.due`, for cases spread over CALENDARS calendar rows loaded from the database (each
  case picks a random row: no locality);
- `model_fresh_rows_per_second`: the same path where every computation gets its calendar row as a
  new object (as a request that loads the rule with `select_related("calendar")` does), so the
  per-row cache is looked up instead of the row object's own memo (FRESH_CASES cases);
- `spec_path_per_second`: the old path on the same cases, building `Calendar.spec` and looking it
  up by hash on every computation (what the model did before issue 14), for comparison.

The calendars are CALENDARS rows of one organization: a country (and subdivision) from the
`holidays` package, a time zone, one of three weekly patterns and 0-3 own holidays each, so
nearly every row is a distinct spec (`distinct_specs`). `warm_seconds` is the first pass that
compiles them all (2026-2027 covered), not part of the rates. Each rate is the best of ROUNDS
rounds (the median too). 300 model-path results, sampled, are checked afterwards against a calendar
compiled afresh from the row's spec (`errors`). The machine may be shared: compare the rates of one run, not runs.

Run with `make bench`, or alone: `.venv/bin/python bench/calendar_cache.py` (BENCH_DATABASE_URL,
default postgres://postgres@127.0.0.1:5432/sla_bench; it uses a database named `<that>_calendars`).
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

CALENDARS = 10_000
CASES = 100_000
FRESH_CASES = 30_000
ROUNDS = 3
SEED = 20261129
REGIONS = [
    ("GB", "ENG", "Europe/London"), ("GB", "SCT", "Europe/London"), ("NL", None, "Europe/Amsterdam"),
    ("DE", "BY", "Europe/Berlin"), ("DE", "NW", "Europe/Berlin"), ("FR", None, "Europe/Paris"),
    ("US", "CA", "America/Los_Angeles"), ("US", "NY", "America/New_York"), ("US", "TX", "America/Chicago"),
    ("CA", "ON", "America/Toronto"), ("AU", "NSW", "Australia/Sydney"), ("JP", None, "Asia/Tokyo"),
    ("IN", None, "Asia/Kolkata"), ("BR", "SP", "America/Sao_Paulo"), ("ZA", None, "Africa/Johannesburg"),
    ("ES", "MD", "Europe/Madrid"), ("IT", None, "Europe/Rome"), ("SE", None, "Europe/Stockholm"),
    ("NZ", None, "Pacific/Auckland"), ("SG", None, "Asia/Singapore"),
]  # fmt: skip
PATTERNS = [
    [{"weekday": d, "start": "08:00", "end": "17:00"} for d in range(1, 6)],
    [{"weekday": d, "start": s, "end": e} for d in range(1, 6) for s, e in (("08:00", "12:00"), ("13:00", "17:30"))],
    [{"weekday": d, "start": "07:00", "end": "19:00"} for d in range(1, 7)],
]


def _database(base_url: str) -> str:
    import benchdb

    name = urlsplit(base_url).path.lstrip("/") or "sla_bench"
    return benchdb.database_url(base_url, f"{name}_calendars")


def _seed(rng: random.Random) -> None:
    from slas.models import Calendar
    from tenancy.models import Organization

    org = Organization.objects.create(slug="bench", name="Bench", default_currency="EUR")
    rows = []
    for n in range(CALENDARS):
        country, subdivision, zone = rng.choice(REGIONS)
        own = sorted({date(2026, 1, 1).fromordinal(date(2026, 1, 1).toordinal() + rng.randrange(730)).isoformat()
                      for _ in range(rng.randrange(4))})  # fmt: skip
        rows.append(
            Calendar(
                organization=org,
                name=f"Calendar {n}",
                time_zone=zone,
                hours=rng.choice(PATTERNS),
                holidays=[{"date": day, "name": "Closed"} for day in own],
                holiday_country=country,
                holiday_subdivision=subdivision or "",
            )
        )
    Calendar.objects.bulk_create(rows, batch_size=2000)


def _best(timings: list[float], count: int) -> tuple[float, float]:
    return count / min(timings), count / statistics.median(timings)


def run(database_url: str | None = None) -> dict:
    import benchdb

    url = _database(
        database_url or os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sla_bench")
    )
    benchdb.reset_database(url)
    benchdb.migrate(url)
    benchdb.use_django(url)

    from slas import clock
    from slas.models import Calendar, SlaRule
    from workorders.clocks import calendar_of

    rng = random.Random(SEED)
    _seed(rng)
    clock.clear_cache()
    # The rows as the services load them (select_related on the rule); rules are in-memory stand-ins.
    rules = [SlaRule(calendar=row) for row in Calendar.objects.order_by("pk")]
    first = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    last = int(datetime(2027, 10, 1, tzinfo=UTC).timestamp())
    cases = [
        (rng.choice(rules), datetime.fromtimestamp(rng.randint(first, last), UTC), rng.randint(1, 5000))
        for _ in range(CASES)
    ]

    started = time.perf_counter()
    for rule in rules:  # compile every calendar once and cover 2026-2027
        compiled = calendar_of(rule)
        compiled.due(first, 60)
        compiled.due(last, 6000 * 60)
    warm_seconds = time.perf_counter() - started
    distinct = len({id(calendar_of(rule)) for rule in rules})

    # New row objects (not timed): what loading the rule and its calendar afresh gives.
    def fresh(rule):
        values = {f.attname: getattr(rule.calendar, f.attname) for f in Calendar._meta.concrete_fields}
        return SlaRule(calendar=Calendar(**values))

    fresh_cases = [(fresh(rule), start, minutes) for rule, start, minutes in cases[:FRESH_CASES]]

    pure = calendar_of(rules[0])
    pure_timings, model_timings, fresh_timings, spec_timings = [], [], [], []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _, start, minutes in cases:
            clock.due(pure, start, minutes)
        pure_timings.append(time.perf_counter() - started)

        started = time.perf_counter()
        results = [clock.due(calendar_of(rule), start, minutes) for rule, start, minutes in cases]
        model_timings.append(time.perf_counter() - started)

        started = time.perf_counter()
        for rule, start, minutes in fresh_cases:
            clock.due(calendar_of(rule), start, minutes)
        fresh_timings.append(time.perf_counter() - started)
        for rule, _, _ in fresh_cases:  # the next round gets new objects again
            rule.calendar.__dict__.pop("_compiled_memo", None)

        started = time.perf_counter()
        for rule, start, minutes in cases:
            clock.due(rule.calendar.spec, start, minutes)
        spec_timings.append(time.perf_counter() - started)

    # Checked on a sample against a calendar compiled afresh from the row's spec (not the cache).
    sample = rng.sample(range(CASES), 300)
    errors = sum(
        1
        for i in sample
        if results[i] != clock.due(clock.CompiledCalendar(cases[i][0].calendar.spec), cases[i][1], cases[i][2])
    )
    pure_best, pure_median = _best(pure_timings, CASES)
    model_best, model_median = _best(model_timings, CASES)
    fresh_best, fresh_median = _best(fresh_timings, FRESH_CASES)
    spec_best, spec_median = _best(spec_timings, CASES)
    return {
        "calendars": CALENDARS,
        "distinct_specs": distinct,
        "cases": CASES,
        "warm_seconds": warm_seconds,
        "pure_per_second": pure_best,
        "pure_per_second_median": pure_median,
        "model_per_second": model_best,
        "model_per_second_median": model_median,
        "model_fresh_rows_per_second": fresh_best,
        "model_fresh_rows_per_second_median": fresh_median,
        "spec_path_per_second": spec_best,
        "spec_path_per_second_median": spec_median,
        "errors": errors,
    }


if __name__ == "__main__":
    figures = run()
    for key, value in figures.items():
        print(f"  {key:<28} {value:,.1f}" if isinstance(value, float) else f"  {key:<28} {value:,}")
    sys.exit(1 if figures["errors"] else 0)
