"""Fixtures shared by the toolkit's sweeps over every endpoint."""

import io

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from tenancy.auth import issue_tokens
from tenancy.models import Membership
from tests.processes import migrated_sqlite


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    """The OpenAPI document as an integrator downloads it (read once per module)."""
    with django_db_blocker.unblock():
        response = APIClient().get("/api/v1/schema?format=json")
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def demo_username() -> str:
    return "demo-manager"


@pytest.fixture
def demo(db, demo_username):
    """The demo data, and an API client with a real JWT of `demo_username` in the demo organization."""
    call_command("seed_demo", "--quiet")
    membership = Membership.objects.select_related("user", "organization").get(
        user__username=demo_username, organization__slug="demo"
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_tokens(membership)['access']}")
    return client


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory):
    """A migrated SQLite file, made once; tests with real servers copy it (tests.processes.copy_sqlite)."""
    return migrated_sqlite(tmp_path_factory.mktemp("migrated"))


@pytest.fixture
def scanned(demo):
    """The demo with its overdue jobs' breaches recorded, one acknowledged and one waived (so the
    answers carry who did it), as a manager sees them."""
    from breaches.models import Breach

    call_command("scan_breaches", stdout=io.StringIO())
    breaches = list(Breach.objects.filter(organization__slug="demo").order_by("id")[:2])
    assert len(breaches) == 2, "the demo's overdue jobs breach"
    assert demo.post(f"/api/v1/breaches/{breaches[0].pk}/acknowledge", {}, format="json").status_code == 200
    assert demo.post(f"/api/v1/breaches/{breaches[1].pk}/waive", {"reason": "x"}, format="json").status_code == 200
    return demo
