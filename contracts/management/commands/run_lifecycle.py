"""Time-driven contract transitions; safe from cron on several machines at once, idempotent."""

import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from contracts.services import run_lifecycle


def parse_now(value: str | None):
    """`--now` as an aware datetime (an ISO timestamp; without an offset it is UTC)."""
    if not value:
        return timezone.now()
    parsed = parse_datetime(value)
    if parsed is None:
        raise CommandError(f"--now {value!r} is not an ISO 8601 timestamp.")
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=dt.UTC)


class Command(BaseCommand):
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
            f"{summary.auto_renewed} auto-renewed, {summary.reminders} reminders sent in {elapsed:.2f}s."
        )
