"""The organization's page in the admin: its members' inline."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenancy.models import Membership

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(admin_client):
    return admin_client  # pytest-django's: a superuser, logged in


def page_queries(staff, org) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = staff.get(f"/admin/tenancy/organization/{org.pk}/change/")
    assert response.status_code == 200
    return len(queries), response.content.decode()


def test_the_members_inline_reads_its_users_with_its_rows(staff, org, make_member):
    """Before, Django's autocomplete widget looked each member's user up: a query per row."""
    for role in ("viewer", "operator", "manager"):
        make_member(role, org)
    page_queries(staff, org)  # warms the content types' cache
    few, _ = page_queries(staff, org)
    members = [make_member("viewer", org) for _ in range(5)]
    many, page = page_queries(staff, org)
    assert many == few
    assert all(member.user.username in page for member in members)


def test_a_members_role_changes_and_its_user_stays(staff, org, make_member):
    """An existing row's user is shown, not editable (remove the membership, add another); its
    role still changes, and a new row picks its user as before."""
    member = make_member("viewer", org)
    other = get_user_model().objects.create_user("newcomer", password="x" * 12)
    form = {
        "slug": org.slug, "name": org.name, "default_currency": org.default_currency,
        "default_time_zone": org.default_time_zone, "notification_emails": "",
        "memberships-TOTAL_FORMS": "2", "memberships-INITIAL_FORMS": "1",
        "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000",
        "memberships-0-id": str(member.pk), "memberships-0-organization": str(org.pk),
        "memberships-0-user": str(other.pk),  # ignored: the field is disabled
        "memberships-0-role": "manager",
        "memberships-1-organization": str(org.pk), "memberships-1-user": str(other.pk),
        "memberships-1-role": "viewer",
    }  # fmt: skip
    response = staff.post(f"/admin/tenancy/organization/{org.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    member.refresh_from_db()
    assert member.user_id != other.pk and member.role == "manager"
    assert Membership.objects.get(organization=org, user=other).role == "viewer"
