"""`make run` runs `seed_demo` every time (README: "Run it as often as you like"): what exists is
left as staff left it, only what is missing is created (found by an outside sweep: a second run
put the demo calendar's old hours back behind the services' back, and the running clocks kept the
due times of the edit it undid)."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from contracts import services as contract_services
from contracts.models import Counterparty
from events.models import Event
from slas import services as sla_services
from slas.models import Calendar
from tenancy.models import Membership, Organization
from tests.conftest import client_for
from workorders.models import SlaClock

NINE_TO_FIVE = [{"weekday": day, "start": "09:00", "end": "17:00"} for day in range(1, 6)]


def seed():
    call_command("seed_demo", stdout=io.StringIO())


@pytest.mark.django_db
def test_a_second_run_leaves_what_staff_changed():
    seed()
    calendar = Calendar.objects.get(organization__slug="demo", name="UK office hours")
    edited = sla_services.update_calendar(
        instance=calendar,
        actor=None,
        data={"hours": NINE_TO_FIVE, "holidays": [{"date": "2026-12-24", "name": "Office closed"}]},
    )
    assert edited.recomputed_clocks > 0
    due = dict(SlaClock.objects.filter(rule__calendar=calendar).values_list("pk", "due_at"))
    party = Counterparty.objects.get(organization__slug="demo", source="demo", source_id="CUST-001")
    contract_services.update_counterparty(instance=party, actor=None, data={"name": "Northwind (renamed)"})
    Organization.objects.filter(slug="demo").update(default_time_zone="Europe/London")
    manager = Membership.objects.get(user__username="demo-manager", organization__slug="demo")
    manager.role = "viewer"
    manager.save()
    viewer = get_user_model().objects.get(username="demo-viewer")
    viewer.set_password("changed by its owner")
    viewer.save()
    # The last id, not a count: PostgreSQL's sequences outlive the rows of earlier tests.
    last_event = Event.objects.order_by("-pk").values_list("pk", flat=True).first()

    seed()

    calendar.refresh_from_db()
    assert (calendar.hours, calendar.holidays) == (NINE_TO_FIVE, [{"date": "2026-12-24", "name": "Office closed"}])
    assert dict(SlaClock.objects.filter(rule__calendar=calendar).values_list("pk", "due_at")) == due
    assert Counterparty.objects.get(pk=party.pk).name == "Northwind (renamed)"
    assert Organization.objects.get(slug="demo").default_time_zone == "Europe/London"
    assert Membership.objects.get(pk=manager.pk).role == "viewer"
    assert get_user_model().objects.get(username="demo-viewer").check_password("changed by its owner")
    assert Calendar.objects.filter(organization__slug="demo", name="UK office hours").count() == 1
    assert Event.objects.filter(type__in=["calendar.created", "counterparty.created"], pk__gt=last_event).count() == 0
    # Created through the service the first time: its event.
    assert Event.objects.filter(type="calendar.created", object_id=calendar.pk).count() == 1


@pytest.mark.django_db
def test_what_was_deleted_is_created_again_through_the_services():
    seed()
    other = Organization.objects.get(slug="other")
    party = Counterparty.objects.get(organization=other, source="demo", source_id="CUST-900")
    party.delete()
    seed()
    again = Counterparty.objects.get(organization=other, source="demo", source_id="CUST-900")
    assert again.name == "Other Org Customer"
    assert Event.objects.filter(type="counterparty.created", object_id=again.pk).count() == 1


@pytest.mark.django_db
def test_the_demo_has_a_webhook_delivery_to_see():
    """A newcomer's sweep (twelfth round): the demo showed a breach, a ledger, a statement, visits and
    approvals, but no webhook delivery. Its endpoint holds the demo breach's events, pending; a second
    run adds none."""
    seed()
    seed()
    client = client_for(Membership.objects.get(user__username="demo-admin", organization__slug="demo"))
    [endpoint] = client.get("/api/v1/webhooks").json()
    assert endpoint["url"] == "http://127.0.0.1:9999/sla" and endpoint["event_types"] == ["breach.*"]
    deliveries = client.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries?per_page=100").json()
    assert deliveries and {d["event"]["type"] for d in deliveries} <= {"breach.detected", "breach.finalized"}
    assert {"breach.detected", "breach.finalized"} <= {d["event"]["type"] for d in deliveries}
    assert {d["status"] for d in deliveries} == {"pending"}
