"""Time-driven contract transitions; safe from cron on several machines at once, idempotent."""

import time

from django.core.management.base import CommandError

from config.management import DomainCommand, parse_now
from contracts.services import run_lifecycle


class Command(DomainCommand):
    help = (
        "Activate scheduled contracts whose start date has begun, expire or auto-renew contracts whose "
        "expiry date has ended, and send the expiring / notice-due reminders (each once)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--now", help="Run as if it were this instant (ISO 8601; default: now).")

    def handle(self, *args, now=None, **options):
        now = parse_now(now)
        started = time.monotonic()
        self.stdout.write(f"run_lifecycle at {now.isoformat()}")
        summary = run_lifecycle(now=now, log=lambda message: self.stdout.write(f"  {message}"))
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"Summary: {summary.activated} activated, {summary.expired} expired, "
            f"{summary.auto_renewed} auto-renewed, {summary.reminders} reminders sent"
            + "".join(f", {count} {name}" for name, count in summary.more.items())
            + f" in {elapsed:.2f}s."
        )
        if summary.failures:  # the rest was done; cron sees the failure (its exit status)
            raise CommandError(f"Skipped ({len(summary.failures)}): " + "; ".join(summary.failures))
