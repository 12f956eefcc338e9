"""Helpers shared by the scheduled management commands."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from config import dates
from config.errors import DomainError, as_command_error


def parse_now(value: str | None) -> dt.datetime:
    """`--now` as an aware datetime: an ISO 8601 timestamp (UTC when it has no offset)."""
    if not value:
        return timezone.now()
    try:
        parsed = parse_datetime(value)
    except ValueError:  # well-formed but impossible, e.g. 2026-02-30 or +25:00
        parsed = None
    if parsed is None:
        raise CommandError(f"--now {value!r} is not an ISO 8601 timestamp.")
    parsed = parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=dt.UTC)
    if not dates.in_range(parsed):  # the commands count days and months on from it (config.dates)
        raise CommandError(f"--now {value!r} is not {dates.RANGE}.")
    return parsed


# The largest `--batch-size` a command takes: a batch is one transaction whose rows are held in
# memory, and a larger number only overflowed the database's LIMIT (bigint) or a C int (a traceback).
MAX_BATCH_SIZE = 100_000
BATCH_SIZE_RANGE = f"from 1 to {MAX_BATCH_SIZE:,}"


def check_batch_size(value: int) -> int:
    """`--batch-size` within 1..MAX_BATCH_SIZE, else a CommandError."""
    if value < 1:
        raise CommandError("--batch-size must be at least 1.")
    if value > MAX_BATCH_SIZE:
        raise CommandError(f"--batch-size must be at most {MAX_BATCH_SIZE}.")
    return value


class DomainCommand(BaseCommand):
    """A command whose domain errors (config.errors) end it with their message and exit code."""

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except DomainError as exc:
            raise as_command_error(exc) from exc
