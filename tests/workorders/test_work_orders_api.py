"""`/api/v1/work_orders`: the shared API conventions, then the rules of jobs: sourceID, timestamps,
status changes with holds and stamps, replayed histories, and the clocks a job gets.

The office calendar is Monday to Friday 08:00-17:00 in Europe/Amsterdam; instants are fixed ones
in 2026 (`ams(...)` is Amsterdam wall time).
"""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.utils import timezone
from model_bakery import baker

from breaches.models import Breach
from config.api.serializers import NAIVE_INSTANT
from contracts.models import Asset
from events.models import Event
from tests.api_base import WritableResourceAPITests
from tests.contracts.factories import make_contract
from tests.slas.factories import ams, iso, make_calendar, make_rule
from tests.workorders.factories import change, make_job
from workorders.models import Hold, SlaClock, WorkOrder

URL = "/api/v1/work_orders"
FRIDAY_16 = ams(2026, 1, 9, 16, 0)
MONDAY = ams(2026, 1, 12, 0, 0)
POINT = {"type": "Point", "coordinates": [4.9041, 52.3676]}


def at(day: dt.datetime, hour: int, minute: int = 0) -> dt.datetime:
    return day.replace(hour=hour, minute=minute)


class TestWorkOrdersAPI(WritableResourceAPITests):
    url = URL
    write_role = "operator"
    update_data = {"summary": "Pump replaced", "priority": "critical", "location": POINT, "reference": "WO-9"}
    default_fields = [
        "id", "reference", "summary", "contract", "priority", "status", "reported_at", "resolved_at", "sourceID",
        "sla_clocks", "created_at", "updated_at",
    ]  # fmt: skip
    sort_keys = ["reference", "priority", "status", "reported_at", "resolved_at", "created_at", "updated_at"]
    default_sort = "-reported_at"
    # 1 count, 2 the page's ids (issue 15), 3 the page joined with contract, 4 the clocks of the page's jobs
    # with their rules (as rows). Their holds are not shown by default, and cannot pause a stopped clock.
    list_queries = 4
    filter_cases = [
        ("reference", "WO-A", ["a"]),
        ("status", "open", ["a"]),
        ("status", "in_progress,resolved", ["b", "c"]),
        ("status", "!open", ["b", "c"]),
        ("priority", "critical", ["a"]),
        ("priority", "!critical", ["b", "c"]),
        ("source", "dispatch", ["a", "b"]),
        ("source", "", ["c"]),
        ("sourceID", "D-2", ["b"]),
        ("sourceID", "!", ["a", "b"]),
        ("reported_at", ">=2026-03-01<2026-04-01", ["b"]),
        ("responded_at", "!", ["b"]),
        ("responded_at", "", ["a", "c"]),
        ("on_site_at", ">2026-03-02T10:00:00Z", ["b"]),
        ("resolved_at", "<2026-05-01", ["c"]),
        ("created_at", ">2000-01-01", ["a", "b", "c"]),
        ("updated_at", "<2000-01-01", []),
        ("contract_id", lambda objs: str(objs["a"].contract_id), ["a", "b"]),
        ("contract_id", "", ["c"]),
        # A manual contract implies its counterparty; the asset is a's only.
        ("counterparty_id", lambda objs: str(objs["a"].counterparty_id), ["a", "b"]),
        ("counterparty_id", "", ["c"]),
        ("asset_id", lambda objs: str(objs["a"].asset_id), ["a"]),
        ("asset_id", "!", ["a"]),
        ("visit_plan_id", "", ["a", "b", "c"]),
        ("visit_plan_id", "!", []),
        ("ids", "a,c", ["a", "c"]),
    ]
    malformed_filters = [
        ("status", "flying"),
        ("priority", "urgent"),
        ("reported_at", ">2026-13-01"),
        ("contract_id", "abc"),
        ("resolved_at", "<soon"),
    ]

    @pytest.fixture(autouse=True)
    def _contracts(self, org):
        self.contracts = {}
        self.contract = self.contract_of(org)
        self.create_data = {
            "reference": "WO-1",
            "summary": "Fire pump fails to start",
            "source": "dispatch",
            "sourceID": "J-1",
            "contract_id": self.contract.pk,
            "priority": "high",
            "reported_at": iso(FRIDAY_16),
            "responded_at": iso(at(FRIDAY_16, 16, 30)),
            # resolved, so that every clock has stopped and the POST and the GET show the same figures
            "status": "resolved",
            "status_changed_at": iso(at(FRIDAY_16, 17)),
            "location": POINT,
        }

    def contract_of(self, org):
        """An active contract of `org` with a 120-minute response rule on the office calendar."""
        if org.pk not in self.contracts:
            contract = make_contract(org, status="active")
            make_rule(contract, metric="response", target_minutes=120, calendar=make_calendar(org))
            make_rule(contract, metric="resolution", target_minutes=480)  # 24x7, pauses on hold
            self.contracts[org.pk] = contract
        return self.contracts[org.pk]

    def factory(self, org, **overrides):
        """A job with clocks and a hold (so the list's holds and clocks are really fetched), resolved
        so that its clocks have stopped: two reads of it a minute apart are the same."""
        job = make_job(org, contract=self.contract_of(org), **overrides)
        change(job, status="on_hold", hold_reason="Parts", status_changed_at=at(MONDAY, 10))
        change(job, status="in_progress", status_changed_at=at(MONDAY, 11))
        return change(job, status="resolved", status_changed_at=at(MONDAY, 12))

    def filter_objects(self, org):
        contract = self.contract_of(org)
        utc = dt.UTC
        return {
            "a": make_job(org, contract=contract, reference="WO-A", priority="critical", source="dispatch",
                          source_id="D-1", reported_at=dt.datetime(2026, 2, 2, 9, tzinfo=utc),
                          asset=baker.make(Asset, organization=org, counterparty=contract.counterparty)),
            "b": make_job(org, contract=contract, reference="WO-B", priority="high", source="dispatch",
                          source_id="D-2", reported_at=dt.datetime(2026, 3, 2, 9, tzinfo=utc),
                          status="in_progress", status_changed_at=dt.datetime(2026, 3, 2, 10, tzinfo=utc),
                          on_site_at=dt.datetime(2026, 3, 2, 11, tzinfo=utc)),
            "c": make_job(org, reference="WO-C", priority="low", reported_at=dt.datetime(2026, 4, 1, 9, tzinfo=utc),
                          status="resolved", status_changed_at=dt.datetime(2026, 4, 1, 12, tzinfo=utc)),
        }  # fmt: skip

    def check_created(self, body, data):
        assert body["status"] == "resolved" and body["resolved_at"] == "2026-01-09T16:00:00Z"
        assert body["holds"] == [] and body["location"] == POINT
        assert body["contract"] == {"id": self.contract.pk, "name": self.contract.name}
        assert body["sourceID"] == "J-1" and body["source"] == "dispatch"
        by_metric = {c["metric"]: c for c in body["sla_clocks"]}
        assert set(by_metric) == {"response", "resolution"}
        response = by_metric["response"]
        # Friday 16:00 + 120 business minutes: one hour on Friday, one on Monday.
        assert response["due_at"] == "2026-01-12T08:00:00Z" and response["started_at"] == "2026-01-09T15:00:00Z"
        assert response["state"] == "met" and response["stopped_at"] == "2026-01-09T15:30:00Z"
        assert response["elapsed_minutes"] == 30 and response["remaining_minutes"] == 90
        assert response["target_minutes"] == 120 and response["sla_rule"]["name"]
        resolution = by_metric["resolution"]  # 24x7: 480 minutes from Friday 16:00, resolved after 60
        assert (resolution["due_at"], resolution["state"], resolution["elapsed_minutes"]) == (
            "2026-01-09T23:00:00Z",
            "met",
            60,
        )


