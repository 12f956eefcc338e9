"""Helpers shared by the scheduled management commands."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
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


def database_error(exc: DatabaseError) -> CommandError:
    """A database that is down, refuses us or broke off, as one line for cron's mail (the driver's
    message spans lines; it names the host and port, never the password), exit status 1."""
    reason = " ".join(str(exc).split()) or "no reason given"
    return CommandError(f"Database error ({exc.__class__.__name__}): {reason}")


class DomainCommand(BaseCommand):
    """A scheduled or operator's command: its domain errors (config.errors) end it with their
    message and exit code, and a database error with one line naming it, not a traceback of a
    hundred lines (found by the operator's sweep: cron mailed those when PostgreSQL was down)."""

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except DomainError as exc:
            raise as_command_error(exc) from exc
        except DatabaseError as exc:
            raise database_error(exc) from exc
