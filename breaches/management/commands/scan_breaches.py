"""Record new breaches, announce escalations and refresh running breaches; safe from cron on
several machines at once (claimed rows are skipped by the others)."""

import gc

from django.core.management.base import CommandError

from breaches.services import scan_breaches
from config.management import BATCH_SIZE_RANGE, DomainCommand, check_batch_size, parse_now
from tenancy.models import Organization


class Command(DomainCommand):
    help = "Find running SLA clocks past due and record their breaches (exactly once); escalate; refresh."

    def add_arguments(self, parser):
        parser.add_argument("--now", help="Run as if it were this instant (ISO 8601; default: now).")
        parser.add_argument("--org", help="Only this organization (slug).")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=1000,
            help=f"Clocks per transaction ({BATCH_SIZE_RANGE}; default 1000).",
        )

    def handle(self, *args, now=None, org=None, batch_size=1000, **options):
        now = parse_now(now)
        check_batch_size(batch_size)
        organization = None
        if org:
            organization = Organization.objects.filter(slug=org).first()
            if organization is None:
                raise CommandError(f"No organization {org!r}.")
        self.stdout.write(f"scan_breaches at {now.isoformat()}" + (f" for {org}" if org else ""))
        # What the process holds before the scan (Django, the apps, all the system checks imported)
        # is out of the cyclic GC's generations while it runs: the scan allocates objects per row,
        # and each full collection would walk all of that again (a third or more of the every-minute
        # refresh at 1M jobs, docs/performance.md). Back after it, collectable as before.
        gc.freeze()
        try:
            summary = scan_breaches(
                now=now, organization=organization, batch_size=batch_size, log=lambda m: self.stdout.write(f"  {m}")
            )
        finally:
            gc.unfreeze()
        self.stdout.write(
            f"  timings: refresh {summary.refresh_seconds:.3f}s ({summary.breaches_read} breaches read), "
            f"detection {summary.detect_seconds:.3f}s, escalation {summary.escalate_seconds:.3f}s"
        )
        self.stdout.write(
            f"Summary: {summary.clocks_examined} clocks examined ({summary.clocks_past_due} past due, "
            f"{summary.clocks_escalating} past an escalation level), {summary.new_breaches} new breaches, "
            f"{summary.escalations} escalations, {summary.refreshed} breaches refreshed, "
            f"{summary.finalized} finalised, in {summary.seconds:.2f}s."
        )
        if summary.failures:  # the rest was scanned; cron sees the failure (its exit status)
            raise CommandError(f"Skipped rules ({len(summary.failures)}): " + "; ".join(summary.failures))