def clocks(client, job) -> dict[str, dict]:
    return {c["metric"]: c for c in client.get(f"{URL}/{job.pk}").json()["sla_clocks"]}


@pytest.fixture
def office(org):
    """An active contract with response 120, on-site 240 and resolution 480 minutes on the office
    calendar for critical and high jobs."""
    calendar = make_calendar(org)
    contract = make_contract(org, status="active")
    for metric, minutes in (("response", 120), ("on_site", 240), ("resolution", 480)):
        make_rule(contract, metric=metric, target_minutes=minutes, calendar=calendar)
    return contract


def create(client, **fields):
    body = {"reported_at": iso(FRIDAY_16), **fields}
    return client.post(URL, body, format="json")


@pytest.mark.django_db
class TestInput:
    def test_reported_at_is_required(self, api):
        response = api("operator").post(URL, {"summary": "x"}, format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"reported_at"}

    def test_duplicate_source_id_is_409_giving_the_existing_id(self, api, org, other_org):
        client = api("operator")
        first = create(client, source="dispatch", sourceID="J-7").json()
        response = create(client, source="dispatch", sourceID="J-7")
        assert response.status_code == 409
        body = response.json()
        assert str(first["id"]) in body["message"] and body["errors"] == {
            "sourceID": [f"Already used by id {first['id']}."]
        }
        assert create(client, source="other-dispatch", sourceID="J-7").status_code == 201  # another source
        assert create(api("operator", org=other_org), source="dispatch", sourceID="J-7").status_code == 201
        second = create(client, source="dispatch", sourceID="J-8").json()
        response = client.patch(f"{URL}/{second['id']}", {"sourceID": "J-7"}, format="json")
        assert response.status_code == 409 and str(first["id"]) in response.json()["message"]
        assert WorkOrder.objects.filter(organization=org, source="dispatch", source_id="J-7").count() == 1

    def test_jobs_without_source_id_do_not_clash(self, api):
        client = api("operator")
        assert create(client).status_code == 201 and create(client).status_code == 201

    def test_other_organizations_contract_is_422(self, api, other_org):
        theirs = make_contract(other_org, status="active")
        response = create(api("operator"), contract_id=theirs.pk)
        assert response.status_code == 422
        assert response.json()["errors"] == {"contract_id": [f"Contract {theirs.pk} does not exist."]}

    @pytest.mark.parametrize(
        "location",
        [
            {"type": "Polygon", "coordinates": [[[4, 52], [5, 52], [5, 53], [4, 52]]]},
            {"type": "Point", "coordinates": [200, 52]},
            {"type": "Point", "coordinates": [4.9, 95]},
            {"type": "Point", "coordinates": [4.9]},
            {"type": "Point", "coordinates": ["4.9", "52.3"]},
            {"type": "Point", "coordinates": [True, 52]},
            {"type": "Point"},
            [4.9, 52.3],
            "POINT(4.9 52.3)",
        ],
    )
    def test_location_must_be_a_geojson_point(self, api, location):
        response = create(api("operator"), location=location)
        assert response.status_code == 422 and set(response.json()["errors"]) == {"location"}

    def test_location_is_optional(self, api):
        client = api("operator")
        assert create(client, location=None).json()["location"] is None
        assert create(client).json()["location"] is None
        with_altitude = {"type": "Point", "coordinates": [4.9, 52.3, 2.0]}
        assert create(client, location=with_altitude).json()["location"] == with_altitude

    def test_location_can_be_changed_and_the_event_says_so(self, api):
        client = api("operator")
        job = create(client).json()
        response = client.patch(f"{URL}/{job['id']}", {"location": POINT}, format="json")
        assert response.status_code == 200 and response.json()["location"] == POINT
        assert WorkOrder.objects.get(pk=job["id"]).location == POINT
        event = Event.objects.get(type="work_order.updated", object_id=job["id"])
        assert event.payload["changes"] == {"location": {"before": None, "after": POINT}}

    def test_holds_and_clocks_are_read_only(self, api):
        response = create(api("operator"), holds=[], sla_clocks=[])
        assert response.status_code == 422
        assert set(response.json()["errors"]) == {"holds", "sla_clocks"}

    def test_status_changed_at_and_hold_reason_need_their_status(self, api):
        client = api("operator")
        job = create(client).json()
        response = client.patch(f"{URL}/{job['id']}", {"status_changed_at": iso(MONDAY)}, format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"status_changed_at"}
        response = client.patch(f"{URL}/{job['id']}", {"status": "in_progress", "hold_reason": "Parts"}, format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"hold_reason"}

    def test_the_status_it_has_again_is_a_retry_or_a_422_never_dropped(self, api):
        """An outside sweep found `hold_reason` and `status_changed_at` sent with the status the job
        already had answered 200 and dropped. The retry of the change itself is a no-op; another
        instant or reason is a 422 naming it."""
        client = api("operator")
        job = create(client, reported_at=iso(at(MONDAY, 9))).json()
        url = f"{URL}/{job['id']}"
        hold = {"status": "on_hold", "hold_reason": "Parts", "status_changed_at": iso(at(MONDAY, 10))}
        assert client.patch(url, hold, format="json").status_code == 200
        events = Event.objects.filter(object_id=job["id"]).count()
        for retry in (hold, {"status": "on_hold"}, {"status": "on_hold", "hold_reason": "Parts"}):
            response = client.patch(url, retry, format="json")
            assert response.status_code == 200, (retry, response.content)
        assert Event.objects.filter(object_id=job["id"]).count() == events  # nothing written
        for sent, fields in (
            ({**hold, "status_changed_at": iso(at(MONDAY, 11))}, {"status_changed_at"}),
            ({**hold, "hold_reason": "Waiting for parts"}, {"hold_reason"}),
            ({"status": "on_hold", "hold_reason": "Access", "status_changed_at": iso(at(MONDAY, 11))},
             {"hold_reason", "status_changed_at"}),
        ):  # fmt: skip
            response = client.patch(url, sent, format="json")
            assert response.status_code == 422 and set(response.json()["errors"]) == fields, response.content
            assert response.json()["message"] == "No status change: the job is already on_hold."
        [stored] = Hold.objects.filter(work_order_id=job["id"])
        assert (stored.reason, stored.start, stored.end) == ("Parts", at(MONDAY, 10), None)
        resumed = {"status": "in_progress", "status_changed_at": iso(at(MONDAY, 12))}
        assert client.patch(url, resumed, format="json").status_code == 200
        response = client.patch(url, {"status": "in_progress", "status_changed_at": iso(at(MONDAY, 13))}, format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"status_changed_at"}
        # The change that ended the job, retried, is answered as the first was (it was a 409).
        closed = {"status": "closed", "status_changed_at": iso(at(MONDAY, 14))}
        resolved = {"status": "resolved", "status_changed_at": iso(at(MONDAY, 13, 30))}
        assert client.patch(url, resolved, format="json").status_code == 200
        first = client.patch(url, closed, format="json")
        assert first.status_code == 200, first.content
        events = Event.objects.filter(object_id=job["id"]).count()
        for retry in (closed, {"status": "closed"}):
            again = client.patch(url, retry, format="json")
            assert again.status_code == 200 and again.json() == first.json(), again.content
        assert Event.objects.filter(object_id=job["id"]).count() == events
        for other in ({**closed, "status_changed_at": iso(at(MONDAY, 15))}, {"status": "closed", "summary": "x"}):
            assert client.patch(url, other, format="json").status_code == 409, other

    def test_a_viewer_cannot_write(self, api, org):
        job = make_job(org)
        assert api("viewer").patch(f"{URL}/{job.pk}", {"status": "in_progress"}, format="json").status_code == 403


