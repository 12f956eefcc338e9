"""Print an access token for a user (for operators and scripts)."""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from config.management import DomainCommand
from tenancy.auth import issue_tokens
from tenancy.models import Membership


class Command(DomainCommand):
    help = "Print an access token for USERNAME in an organization (--org when the user has several)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--org", help="Organization slug; needed when the user has several memberships.")
        parser.add_argument("--refresh", action="store_true", help="Print the refresh token too (second line).")

    def handle(self, *args, username, org=None, refresh=False, **options):
        if not get_user_model().objects.filter(username=username).exists():
            raise CommandError(f"No user named {username!r}.")
        memberships = Membership.objects.select_related("user", "organization").filter(user__username=username)
        if org:
            memberships = memberships.filter(organization__slug=org)
        memberships = list(memberships)
        if not memberships:
            raise CommandError(f"{username} has no membership" + (f" of {org}." if org else "."))
        if len(memberships) > 1:
            slugs = ", ".join(sorted(m.organization.slug for m in memberships))
            raise CommandError(f"{username} is a member of several organizations; pass --org (one of {slugs}).")
        if not memberships[0].user.is_active:
            raise CommandError(f"{username} is not active.")
        tokens = issue_tokens(memberships[0])
        self.stdout.write(tokens["access"])
        if refresh:
            self.stdout.write(tokens["refresh"])
