"""Demo organizations and users (password = username)."""

from django.contrib.auth import get_user_model

from .models import Membership, Organization

DEMO_ORGANIZATIONS = [
    ("demo", "Demo Field Services", "EUR", "Europe/Amsterdam"),
    ("other", "Other Organization", "USD", "America/New_York"),
]

DEMO_USERS = [
    ("demo-admin", "demo", "admin"),
    ("demo-manager", "demo", "manager"),
    ("demo-approver", "demo", "manager"),
    ("demo-operator", "demo", "operator"),
    ("demo-viewer", "demo", "viewer"),
    ("other-manager", "other", "manager"),
]


def seed(log) -> None:
    # Each row is created when missing and otherwise left alone: a run of `make run` must not undo
    # what staff changed since (an organization's settings, a role, a password).
    organizations = {}
    for slug, name, currency, time_zone in DEMO_ORGANIZATIONS:
        organizations[slug], _ = Organization.objects.get_or_create(
            slug=slug, defaults={"name": name, "default_currency": currency, "default_time_zone": time_zone}
        )
    User = get_user_model()
    for username, slug, role in DEMO_USERS:
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_password(username)
            user.is_staff = user.is_superuser = username == "demo-admin"
            user.save()
        Membership.objects.get_or_create(user=user, organization=organizations[slug], defaults={"role": role})
    log(f"{len(organizations)} organizations, {len(DEMO_USERS)} users (demo-admin is also a Django admin superuser)")
