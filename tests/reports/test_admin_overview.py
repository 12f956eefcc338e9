"""The staff dashboard "SLA overview" (admin), rendered through Django's test client on the demo
data and on a random data set: the SVG charts, the open breaches, the clocks at risk, the
contracts expiring, the burn-downs; staff without the view permission are refused."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from breaches.models import Breach
from tests.breaches.factories import active_contract, make_job, make_rule
from tests.ledger.helpers import credit, work
from tests.reports.factories import build_dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(db):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_the_overview_of_an_organization(superuser_client, org):
    build_dataset(org, seed=51, jobs=30)
    contract = active_contract(org, expiry_date=(timezone.now() + dt.timedelta(days=30)).date())
    make_rule(contract, target_minutes=60, escalation=[{"at_percent": 50, "name": "Dispatcher"}])
    job = make_job(contract, timezone.now() - dt.timedelta(minutes=40), now=timezone.now(), reference="AT-RISK-1")
    credit(contract, 20, at=timezone.now() - dt.timedelta(days=5))
    work(contract, 6, at=timezone.now() - dt.timedelta(minutes=10), work_order=job)  # after the job was reported
    page = superuser_client.get(f"/admin/reports/slaoverview/{org.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'aria-label="Compliance per month"' in html and 'aria-label="Burn-down"' in html
    assert "<script" not in html.split("<body")[1].split('id="content"')[1]  # no scripts in the dashboard
    months = re.findall(r"<title>(\d{4}-\d{2}): ", html)
    assert months and all(m >= "2025-12" for m in months)
    open_count = Breach.objects.filter(organization=org, state="open").count()
    assert f"Open breaches ({open_count})" in html
    assert "AT-RISK-1" in html and "Dispatcher" in html
    assert contract.reference in html and "14.00 h left" in html


def test_the_list_page_and_permissions(superuser_client, org, other_org):
    assert superuser_client.get("/admin/reports/slaoverview/").status_code == 200
    page = superuser_client.get(f"/admin/reports/slaoverview/{other_org.pk}/change/").content.decode()
    assert other_org.name in page and "No open breaches." in page
    staff = get_user_model().objects.create_user("clerk", password="pw", is_staff=True)
    client = Client()
    client.force_login(staff)
    assert client.get(f"/admin/reports/slaoverview/{org.pk}/change/").status_code == 403
    assert Client().get("/admin/reports/slaoverview/").status_code == 302  # to the login page


def test_the_overview_renders_on_the_demo_data(superuser_client):
    call_command("seed_demo", quiet=True, stdout=io.StringIO())
    page = superuser_client.get("/admin/reports/slaoverview/")
    assert page.status_code == 200 and b"Compliance per month" in page.content