@pytest.mark.django_db
class TestTimestamps:
    @pytest.mark.parametrize("name", ["responded_at", "on_site_at", "resolved_at"])
    def test_none_before_reported_at(self, api, name):
        response = create(api("operator"), **{name: iso(at(FRIDAY_16, 15, 59))})
        assert response.status_code == 422
        assert response.json()["errors"] == {name: ["Must not be before reported_at."]}

    @pytest.mark.parametrize("name", ["reported_at", "responded_at", "on_site_at", "resolved_at"])
    def test_none_more_than_five_minutes_in_the_future(self, api, name):
        future = iso(timezone.now() + dt.timedelta(minutes=10))
        response = create(api("operator"), **{name: future})
        assert response.status_code == 422
        assert name in response.json()["errors"]
        assert "future" in response.json()["errors"][name][0]

    @pytest.mark.parametrize("value", ["0001-01-01T00:00:00Z", "1999-12-31T23:59:59Z", "0001-01-01T00:00:00+01:00"])
    def test_implausibly_old_instants_are_422(self, api, value):
        response = create(api("operator"), reported_at=value)
        assert response.status_code == 422, response.content
        assert "reported_at" in response.json()["errors"]

    def test_an_instant_without_an_offset_is_422_naming_the_field(self, api):
        response = create(api("operator"), reported_at="2026-03-01T09:00:00")
        assert response.status_code == 422
        assert response.json()["errors"] == {"reported_at": [NAIVE_INSTANT]}

    def test_a_few_minutes_of_clock_skew_are_fine(self, api):
        soon = timezone.now() + dt.timedelta(minutes=2)
        response = create(api("operator"), reported_at=iso(soon - dt.timedelta(hours=1)), on_site_at=iso(soon))
        assert response.status_code == 201, response.content

    def test_resolved_at_not_before_on_site_at(self, api):
        resolved = {"status": "resolved", "status_changed_at": iso(at(MONDAY, 10))}
        response = create(
            api("operator"), on_site_at=iso(at(MONDAY, 10)), resolved_at=iso(at(MONDAY, 9, 59)), **resolved
        )
        assert response.status_code == 422
        assert response.json()["errors"] == {"resolved_at": ["Must not be before on_site_at."]}
        equal = create(api("operator"), on_site_at=iso(at(MONDAY, 10)), resolved_at=iso(at(MONDAY, 10)), **resolved)
        assert equal.status_code == 201, equal.content

    def test_responded_at_not_after_resolved_at(self, api):
        """Found by an outside tester: a response two days after the resolution was a 201, and its
        response clock ran on and was charged as a breach for the time after the job was done."""
        client = api("operator")
        late = {"priority": "high", "reported_at": iso(at(MONDAY, 9)), "resolved_at": iso(at(MONDAY, 9, 30))}
        response = create(client, **late, responded_at=iso(at(MONDAY + dt.timedelta(days=2), 9)), status="resolved")
        assert response.status_code == 422, response.content
        assert response.json()["errors"] == {"responded_at": ["Must not be after resolved_at."]}
        # A resolved_at the status change stamps counts too.
        stamped = {"status": "resolved", "status_changed_at": iso(at(MONDAY, 10))}
        response = create(client, reported_at=iso(at(MONDAY, 9)), responded_at=iso(at(MONDAY, 10, 1)), **stamped)
        assert response.status_code == 422 and set(response.json()["errors"]) == {"responded_at"}
        equal = create(client, **late, responded_at=iso(at(MONDAY, 9, 30)), status="resolved")
        assert equal.status_code == 201, equal.content

    def test_a_patch_is_checked_against_the_stored_times(self, api):
        client = api("operator")
        job = create(client, reported_at=iso(at(MONDAY, 9)), responded_at=iso(at(MONDAY, 9, 20))).json()
        url = f"{URL}/{job['id']}"
        done = {"status": "resolved", "status_changed_at": iso(at(MONDAY, 10))}
        assert client.patch(url, done, format="json").status_code == 200
        for body, field in [
            ({"responded_at": iso(at(MONDAY, 10, 5))}, "responded_at"),
            ({"resolved_at": iso(at(MONDAY, 9, 10))}, "responded_at"),
            ({"on_site_at": iso(at(MONDAY, 10, 5))}, "resolved_at"),
        ]:
            response = client.patch(url, body, format="json")
            assert response.status_code == 422 and set(response.json()["errors"]) == {field}, (body, response.content)
        stored = WorkOrder.objects.get(pk=job["id"])
        assert (stored.responded_at, stored.resolved_at) == (at(MONDAY, 9, 20), at(MONDAY, 10))

    def test_a_reopened_job_is_answered_after_its_first_resolution(self, api):
        """A reopen clears resolved_at: the response it then gets is checked against the next one."""
        client = api("operator")
        job = create(client, reported_at=iso(at(MONDAY, 9)), status="resolved", resolved_at=iso(at(MONDAY, 10))).json()
        url = f"{URL}/{job['id']}"
        reopened = client.patch(url, {"status": "in_progress", "status_changed_at": iso(at(MONDAY, 11))}, format="json")
        assert reopened.status_code == 200, reopened.content
        assert (reopened.json()["responded_at"], reopened.json()["resolved_at"]) == (iso(at(MONDAY, 11)), None)
        done = client.patch(url, {"status": "resolved", "status_changed_at": iso(at(MONDAY, 12))}, format="json")
        assert done.status_code == 200 and done.json()["resolved_at"] == iso(at(MONDAY, 12))

    def test_resolved_at_only_on_a_resolved_job(self, api):
        """Found by an outside sweep: a resolved_at on an open job stopped its resolution clock
        (met) while the job stayed open."""
        client = api("operator")
        response = create(client, resolved_at=iso(at(MONDAY, 10)))
        assert response.status_code == 422 and set(response.json()["errors"]) == {"resolved_at"}
        job = create(client).json()
        response = client.patch(f"{URL}/{job['id']}", {"resolved_at": iso(at(MONDAY, 10))}, format="json")
        assert response.status_code == 422 and "send status resolved" in response.json()["errors"]["resolved_at"][0]
        done = {"status": "resolved", "status_changed_at": iso(at(MONDAY, 10))}
        assert client.patch(f"{URL}/{job['id']}", done, format="json").status_code == 200
        corrected = client.patch(f"{URL}/{job['id']}", {"resolved_at": iso(at(MONDAY, 9, 30))}, format="json")
        assert corrected.status_code == 200 and corrected.json()["resolved_at"] == iso(at(MONDAY, 9, 30))

    def test_a_resolved_job_keeps_its_resolved_at(self, api):
        """Found by a second outside sweep: clearing it ran the resolution clock again, into a
        breach no scan could finalise."""
        client = api("operator")
        resolved = {"status": "resolved", "status_changed_at": iso(at(MONDAY, 10))}
        job = create(client, **resolved).json()
        response = client.patch(f"{URL}/{job['id']}", {"resolved_at": None}, format="json")
        assert response.status_code == 422 and "reopen it" in response.json()["errors"]["resolved_at"][0]

    def test_a_reopen_is_not_before_the_resolution(self, api):
        """Found by a second outside sweep: a reopen before resolved_at was a 500 (a hold ending
        before it starts)."""
        client = api("operator")
        job = create(client, status="resolved", status_changed_at=iso(at(MONDAY, 10))).json()
        url = f"{URL}/{job['id']}"
        assert client.patch(url, {"resolved_at": iso(at(MONDAY, 12))}, format="json").status_code == 200
        early = {"status": "open", "status_changed_at": iso(at(MONDAY, 11))}
        response = client.patch(url, early, format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"status_changed_at"}
        response = client.patch(url, {**early, "resolved_at": iso(at(MONDAY, 13))}, format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"status_changed_at"}

    def test_a_reopen_sent_with_the_whole_state_clears_resolved_at(self, api):
        """A dispatch system sends the whole state: status open and resolved_at null together.
        The hold starts at the stored resolution (it was a misleading 409 before)."""
        client = api("operator")
        job = create(client, status="resolved", status_changed_at=iso(at(MONDAY, 10))).json()
        body = {"status": "open", "status_changed_at": iso(at(MONDAY, 11)), "resolved_at": None}
        response = client.patch(f"{URL}/{job['id']}", body, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["resolved_at"] is None
        assert [(h["kind"], h["start"], h["end"]) for h in response.json()["holds"]] == [
            ("reopened", iso(at(MONDAY, 10)), iso(at(MONDAY, 11)))
        ]

    def test_reported_at_not_after_a_hold_began(self, api):
        """Found by an outside sweep: a job could be reported after its own hold began."""
        client = api("operator")
        job = create(client).json()
        held = {"status": "on_hold", "status_changed_at": iso(at(FRIDAY_16, 16, 10))}
        assert client.patch(f"{URL}/{job['id']}", held, format="json").status_code == 200
        response = client.patch(f"{URL}/{job['id']}", {"reported_at": iso(at(FRIDAY_16, 16, 20))}, format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"reported_at"}
        assert WorkOrder.objects.get(pk=job["id"]).reported_at == FRIDAY_16
        earlier = client.patch(f"{URL}/{job['id']}", {"reported_at": iso(at(FRIDAY_16, 16, 5))}, format="json")
        assert earlier.status_code == 200

    def test_every_problem_names_its_field(self, api):
        response = create(
            api("operator"),
            responded_at=iso(at(FRIDAY_16, 12)),
            on_site_at=iso(timezone.now() + dt.timedelta(hours=1)),
        )
        assert response.status_code == 422
        assert set(response.json()["errors"]) == {"responded_at", "on_site_at"}

    def test_moving_reported_at_after_a_stamp_is_422_naming_the_stamp(self, api):
        client = api("operator")
        job = create(client, responded_at=iso(at(FRIDAY_16, 16, 30))).json()
        response = client.patch(f"{URL}/{job['id']}", {"reported_at": iso(at(FRIDAY_16, 17))}, format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"responded_at"}
        assert WorkOrder.objects.get(pk=job["id"]).reported_at == FRIDAY_16

    def test_status_changed_at_is_not_before_the_previous_change_nor_in_the_future(self, api):
        client = api("operator")
        job = create(client).json()
        url = f"{URL}/{job['id']}"
        before_report = client.patch(
            url, {"status": "in_progress", "status_changed_at": iso(at(FRIDAY_16, 15))}, format="json"
        )
        assert before_report.status_code == 422 and set(before_report.json()["errors"]) == {"status_changed_at"}
        ok = client.patch(url, {"status": "on_hold", "status_changed_at": iso(at(MONDAY, 10))}, format="json")
        assert ok.status_code == 200
        earlier = client.patch(url, {"status": "in_progress", "status_changed_at": iso(at(MONDAY, 9))}, format="json")
        assert earlier.status_code == 422 and set(earlier.json()["errors"]) == {"status_changed_at"}
        future = iso(timezone.now() + dt.timedelta(hours=1))
        response = client.patch(url, {"status": "in_progress", "status_changed_at": future}, format="json")
        assert response.status_code == 422 and set(response.json()["errors"]) == {"status_changed_at"}
        same_instant = client.patch(
            url, {"status": "in_progress", "status_changed_at": iso(at(MONDAY, 10))}, format="json"
        )
        assert same_instant.status_code == 200


@pytest.mark.django_db
class TestStatusChanges:
    def patch(self, client, job_id, **data):
        return client.patch(f"{URL}/{job_id}", data, format="json")

    def test_in_progress_stamps_responded_at_and_resolved_stamps_resolved_at(self, api):
        client = api("operator")
        job = create(client).json()
        body = self.patch(client, job["id"], status="in_progress", status_changed_at=iso(at(MONDAY, 8, 30))).json()
        assert body["responded_at"] == iso(at(MONDAY, 8, 30)) and body["status_changed_at"] == iso(at(MONDAY, 8, 30))
        body = self.patch(client, job["id"], status="resolved", status_changed_at=iso(at(MONDAY, 11))).json()
        assert body["resolved_at"] == iso(at(MONDAY, 11)) and body["responded_at"] == iso(at(MONDAY, 8, 30))

    def test_stamps_do_not_overwrite_given_times(self, api):
        client = api("operator")
        job = create(client, responded_at=iso(at(FRIDAY_16, 16, 10))).json()
        body = self.patch(client, job["id"], status="in_progress", status_changed_at=iso(at(MONDAY, 8, 30))).json()
        assert body["responded_at"] == iso(at(FRIDAY_16, 16, 10))
        body = self.patch(
            client, job["id"], status="resolved", resolved_at=iso(at(MONDAY, 9)), status_changed_at=iso(at(MONDAY, 11))
        ).json()
        assert body["resolved_at"] == iso(at(MONDAY, 9))

    def test_status_changed_at_defaults_to_now(self, api):
        client = api("operator")
        job = create(client).json()
        before = timezone.now()
        body = self.patch(client, job["id"], status="in_progress").json()
        assert before <= dt.datetime.fromisoformat(body["responded_at"]) <= timezone.now()

    def test_on_hold_opens_a_hold_and_leaving_it_closes_it(self, api):
        client = api("operator")
        job = create(client).json()
        body = self.patch(
            client, job["id"], status="on_hold", hold_reason="Waiting for parts", status_changed_at=iso(at(MONDAY, 10))
        ).json()
        assert body["holds"] == [
            {"start": iso(at(MONDAY, 10)), "end": None, "reason": "Waiting for parts", "kind": "on_hold"}
        ]
        body = self.patch(client, job["id"], status="open", status_changed_at=iso(at(MONDAY, 12))).json()
        assert body["holds"][0]["end"] == iso(at(MONDAY, 12))
        body = self.patch(client, job["id"], status="on_hold", status_changed_at=iso(at(MONDAY, 13))).json()
        body = self.patch(client, job["id"], status="resolved", status_changed_at=iso(at(MONDAY, 14))).json()
        assert [(h["start"], h["end"], h["reason"]) for h in body["holds"]] == [
            (iso(at(MONDAY, 10)), iso(at(MONDAY, 12)), "Waiting for parts"),
            (iso(at(MONDAY, 13)), iso(at(MONDAY, 14)), ""),
        ]
        assert body["responded_at"] is None  # on hold is not a response

    def test_a_job_can_be_created_on_hold(self, api):
        response = create(
            api("operator"), status="on_hold", hold_reason="Customer away", status_changed_at=iso(at(FRIDAY_16, 16, 5))
        )
        assert response.status_code == 201
        assert response.json()["holds"][0]["start"] == iso(at(FRIDAY_16, 16, 5))

    @pytest.mark.parametrize(
        ("path", "target"),
        [
            ([], "closed"),
            (["in_progress"], "closed"),
            (["resolved"], "cancelled"),
            (["resolved", "closed"], "open"),
            (["cancelled"], "open"),
        ],
    )
    def test_illegal_transitions_are_409(self, api, path, target):
        client = api("operator")
        job = create(client).json()
        for status in path:
            assert self.patch(client, job["id"], status=status).status_code == 200
        response = self.patch(client, job["id"], status=target)
        assert response.status_code == 409
        assert WorkOrder.objects.get(pk=job["id"]).status == (path[-1] if path else "open")

    @pytest.mark.parametrize("final", ["closed", "cancelled"])
    def test_closed_and_cancelled_jobs_no_longer_change(self, api, final):
        client = api("operator")
        job = create(client).json()
        if final == "closed":
            self.patch(client, job["id"], status="resolved")
        assert self.patch(client, job["id"], status=final).status_code == 200
        response = self.patch(client, job["id"], summary="Too late")
        assert response.status_code == 409 and final in response.json()["message"]

    def test_cancelling_cancels_the_running_clocks(self, api, office):
        client = api("operator")
        job = create(client, contract_id=office.pk, priority="high", reported_at=iso(at(MONDAY, 9)),
                      responded_at=iso(at(MONDAY, 9, 20))).json()  # fmt: skip
        self.patch(client, job["id"], status="cancelled", status_changed_at=iso(at(MONDAY, 9, 30)))
        by_metric = clocks(client, WorkOrder(pk=job["id"]))
        assert by_metric["response"]["state"] == "met"  # stopped before the cancellation
        for metric in ("on_site", "resolution"):
            assert by_metric[metric]["state"] == "cancelled"
            assert by_metric[metric]["elapsed_minutes"] == 30  # up to the cancellation, not to now
        assert not Breach.objects.exists()

    def test_a_clock_past_due_when_the_job_is_cancelled_stays_breached(self, api, office):
        client = api("operator")
        job = create(client, contract_id=office.pk, priority="high", reported_at=iso(at(MONDAY, 9))).json()
        # Cancelled at 12:00: the response was due at 11:00 (breached), on-site due 13:00 (not yet).
        self.patch(client, job["id"], status="cancelled", status_changed_at=iso(at(MONDAY, 12)))
        by_metric = clocks(client, WorkOrder(pk=job["id"]))
        assert by_metric["response"]["state"] == "breached"
        assert by_metric["response"]["stopped_at"] == iso(at(MONDAY, 12))
        assert by_metric["response"]["elapsed_minutes"] == 180
        assert by_metric["on_site"]["state"] == "cancelled"
        breach = Breach.objects.get()
        assert breach.clock.metric == "response" and breach.final


@pytest.mark.django_db
class TestClocksOfAJob:
    def test_the_rules_in_force_at_reported_at_on_an_active_contract_for_the_jobs_band(self, api, org):
        contract = make_contract(org, status="active")
        make_rule(contract, metric="response", priorities=["high"], name="in force")
        make_rule(contract, metric="on_site", priorities=["low"], name="other band")
        make_rule(contract, metric="resolution", priorities=["high"], active=False, name="inactive")
        make_rule(contract, metric="on_site", priorities=["high"], effective_from=at(MONDAY, 9), name="later")
        make_rule(contract, metric="resolution", priorities=["high"], effective_from=ams(2025, 1, 1),
                  effective_to=ams(2026, 1, 1), name="ended")  # fmt: skip
        job = create(api("operator"), contract_id=contract.pk, priority="high").json()
        assert [c["sla_rule"]["name"] for c in job["sla_clocks"]] == ["in force"]

    @pytest.mark.parametrize("status", ["draft", "pending_approval", "scheduled", "suspended", "expired"])
    def test_no_clocks_unless_the_contract_is_active(self, api, org, status):
        contract = make_contract(org, status=status)
        make_rule(contract)
        job = create(api("operator"), contract_id=contract.pk, priority="high").json()
        assert job["sla_clocks"] == []

    def test_no_contract_no_clocks(self, api):
        assert create(api("operator"), priority="critical").json()["sla_clocks"] == []

    def test_a_priority_change_recomputes_against_the_new_band(self, api, org):
        calendar = make_calendar(org)
        contract = make_contract(org, status="active")
        critical = make_rule(contract, priorities=["critical"], target_minutes=60, calendar=calendar)
        high = make_rule(contract, priorities=["high"], target_minutes=120, calendar=calendar)
        client = api("operator")
        job = create(client, contract_id=contract.pk, priority="high", reported_at=iso(at(MONDAY, 9))).json()

        def by_rule():
            body = client.get(f"{URL}/{job['id']}").json()
            return {c["sla_rule"]["id"]: (c["state"], c["due_at"]) for c in body["sla_clocks"]}

        assert by_rule() == {high.pk: ("breached", iso(at(MONDAY, 11)))}  # running, and long past due
        client.patch(f"{URL}/{job['id']}", {"priority": "critical"}, format="json")
        assert by_rule() == {
            high.pk: ("cancelled", iso(at(MONDAY, 11))),
            critical.pk: ("breached", iso(at(MONDAY, 10))),
        }
        client.patch(f"{URL}/{job['id']}", {"priority": "high"}, format="json")
        assert by_rule() == {
            high.pk: ("breached", iso(at(MONDAY, 11))),
            critical.pk: ("cancelled", iso(at(MONDAY, 10))),
        }
        client.patch(f"{URL}/{job['id']}", {"priority": "low"}, format="json")
        assert {state for state, _ in by_rule().values()} == {"cancelled"}

    def test_a_new_contract_replaces_the_clocks(self, api, org):
        first, second = make_contract(org, status="active"), make_contract(org, status="active")
        old = make_rule(first, target_minutes=60)
        new = make_rule(second, target_minutes=30)
        client = api("operator")
        job = create(client, contract_id=first.pk, priority="high").json()
        body = client.patch(f"{URL}/{job['id']}", {"contract_id": second.pk}, format="json").json()
        assert {c["sla_rule"]["id"]: c["state"] for c in body["sla_clocks"]} == {
            old.pk: "cancelled",
            new.pk: "breached",
        }

    def test_moving_reported_at_moves_the_clocks(self, api, office):
        client = api("operator")
        job = create(client, contract_id=office.pk, priority="high").json()
        body = client.patch(f"{URL}/{job['id']}", {"reported_at": iso(at(MONDAY, 9))}, format="json").json()
        assert {c["metric"]: c["due_at"] for c in body["sla_clocks"]} == {
            "response": iso(at(MONDAY, 11)),
            "on_site": iso(at(MONDAY, 13)),
            "resolution": iso(at(MONDAY, 17)),  # eight hours: due at the closing instant
        }

    def test_a_job_stopped_after_its_due_time_gets_its_breach_at_once(self, api, office):
        client = api("operator")
        job = create(client, contract_id=office.pk, priority="high").json()
        response_clock = SlaClock.objects.get(work_order_id=job["id"], metric="response")
        # Running past due (Monday 09:00): shown breached, recorded by the next scan, which finds
        # it as a running clock past due.
        assert clocks(client, WorkOrder(pk=job["id"]))["response"]["state"] == "breached"
        assert response_clock.state == "running" and not Breach.objects.exists()
        assert SlaClock.objects.filter(state="running", due_at__lt=timezone.now(), pk=response_clock.pk).exists()
        client.patch(
            f"{URL}/{job['id']}", {"status": "in_progress", "status_changed_at": iso(at(MONDAY, 10))}, format="json"
        )
        response_clock.refresh_from_db()
        assert response_clock.state == "breached" and response_clock.stopped_at == at(MONDAY, 10)
        breach = Breach.objects.get(clock=response_clock)
        assert breach.final and breach.overage_minutes == 60
        assert Event.objects.filter(type="sla_clock.breached", object_id=response_clock.pk).count() == 1

    def test_a_job_stopped_in_time_is_met_and_has_no_breach(self, api, office):
        client = api("operator")
        job = create(client, contract_id=office.pk, priority="high").json()
        client.patch(
            f"{URL}/{job['id']}", {"status": "in_progress", "status_changed_at": iso(at(MONDAY, 9))}, format="json"
        )
        response_clock = clocks(client, WorkOrder(pk=job["id"]))["response"]
        assert response_clock["state"] == "met" and response_clock["stopped_at"] == iso(at(MONDAY, 9))
        assert response_clock["elapsed_minutes"] == 120 and response_clock["remaining_minutes"] == 0
        assert not Breach.objects.exists()

    def test_reopening_a_resolved_job_resumes_its_resolution_clock(self, api, office):
        client = api("operator")
        url = f"{URL}/{create(client, contract_id=office.pk, priority='high').json()['id']}"
        client.patch(url, {"status": "in_progress", "status_changed_at": iso(at(MONDAY, 8, 30))}, format="json")
        client.patch(url, {"on_site_at": iso(at(MONDAY, 9))}, format="json")
        body = client.patch(url, {"status": "resolved", "status_changed_at": iso(at(MONDAY, 10))}, format="json").json()
        resolution = {c["metric"]: c for c in body["sla_clocks"]}["resolution"]
        assert resolution["state"] == "met" and resolution["elapsed_minutes"] == 180  # 1 h Friday, 2 h Monday
        # Reopened on Tuesday 09:00: the time spent resolved does not count; five hours are left.
        tuesday = ams(2026, 1, 13)
        body = client.patch(url, {"status": "in_progress", "status_changed_at": iso(at(tuesday, 9))}, format="json")
        body = body.json()
        assert body["resolved_at"] is None
        assert body["holds"] == [
            {"start": iso(at(MONDAY, 10)), "end": iso(at(tuesday, 9)), "reason": "resolved, then reopened",
             "kind": "reopened"}
        ]  # fmt: skip
        by_metric = {c["metric"]: c for c in body["sla_clocks"]}
        assert by_metric["resolution"]["stopped_at"] is None and by_metric["resolution"]["due_at"] == iso(
            at(tuesday, 14)
        )
        assert by_metric["response"]["state"] == "met" and by_metric["on_site"]["state"] == "met"  # unaffected
        body = client.patch(url, {"status": "resolved", "status_changed_at": iso(at(tuesday, 13))}, format="json")
        resolution = {c["metric"]: c for c in body.json()["sla_clocks"]}["resolution"]
        assert resolution["state"] == "met" and resolution["elapsed_minutes"] == 420
        assert resolution["stopped_at"] == iso(at(tuesday, 13))
        assert not Breach.objects.exists()

    @pytest.mark.parametrize("reopened_as", ["open", "in_progress"])
    def test_reopening_a_job_resolved_unanswered_resumes_its_response_clock(self, api, office, reopened_as):
        """Resolved at 16:30 without a response, the response and on-site clocks end there
        (cancelled, 30 minutes used). Reopened on Tuesday, they resume where they stood: the
        weekend and Monday the job sat resolved do not count, so no breach and no penalty."""
        client = api("operator")
        url = f"{URL}/{create(client, contract_id=office.pk, priority='high').json()['id']}"
        body = client.patch(url, {"status": "resolved", "status_changed_at": iso(at(FRIDAY_16, 16, 30))}, format="json")
        by_metric = {c["metric"]: c for c in body.json()["sla_clocks"]}
        assert [by_metric[m]["state"] for m in ("response", "on_site")] == ["cancelled", "cancelled"]
        tuesday = ams(2026, 1, 13)
        body = client.patch(url, {"status": reopened_as, "status_changed_at": iso(at(tuesday, 9))}, format="json")
        response = {c["metric"]: c for c in body.json()["sla_clocks"]}["response"]
        if reopened_as == "open":  # running again: 90 of its 120 minutes left, due at 10:30
            assert response["due_at"] == iso(at(tuesday, 10, 30)) and response["stopped_at"] is None
            answered = {"status": "in_progress", "status_changed_at": iso(at(tuesday, 10))}
            response = {c["metric"]: c for c in client.patch(url, answered, format="json").json()["sla_clocks"]}
            response = response["response"]
            assert (response["state"], response["elapsed_minutes"]) == ("met", 90)
        else:  # answered at the reopening itself: the 30 minutes before the resolution
            assert (response["state"], response["elapsed_minutes"]) == ("met", 30)
        body = client.patch(url, {"status": "resolved", "status_changed_at": iso(at(tuesday, 11))}, format="json")
        by_metric = {c["metric"]: c for c in body.json()["sla_clocks"]}
        assert (by_metric["on_site"]["state"], by_metric["on_site"]["elapsed_minutes"]) == ("cancelled", 150)
        assert (by_metric["resolution"]["state"], by_metric["resolution"]["elapsed_minutes"]) == ("met", 150)
        call_command("scan_breaches", stdout=io.StringIO())
        assert not Breach.objects.exists()

    def test_a_change_and_its_recomputation_are_one_transaction(self, api, office, monkeypatch):
        client = api("operator")
        job = create(client, contract_id=office.pk, priority="high").json()

        def fail(*args, **kwargs):
            raise RuntimeError("recomputation failed")

        monkeypatch.setattr("workorders.services.recompute_clocks", fail)
        client.raise_request_exception = False
        response = client.patch(
            f"{URL}/{job['id']}", {"status": "on_hold", "status_changed_at": iso(at(MONDAY, 9))}, format="json"
        )
        assert response.status_code == 500
        assert WorkOrder.objects.get(pk=job["id"]).status == "open"
        assert not Hold.objects.exists() and not Event.objects.filter(type="work_order.updated").exists()


@pytest.mark.django_db
class TestReplayedHistory:
    """A dispatch system replays a job's history after the fact, one change at a time, with
    explicit status_changed_at values; the clocks come out as they would have live.

    Office hours Mon-Fri 08:00-17:00 Amsterdam; response 120, on-site 240, resolution 480 minutes
    (the resolution pauses on hold). Reported Friday 16:00:
    - response due Monday 09:00 (1 h Friday + 1 h Monday); responded Monday 08:30: met, 90 min;
    - on-site due Monday 11:00 (1 h + 3 h); on site Monday 10:00: met, 180 min;
    - resolution: 5 h used by the hold at Monday 12:00 (1 h Friday + 4 h Monday); on hold until
      Tuesday 10:00, so the 3 h left run to Tuesday 13:00; resolved Tuesday 12:30: met, 450 min.
    """

    def test_step_by_step_replay_gives_the_live_clocks(self, api, office):
        client = api("operator")
        tuesday = ams(2026, 1, 13)
        job = create(client, contract_id=office.pk, priority="high", source="dispatch", sourceID="R-1").json()
        url = f"{URL}/{job['id']}"
        steps = [
            {"status": "in_progress", "status_changed_at": iso(at(MONDAY, 8, 30))},
            {"on_site_at": iso(at(MONDAY, 10))},
            {"status": "on_hold", "hold_reason": "Waiting for parts", "status_changed_at": iso(at(MONDAY, 12))},
            {"status": "in_progress", "status_changed_at": iso(at(tuesday, 10))},
            {"status": "resolved", "status_changed_at": iso(at(tuesday, 12, 30))},
        ]
        for step in steps:
            response = client.patch(url, step, format="json")
            assert response.status_code == 200, (step, response.content)
        body = client.get(url).json()
        assert body["responded_at"] == iso(at(MONDAY, 8, 30)) and body["resolved_at"] == iso(at(tuesday, 12, 30))
        assert body["holds"] == [
            {"start": iso(at(MONDAY, 12)), "end": iso(at(tuesday, 10)), "reason": "Waiting for parts",
             "kind": "on_hold"}
        ]  # fmt: skip
        got = {
            c["metric"]: (c["due_at"], c["stopped_at"], c["state"], c["elapsed_minutes"], c["remaining_minutes"])
            for c in body["sla_clocks"]
        }
        assert got == {
            "response": ("2026-01-12T08:00:00Z", "2026-01-12T07:30:00Z", "met", 90, 30),
            "on_site": ("2026-01-12T10:00:00Z", "2026-01-12T09:00:00Z", "met", 180, 60),
            "resolution": ("2026-01-13T12:00:00Z", "2026-01-13T11:30:00Z", "met", 450, 30),
        }
        # Between the steps every due time had long passed in real time, yet nothing was late:
        # no breach was recorded (a penalty for a met target would be posted in the ledger).
        assert not Breach.objects.exists()

    def test_the_response_example_of_the_issue(self, api, office):
        """Reported Friday 16:00, 120 minutes: due Monday 09:00 local."""
        job = create(api("operator"), contract_id=office.pk, priority="high").json()
        due = {c["metric"]: c["due_at"] for c in job["sla_clocks"]}["response"]
        assert dt.datetime.fromisoformat(due).astimezone(ams(2026, 1, 1).tzinfo) == at(MONDAY, 9)


@pytest.mark.django_db
def test_a_job_created_resolved_changed_status_at_its_resolution(api):
    """Found by an outside sweep: created as resolved with a resolved_at and no
    status_changed_at, its status changed 'now', and the replayed close at its real time was a 422."""
    client = api("operator")
    job = create(client, status="resolved", resolved_at=iso(at(MONDAY, 12))).json()
    assert job["status_changed_at"] == iso(at(MONDAY, 12))
    close = {"status": "closed", "status_changed_at": iso(at(MONDAY, 13))}
    assert client.patch(f"{URL}/{job['id']}", close, format="json").status_code == 200
    started = create(client, status="in_progress", responded_at=iso(at(MONDAY, 9))).json()
    assert started["status_changed_at"] == iso(at(MONDAY, 9))


@pytest.mark.django_db
def test_a_status_change_that_sets_its_stamp_happened_then(api):
    """Found by an outside sweep: `PATCH {"status": "resolved", "resolved_at": ...}` without
    status_changed_at changed the status 'now' (a create with the same body, at resolved_at), so a
    replayed reopen between the resolution and now was a 422. The stamp a change sets is its
    instant; a stamp already set (a reopened job's response) is not, and errors name the stamp."""
    client = api("operator")
    job = create(client, reported_at=iso(at(MONDAY, 9))).json()
    url = f"{URL}/{job['id']}"
    response = client.patch(url, {"status": "in_progress", "responded_at": iso(at(MONDAY, 10))}, format="json")
    assert response.json()["status_changed_at"] == iso(at(MONDAY, 10))
    response = client.patch(url, {"status": "resolved", "resolved_at": iso(at(MONDAY, 12))}, format="json")
    assert (response.json()["status"], response.json()["status_changed_at"]) == ("resolved", iso(at(MONDAY, 12)))
    reopen = {"status": "in_progress", "status_changed_at": iso(at(MONDAY, 13))}
    assert client.patch(url, reopen, format="json").status_code == 200  # a replayed reopen at its real time
    assert WorkOrder.objects.get(pk=job["id"]).status_changed_at == at(MONDAY, 13)
    # A stamp before the job's last status change is a time recorded late: the change happens now
    # (as before stamps dated changes; a regression sweep found it refused).
    late = client.patch(url, {"status": "resolved", "resolved_at": iso(at(MONDAY, 12, 30))}, format="json")
    assert late.status_code == 200, late.content
    assert late.json()["resolved_at"] == iso(at(MONDAY, 12, 30)) and late.json()["status_changed_at"] > iso(
        at(MONDAY, 13)
    )
    held = create(client, reported_at=iso(at(MONDAY, 6))).json()
    hold = {"status": "on_hold", "hold_reason": "Customer access", "status_changed_at": iso(at(MONDAY, 6, 30))}
    assert client.patch(f"{URL}/{held['id']}", hold, format="json").status_code == 200
    answered = client.patch(f"{URL}/{held['id']}", {"status": "in_progress", "responded_at": iso(at(MONDAY, 6, 10))},
                            format="json")  # fmt: skip
    assert answered.status_code == 200, answered.content  # a response from before the hold, recorded late
    assert answered.json()["responded_at"] == iso(at(MONDAY, 6, 10))
    other = create(client, status="in_progress", responded_at=iso(at(MONDAY, 9))).json()
    resolved = client.patch(f"{URL}/{other['id']}", {"status": "resolved"}, format="json").json()
    reopened = client.patch(f"{URL}/{other['id']}", {"status": "in_progress", "responded_at": iso(at(MONDAY, 9))},
                            format="json")  # fmt: skip
    assert reopened.status_code == 200, reopened.content  # its response was set: the reopen happens now
    assert reopened.json()["status_changed_at"] > resolved["status_changed_at"]


@pytest.mark.django_db
def test_one_reading_of_a_clock_adds_up_to_its_target(api, office):
    """Found by an outside test: elapsed was floored and remaining taken from the ceiling, so a
    clock not on a whole minute showed elapsed + remaining = target - 1 (REST and GraphQL). A
    started minute counts as a minute, as in a breach's `actual_minutes`, for both figures."""
    client = api("operator")
    # Due Monday 08:00Z (one business hour Friday, one Monday); answered an hour and 30 s later.
    job = create(client, contract_id=office.pk, priority="critical",
                 responded_at="2026-01-12T09:00:30Z").json()  # fmt: skip
    response = clocks(client, WorkOrder.objects.get(pk=job["id"]))["response"]
    assert (response["state"], response["elapsed_minutes"], response["remaining_minutes"]) == ("breached", 181, -61)
    listed = client.get(URL, {"fields": "id,sla_clocks"}).json()[0]["sla_clocks"]
    assert {c["metric"]: c for c in listed}["response"] == response
    query = f"{{ workOrder(id: {job['id']}) {{ slaClocks {{ metric elapsedMinutes remainingMinutes }} }} }}"
    data = client.post("/api/graphql", {"query": query}, format="json").json()["data"]
    by_metric = {c["metric"]: c for c in data["workOrder"]["slaClocks"]}
    assert (by_metric["response"]["elapsedMinutes"], by_metric["response"]["remainingMinutes"]) == (181, -61)
    for clock in listed:
        assert clock["elapsed_minutes"] + clock["remaining_minutes"] == clock["target_minutes"]


@pytest.mark.django_db
def test_a_clock_a_resolution_cancels_says_so_in_the_event_log(api, office):
    """Found by an outside test: resolving a job never visited took its on-site clock from running
    to cancelled with no event, so a consumer mirroring `sla_clock.*` kept it running."""
    client = api("operator")
    job = create(client, contract_id=office.pk, priority="high").json()
    responded = {"status": "in_progress", "responded_at": iso(at(MONDAY, 9))}
    assert client.patch(f"{URL}/{job['id']}", responded, format="json").status_code == 200
    resolved = {"status": "resolved", "resolved_at": iso(at(MONDAY, 10))}
    assert client.patch(f"{URL}/{job['id']}", resolved, format="json").status_code == 200
    clocks = {c["metric"]: c for c in client.get(f"{URL}/{job['id']}?fields=sla_clocks").json()["sla_clocks"]}
    assert clocks["on_site"]["state"] == "cancelled"
    log = api("viewer").get(f"/api/v1/events?object_type=slaclock&object_id={clocks['on_site']['id']}").json()
    assert [(e["type"], e["payload"]) for e in log] == [
        (
            "sla_clock.stopped",
            {"work_order": job["id"], "state": "cancelled", "stopped_at": None, "reason": "job_ended"},
        )
    ]
