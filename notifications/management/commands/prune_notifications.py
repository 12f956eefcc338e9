"""Delete old, finished webhook deliveries (and their attempts) and e-mails: the outbox's rows grow
with every event; the events themselves (the audit trail) are never deleted."""

import datetime as dt
import time

from django.core.management.base import CommandError

from config.management import BATCH_SIZE_RANGE, DomainCommand, check_batch_size, parse_now
from notifications.services import prune_outbox


class Command(DomainCommand):
    help = (
        "Delete webhook deliveries (with their attempts) and e-mails that succeeded or failed for good and "
        "last changed more than --older-than days ago. Pending rows and events (the audit trail, the "
        "stream's resume point) are kept. Safe from cron on several machines at once."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=90,
            metavar="DAYS",
            help="Keep what changed within this many days (at least 1; default 90).",
        )
        parser.add_argument("--now", help="Count the days back from this instant (ISO 8601; default: now).")
        parser.add_argument(
            "--batch-size", type=int, default=1000, help=f"Rows per transaction ({BATCH_SIZE_RANGE}; default 1000)."
        )

    def handle(self, *args, older_than=90, now=None, batch_size=1000, **options):
        if older_than < 1:
            raise CommandError("--older-than must be at least 1 day.")
        if older_than > 36_500:
            raise CommandError("--older-than must be at most 36500 days.")
        check_batch_size(batch_size)
        before = parse_now(now) - dt.timedelta(days=older_than)
        started = time.monotonic()
        self.stdout.write(f"prune_notifications: finished rows last changed before {before.isoformat()}")
        counts = prune_outbox(before=before, batch_size=batch_size, log=lambda m: self.stdout.write(f"  {m}"))
        self.stdout.write(
            f"Summary: {counts['webhook_deliveries']} webhook deliveries ({counts['webhook_attempts']} attempts) "
            f"and {counts['emails']} e-mails deleted in {time.monotonic() - started:.2f}s."
        )
