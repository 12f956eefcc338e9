"""Load the demo data, idempotently: run it as often as you like. What exists is left as it is
(staff may have edited it); only what is missing is created.

Each app that has demo data has a `demo.py` with `seed(log)`; they run in INSTALLED_APPS order,
which is the layer order, so an app's demo data can use the apps below it.
"""

from importlib import import_module

from django.apps import apps
from django.db import transaction
from django.utils.module_loading import module_has_submodule

from config.management import DomainCommand
from tenancy.auth import issue_tokens
from tenancy.demo import DEMO_USERS
from tenancy.models import Membership


class Command(DomainCommand):
    help = "Create the demo organizations, users and data that are missing; what exists is left as it is."

    def add_arguments(self, parser):
        parser.add_argument("--quiet", action="store_true", help="Print only the summary line.")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Base URL for the printed curl line.")

    def handle(self, *args, quiet=False, url="http://127.0.0.1:8000", **options):
        log = (lambda message: None) if quiet else (lambda message: self.stdout.write(f"  {message}"))
        with transaction.atomic():
            for app_config in apps.get_app_configs():
                if module_has_submodule(app_config.module, "demo"):
                    log(f"{app_config.label}:")
                    import_module(f"{app_config.name}.demo").seed(log)
        self.stdout.write(self.style.SUCCESS("Demo data is loaded."))
        if quiet:
            return
        self.stdout.write("\nDemo logins (password = username; demo only):")
        for username, org, role in DEMO_USERS:
            self.stdout.write(f"  {username:<15} {org:<6} {role}")
        membership = Membership.objects.select_related("user", "organization").get(
            user__username="demo-manager", organization__slug="demo"
        )
        token = issue_tokens(membership)["access"]
        self.stdout.write("\nTry it (a demo-manager token, valid for an hour):")
        self.stdout.write(f"  curl -s -H 'Authorization: Bearer {token}' {url.rstrip('/')}/api/v1/me")
