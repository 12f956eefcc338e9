"""One-off: begin the term versions of contracts postponed before the tenth round on their start.

Since the tenth round an approved postponement drops the versions of days before the new start
(`contracts.terms._begin_at_start`); contracts postponed earlier keep them, so their `/terms` list
ranges on which they were never in force and `?as_of=` a day before the start reads the approval's
terms instead of those the contract starts with. This command re-lays them as a postponement does
today. A dry run by default (it lists what it would change, by doing it and rolling it back);
`--apply` commits, one transaction per contract; running it again finds nothing to do.
"""

from django.core.management.base import CommandError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from config.management import DomainCommand
from contracts import terms
from contracts.models import Contract, TermVersion
from contracts.services import _candidates, _lock_if, contract_label
from tenancy.models import Organization


def _ranges(found) -> str:
    return ", ".join(f"{v.origin} {v.effective_from}..{v.effective_to or ''}" for v in found)


class _DryRun(Exception):
    """Rolls back one contract's transaction in a dry run."""


class Command(DomainCommand):
    help = (
        "Begin the term versions of contracts postponed before the tenth round on their start date "
        "(versions of days before it dropped, their terms carried in the later ones). Lists what it "
        "would change; --apply to change it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--apply", action="store_true", help="Re-lay the versions (default: a dry run that changes nothing)."
        )
        parser.add_argument("--org", help="Only this organization (its slug).")

    def handle(self, *args, apply=False, org=None, **options):
        now = timezone.now()
        mode = "apply" if apply else "dry run"
        self.stdout.write(f"relay_postponed_terms ({mode})")
        # Contracts with a version that begins before their start (one indexed query, in batches).
        early = TermVersion.objects.filter(contract_id=OuterRef("pk"), effective_from__lt=OuterRef("start_date"))
        found = Contract.objects.filter(Exists(early))
        if org:
            if not Organization.objects.filter(slug=org).exists():
                raise CommandError(f"--org {org!r}: no such organization.")
            found = found.filter(organization__slug=org)
        relaid = left = 0
        for pk in _candidates(found):
            try:
                with transaction.atomic():
                    contract = _lock_if(pk)
                    if contract is None:  # locked by a request or a runner: its next run does it
                        self.stdout.write(f"  {contract_label(pk)}: busy, run again")
                        left += 1
                        continue
                    before, reason = terms.postponed_before_versions(contract)
                    if not before:
                        continue
                    label = contract_label(pk)
                    ranges = _ranges(before)
                    if reason is not None:
                        self.stdout.write(f"  {label}: {reason} ({ranges})")
                        left += 1
                        continue
                    row_changed = terms.relay_postponed(contract, now=now)
                    after = _ranges(terms.versions(contract))
                    self.stdout.write(
                        f"  {label}: starts {contract.start_date}; versions {ranges} -> {after}"
                        + ("; the row takes the terms in force today (contract.terms_changed)" if row_changed else "")
                    )
                    relaid += 1
                    if not apply:
                        raise _DryRun
            except _DryRun:
                pass
        verb = "re-laid" if apply else "to re-lay"
        self.stdout.write(f"Summary: {relaid} contracts {verb}, {left} left as they are.")
        if not apply and relaid:
            self.stdout.write("Nothing was changed: run again with --apply.")
