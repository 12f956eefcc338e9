"""Deliver what the outbox holds: signed webhook attempts and e-mails, when they are due.

Long-running by default (SIGTERM or SIGINT ends it after the attempt in hand, giving back the
rows it had claimed but not attempted); `--once` for cron: deliver what is due now and exit.
Safe with several workers at once (claimed rows).
"""

import logging
import signal
import threading
import time

from django.core.management.base import CommandError
from django.db import DatabaseError, close_old_connections

from config.management import BATCH_SIZE_RANGE, DomainCommand, check_batch_size, parse_now
from notifications.delivery import PassSummary, deliver_due

logger = logging.getLogger("notifications")
RECOVER_SECONDS = 5


class Command(DomainCommand):
    help = "Deliver due webhook attempts and e-mails (long-running; --once for cron)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Deliver what is due now, then exit.")
        parser.add_argument("--now", help="With --once: run as if it were this instant (ISO 8601).")
        parser.add_argument(
            "--batch-size", type=int, default=20, help=f"Rows claimed at a time ({BATCH_SIZE_RANGE}; default 20)."
        )
        parser.add_argument("--poll", type=float, default=1.0, help="Seconds to wait when nothing is due (default 1).")

    def handle(self, *args, once=False, now=None, batch_size=20, poll=1.0, **options):
        check_batch_size(batch_size)
        if poll <= 0:
            raise CommandError("--poll must be more than 0 seconds.")
        if now and not once:
            raise CommandError("--now needs --once (a long-running worker follows the real clock).")
        fixed_now = parse_now(now) if now else None
        started = time.monotonic()
        if once:
            summary = PassSummary()
            at = parse_now(now)
            self.stdout.write(f"deliver_notifications --once at {at.isoformat()}")
            while deliver_due(now=at, limit=batch_size, summary=summary, live=fixed_now is None):
                self.stdout.write(f"  {self._counts(summary)}")
                at = fixed_now or parse_now(None)
            self.stdout.write(f"Summary: {self._counts(summary)}, in {time.monotonic() - started:.2f}s.")
            return
        self._serve(batch_size, poll, started)

    def _serve(self, batch_size: int, poll: float, started: float) -> None:
        stop = threading.Event()

        def ask_to_stop(signum, frame):
            stop.set()

        previous = {sig: signal.signal(sig, ask_to_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        total = PassSummary()
        self.stdout.write("deliver_notifications: working (SIGTERM or Ctrl-C to stop)")
        self.stdout.flush()
        try:
            while not stop.is_set():
                close_old_connections()
                summary = PassSummary()
                try:
                    claimed = deliver_due(
                        now=parse_now(None), limit=batch_size, summary=summary, should_stop=stop.is_set, live=True
                    )
                except DatabaseError:
                    # The database went away (a restart, a failover): wait and carry on; rows
                    # claimed before are claimed again when their lease runs out.
                    logger.exception("deliver_notifications: database error; retrying in %s s", RECOVER_SECONDS)
                    stop.wait(RECOVER_SECONDS)
                    continue
                for name in ("webhooks_succeeded", "webhooks_failed", "emails_sent", "emails_failed"):
                    setattr(total, name, getattr(total, name) + getattr(summary, name))
                if claimed:
                    self.stdout.write(f"  {self._counts(total)}")
                    self.stdout.flush()
                else:
                    stop.wait(poll)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write(f"Stopped. Summary: {self._counts(total)}, in {time.monotonic() - started:.2f}s.")
        self.stdout.flush()

    @staticmethod
    def _counts(summary: PassSummary) -> str:
        return (
            f"{summary.webhooks_succeeded} webhook deliveries succeeded, {summary.webhooks_failed} failed; "
            f"{summary.emails_sent} e-mails sent, {summary.emails_failed} failed"
        )
