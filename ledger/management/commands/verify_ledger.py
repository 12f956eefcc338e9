"""Prove every contract's running balance against a fresh sum over its entries."""

from django.core.management.base import CommandError

from config.management import DomainCommand
from contracts.models import Contract
from ledger.services import running_balance_errors
from tenancy.models import Organization


class Command(DomainCommand):
    help = "Check that each contract's remaining_hours equals the sum of its ledger entries; exit 1 if not."

    def add_arguments(self, parser):
        parser.add_argument("--org", help="Only this organization (slug).")

    def handle(self, *args, org=None, **options):
        contracts = Contract.objects.all()
        if org:
            organization = Organization.objects.filter(slug=org).first()
            if organization is None:
                raise CommandError(f"No organization {org!r}.")
            contracts = contracts.filter(organization=organization)
        checked = contracts.count()
        errors = running_balance_errors(contracts)
        for pk, kept, summed in errors:
            self.stdout.write(f"  contract {pk}: running balance {kept} != sum of entries {summed}")
        if errors:
            raise CommandError(f"{len(errors)} of {checked} contracts disagree with their entries.")
        self.stdout.write(f"Summary: {checked} contracts checked; every running balance equals its entries.")
