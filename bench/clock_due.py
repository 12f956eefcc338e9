"""Benchmark: SLA due-time computations per second in one process (slas/clock.py, pure Python).

What is measured: `slas.clock.due(calendar, start, target_minutes)` on aware datetimes (UTC in,
UTC out), the call the SLA services make, for 100,000 random cases: calendar Mon-Fri
08:00-17:00 Europe/Amsterdam with the Dutch public holidays (holidays package), starts spread
uniformly (to the second) over those two years, targets 1 to 5,000 business minutes, no
pauses. The calendar is compiled (and its years covered) before the timed loop, as the cache
would have it in a running process; its compile time is reported separately. Case generation
is not timed. The timed loop runs ROUNDS times over the same cases; `due_per_second` is the
best round (the least disturbed by other work on the machine, as `timeit` advises) and
`due_per_second_median` the median round. The same cases are also timed on the epoch-seconds API
(`CompiledCalendar.due(start, target_seconds)`, `epoch_per_second`), which skips the datetime
conversions.

Every result is checked afterwards (not timed): the business time from start to due is exactly
the target, and the second before the due time is business time (so the due time is inside or
at the end of a working interval). A mismatch counts as an error.

The database URL is ignored. Run it with `make bench` (bench/run.py calls `run()`), or
standalone: `.venv/bin/python bench/clock_due.py`.
"""

import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CASES = 100_000
SEED = 20260101
YEARS = (2026, 2027)
TARGET_MINUTES = (1, 5_000)
ROUNDS = 5  # the timed loop runs this often; best and median are reported


def calendar_spec():
    """The benchmark's calendar: Mon-Fri 08:00-17:00 Europe/Amsterdam, Dutch public holidays
    (from the `holidays` package)."""
    from slas.clock import CalendarSpec

    hours = tuple((weekday, "08:00", "17:00") for weekday in range(1, 6))
    return CalendarSpec("Europe/Amsterdam", hours, country="NL")


def cases(count: int = CASES, seed: int = SEED) -> list[tuple[datetime, int]]:
    rng = random.Random(seed)
    first = int(datetime(YEARS[0], 1, 1, tzinfo=UTC).timestamp())
    last = int(datetime(YEARS[-1] + 1, 1, 1, tzinfo=UTC).timestamp()) - 1
    return [(datetime.fromtimestamp(rng.randint(first, last), UTC), rng.randint(*TARGET_MINUTES)) for _ in range(count)]


def run(database_url: str | None = None) -> dict:
    """Time the due computations; `database_url` is ignored (the clock needs no database)."""
    from slas.clock import compile_calendar, due

    work = cases()
    spec = calendar_spec()

    started = time.perf_counter()
    calendar = compile_calendar(spec)
    # cover every start and every due time before timing, as a warm cache would
    calendar.due(int(work[0][0].timestamp()), 60)
    calendar.business_seconds(
        int(datetime(YEARS[0], 1, 1, tzinfo=UTC).timestamp()),
        int(datetime(YEARS[-1] + 1, 3, 1, tzinfo=UTC).timestamp()),
    )
    compile_ms = (time.perf_counter() - started) * 1000

    timings = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        results = [due(calendar, start, minutes) for start, minutes in work]
        timings.append(time.perf_counter() - started)

    epoch_work = [(int(start.timestamp()), minutes * 60) for start, minutes in work]
    calendar_due = calendar.due
    epoch_timings = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        epoch_results = [calendar_due(start, target) for start, target in epoch_work]
        epoch_timings.append(time.perf_counter() - started)

    errors = 0
    for (start, minutes), result, epoch_result in zip(work, results, epoch_results, strict=True):
        t = int(result.timestamp())
        if (
            t != epoch_result
            or calendar.business_seconds(int(start.timestamp()), t) != minutes * 60
            or calendar.business_seconds(t - 1, t) != 1
        ):
            errors += 1

    return {
        "cases": len(work),
        "compile_ms": compile_ms,
        "rounds": ROUNDS,
        "due_per_second": len(work) / min(timings),
        "due_per_second_median": len(work) / statistics.median(timings),
        "epoch_per_second": len(work) / min(epoch_timings),
        "epoch_per_second_median": len(work) / statistics.median(epoch_timings),
        "errors": errors,
    }


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # bench/run.py does this for `make bench`
    figures = run()
    for key, value in figures.items():
        print(f"  {key:<24} {value:,.1f}" if isinstance(value, float) else f"  {key:<24} {value:,}")
    sys.exit(1 if figures["errors"] else 0)
