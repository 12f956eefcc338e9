"""`/api/v1/calendars`: the shared API conventions, validation of hours and holidays, and the
recomputation of the running clocks that use a calendar when it is edited."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.models import Event
from slas.models import Calendar
from tests.api_base import WritableResourceAPITests
from tests.contracts.factories import make_contract
from tests.slas.factories import OFFICE_HOURS, ams, iso, make_calendar, make_rule
from tests.workorders.factories import change, make_job
from workorders.models import SlaClock

URL = "/api/v1/calendars"
FRIDAY_16 = ams(2026, 1, 9, 16, 0)  # a job reported an hour before closing on a Friday


class TestCalendarsAPI(WritableResourceAPITests):
    url = URL
    create_data = {
        "name": "Office hours",
        "time_zone": "Europe/Amsterdam",
        # Unsorted on purpose, with a split day and a 24:00 end: stored sorted.
        "hours": [
            {"weekday": 2, "start": "08:00", "end": "17:00"},
            {"weekday": 1, "start": "13:00", "end": "17:00"},
            {"weekday": 1, "start": "08:00", "end": "12:00"},
            {"weekday": 6, "start": "20:00", "end": "24:00"},
        ],
        "holidays": [{"date": "2026-12-26", "name": "Boxing Day"}, {"date": "2026-12-25", "name": "Christmas Day"}],
    }
    update_data = {
        "name": "Office hours (NL)",
        "holidays": [{"date": "2026-04-27", "name": "King's Day"}],
        "hours": [{"weekday": 1, "start": "07:30", "end": "16:30"}],
    }
    default_fields = ["id", "name", "time_zone", "holiday_country", "created_at", "updated_at"]
    sort_keys = ["name", "time_zone", "created_at", "updated_at"]
    deletable = True
    # 1 count, 2 the page's ids (issue 15), 3 the page.
    list_queries = 3
    filter_cases = [
        ("name", "Workshop", ["workshop"]),
        ("name", "Workshop,Control room", ["workshop", "control"]),
        ("time_zone", "Europe/London", ["control"]),
        ("time_zone", "!Europe/London", ["workshop", "depot"]),
        ("created_at", ">2000-01-01", ["workshop", "control", "depot"]),
        ("updated_at", "<2000-01-01", []),
        ("ids", "workshop,depot", ["workshop", "depot"]),
        ("holiday_country", "GB", ["control"]),
        ("holiday_country", "", ["workshop", "depot"]),
        ("holiday_subdivision", "SCT", ["control"]),
    ]
    malformed_filters = [("created_at", ">2026-13-45"), ("updated_at", "<yesterday")]

    def factory(self, org, **overrides):
        return make_calendar(org, **overrides)

    def filter_objects(self, org):
        return {
            "workshop": make_calendar(org, name="Workshop"),
            "control": make_calendar(
                org, name="Control room", time_zone="Europe/London", holiday_country="GB", holiday_subdivision="SCT"
            ),
            "depot": make_calendar(org, name="Depot", time_zone="America/New_York"),
        }

    def check_created(self, body, data):
        assert body["hours"] == [
            {"weekday": 1, "start": "08:00", "end": "12:00"},
            {"weekday": 1, "start": "13:00", "end": "17:00"},
            {"weekday": 2, "start": "08:00", "end": "17:00"},
            {"weekday": 6, "start": "20:00", "end": "24:00"},
        ]
        assert body["holidays"] == [
            {"date": "2026-12-25", "name": "Christmas Day"},
            {"date": "2026-12-26", "name": "Boxing Day"},
        ]
        assert Event.objects.filter(type="calendar.created", object_id=body["id"]).exists()


def post(client, **overrides):
    body = {"name": "Cal", "time_zone": "Europe/Amsterdam", "hours": OFFICE_HOURS, **overrides}
    return client.post(URL, body, format="json")


@pytest.mark.django_db
class TestCalendarValidation:
    def test_time_zone_must_be_iana(self, api):
        client = api("manager")
        for zone in ("Mars/Olympus", "CEST", "", "europe/amsterdam"):
            response = post(client, time_zone=zone)
            assert response.status_code == 422, zone
            assert set(response.json()["errors"]) == {"time_zone"}, zone
        assert post(client, time_zone="America/Argentina/Buenos_Aires").status_code == 201

    @pytest.mark.parametrize(
        ("hours", "fragment"),
        [
            # overlapping intervals on one day, in any order
            ([{"weekday": 1, "start": "08:00", "end": "12:00"}, {"weekday": 1, "start": "11:00", "end": "17:00"}],
             "hours[1]: overlaps hours[0]"),
            ([{"weekday": 3, "start": "12:00", "end": "18:00"}, {"weekday": 3, "start": "08:00", "end": "12:30"}],
             "hours[1]: overlaps hours[0]"),
            ([{"weekday": 2, "start": "00:00", "end": "24:00"}, {"weekday": 2, "start": "10:00", "end": "11:00"}],
             "overlaps"),
            # empty and reversed intervals
            ([{"weekday": 1, "start": "09:00", "end": "09:00"}], "must be after start"),
            ([{"weekday": 1, "start": "17:00", "end": "08:00"}], "must be after start"),
            # Twelfth round: a night shift and a midnight end are refused saying how to write them.
            ([{"weekday": 5, "start": "22:00", "end": "06:00"}], "two intervals, 22:00-24:00 and 00:00-06:00"),
            ([{"weekday": 5, "start": "18:00", "end": "00:00"}], 'midnight as an end is "24:00"'),
            # weekdays are ISO integers 1-7
            ([{"weekday": 0, "start": "08:00", "end": "17:00"}], "weekday"),
            ([{"weekday": 8, "start": "08:00", "end": "17:00"}], "weekday"),
            ([{"weekday": "1", "start": "08:00", "end": "17:00"}], "weekday"),
            ([{"weekday": True, "start": "08:00", "end": "17:00"}], "weekday"),
            # times are HH:MM; 24:00 only as an end
            ([{"weekday": 1, "start": "24:00", "end": "24:00"}], "start"),
            ([{"weekday": 1, "start": "8:00", "end": "17:00"}], "start"),
            ([{"weekday": 1, "start": "08:00", "end": "24:01"}], "end"),
            ([{"weekday": 1, "start": "08:00", "end": "17:60"}], "end"),
            ([{"weekday": 1, "start": "08:00", "end": 17}], "end"),
            # shape
            ([{"weekday": 1, "start": "08:00"}], "end is required"),
            ([{"weekday": 1, "start": "08:00", "end": "17:00", "lunch": "12:00"}], "unknown key"),
            (["Mon 08:00-17:00"], "hours[0]"),
            ({"weekday": 1}, "must be a list"),
            ([], "At least one working interval"),
        ],
    )  # fmt: skip
    def test_invalid_hours_are_422_naming_the_fault(self, api, hours, fragment):
        response = post(api("manager"), hours=hours)
        assert response.status_code == 422, response.content
        ((path, messages),) = response.json()["errors"].items()
        assert fragment in f"{path}: {messages[0]}"

    @pytest.mark.parametrize(
        ("hours", "path", "message"),
        [
            ([{"weekday": 1, "start": "08:00", "end": "17:00"}, {"weekday": 9, "start": "08:00", "end": "17:00"}],
             "hours[1]", "weekday must be an integer from 1 (Monday) to 7 (Sunday), not 9"),
            ([{"weekday": 1, "start": "08:00", "end": "12:00"}, {"weekday": 1, "start": "11:00", "end": "17:00"}],
             "hours[1]", "overlaps hours[0] on weekday 1"),
            (["Mon 08:00-17:00"], "hours[0]", "must be an object with weekday, start and end"),
            ({"weekday": 1}, "hours", "hours must be a list of {weekday, start, end} objects"),
        ],
    )  # fmt: skip
    def test_an_intervals_error_is_keyed_by_its_path(self, api, hours, path, message):
        # Found by an outside sweep: every error was keyed `hours`, the index only in the message,
        # while a holiday's was keyed `holidays[1]`.
        response = post(api("manager"), hours=hours)
        assert response.status_code == 422, response.content
        assert response.json()["errors"] == {path: [message]}

    def test_several_intervals_a_day_touching_intervals_and_a_24_00_end_are_fine(self, api):
        hours = [
            {"weekday": 1, "start": "08:00", "end": "12:00"},
            {"weekday": 1, "start": "12:00", "end": "13:00"},
            {"weekday": 1, "start": "14:00", "end": "24:00"},
            {"weekday": 7, "start": "00:00", "end": "24:00"},
        ]
        response = post(api("manager"), hours=hours)
        assert response.status_code == 201, response.content
        assert response.json()["hours"] == hours

    def test_holidays(self, api):
        client = api("manager")
        duplicate = [{"date": "2026-12-25", "name": "Christmas"}, {"date": "2026-12-25", "name": "Again"}]
        response = post(client, holidays=duplicate)
        assert response.status_code == 422
        assert response.json()["errors"] == {"holidays": ["Listed twice: 2026-12-25."]}
        for holidays in ([{"date": "2026-02-30", "name": "No such day"}], [{"name": "No date"}]):
            response = post(client, holidays=holidays)
            assert response.status_code == 422
            # The key is the JSON path of the fault, as for every list item.
            assert set(response.json()["errors"]) == {"holidays[0].date"}
        # A bare date is not a holiday: the fault is the item's own, and says what an item is.
        response = post(client, holidays=[{"date": "2026-12-24"}, "2026-12-25"])
        assert response.status_code == 422
        assert response.json()["errors"] == {
            "holidays[1]": ['Expected an object such as {"date": "2026-12-25", "name": "..."}.']
        }
        response = post(client, holidays=[{"date": "2026-01-01"}])
        assert response.status_code == 201
        assert response.json()["holidays"] == [{"date": "2026-01-01", "name": ""}]

    def test_the_lists_of_dates_are_bounded(self, api, monkeypatch):
        """Found by an outside sweep: a PATCH of 70,000 working days (1 MB) took 91 s (each date
        counted through the whole list) and was stored. At most MAX_CALENDAR_DATES of each, an
        import too; duplicates found by one count."""
        from config.errors import Unprocessable
        from slas import services

        client = api("manager")
        days = [(dt.date(2000, 1, 1) + dt.timedelta(days=i)).isoformat() for i in range(services.MAX_CALENDAR_DATES)]
        calendar = post(client, working_days=days)
        assert calendar.status_code == 201, calendar.content[:300]
        url = f"/api/v1/calendars/{calendar.json()['id']}"
        too_many = [*days, "2026-01-01"]
        for name, value in (("working_days", too_many), ("holidays", [{"date": day} for day in too_many])):
            response = client.patch(url, {name: value}, format="json")
            assert response.status_code == 422 and set(response.json()["errors"]) == {name}, response.content[:300]
        twice = client.patch(url, {"working_days": [*days[:10], *days[:10]]}, format="json")
        assert twice.json()["errors"] == {"working_days": [f"Listed twice: {', '.join(days[:10])}."]}
        monkeypatch.setattr(services, "MAX_CALENDAR_DATES", 2)
        holidays = [{"date": "2026-12-25"}, {"date": "2026-12-26"}]
        assert client.patch(url, {"working_days": [], "holidays": holidays}, format="json").status_code == 200
        with pytest.raises(Unprocessable) as refused:
            services.import_holidays(
                calendar=Calendar.objects.get(pk=calendar.json()["id"]),
                actor=None,
                holidays=[{"date": "2026-12-31", "name": "New Year's Eve"}],
            )
        assert set(refused.value.errors) == {"holidays"}

    def test_a_name_is_unique_within_the_organization(self, api, org, other_org):
        # Found by an outside sweep: a second "UK office hours" made `make run` (seed_demo) crash,
        # and selects showing only names could not tell two apart.
        client = api("manager")
        first = post(client, name="UK office hours")
        assert first.status_code == 201
        taken = [f"Already used by calendar {first.json()['id']}."]
        again = post(client, name="UK office hours")
        assert (again.status_code, again.json()["errors"]) == (422, {"name": taken})
        other = post(client, name="NL office hours").json()
        renamed = client.patch(f"{URL}/{other['id']}", {"name": "UK office hours"}, format="json")
        assert (renamed.status_code, renamed.json()["errors"]) == (422, {"name": taken})
        same = client.patch(f"{URL}/{first.json()['id']}", {"name": "UK office hours"}, format="json")
        assert same.status_code == 200  # its own name is no clash
        assert make_calendar(other_org, name="UK office hours").pk  # another organization's is its own
        assert Calendar.objects.filter(organization=org, name="UK office hours").count() == 1

    def test_other_organizations_calendar_cannot_be_read_or_edited(self, api, other_org):
        theirs = make_calendar(other_org)
        client = api("admin")
        assert client.patch(f"{URL}/{theirs.pk}", {"name": "x"}, format="json").status_code == 404
        assert Calendar.objects.get(pk=theirs.pk).name == theirs.name


@pytest.mark.django_db
class TestCalendarDelete:
    def test_unused_calendar_is_deleted_with_an_event(self, api, org):
        calendar = make_calendar(org)
        assert api("manager").delete(f"{URL}/{calendar.pk}").status_code == 204
        assert not Calendar.objects.filter(pk=calendar.pk).exists()
        assert Event.objects.filter(type="calendar.deleted", object_id=calendar.pk).exists()

    def test_calendar_used_by_a_rule_is_409_and_kept(self, api, org):
        calendar = make_calendar(org)
        make_rule(make_contract(org), calendar=calendar)
        response = api("manager").delete(f"{URL}/{calendar.pk}")
        assert response.status_code == 409 and "SLA rules" in response.json()["message"]
        assert Calendar.objects.filter(pk=calendar.pk).exists()
        assert not Event.objects.filter(type="calendar.deleted").exists()  # rolled back with the delete

    def test_operator_cannot_delete(self, api, org):
        calendar = make_calendar(org)
        assert api("operator").delete(f"{URL}/{calendar.pk}").status_code == 403


def due_times(job) -> dict[str, str]:
    return {c.metric: iso(c.due_at) for c in SlaClock.objects.filter(work_order=job)}


@pytest.mark.django_db
class TestEditingRecomputesRunningClocks:
    """Friday 16:00 in Amsterdam, office hours Mon-Fri 08:00-17:00: a 120-minute response is
    due Monday 09:00 and a 480-minute resolution Monday 15:00 (one hour on Friday, seven on Monday)."""

    @pytest.fixture
    def setup(self, org):
        calendar = make_calendar(org)
        other = make_calendar(org)
        contract = make_contract(org, status="active")
        make_rule(contract, metric="response", target_minutes=120, calendar=calendar)
        make_rule(contract, metric="resolution", target_minutes=480, calendar=calendar)
        make_rule(contract, metric="on_site", target_minutes=240, calendar=other)
        running = make_job(org, contract=contract, reported_at=FRIDAY_16)
        # Responded on Friday: its response clock has stopped (met); its resolution clock runs.
        responded = make_job(org, contract=contract, reported_at=FRIDAY_16, responded_at=ams(2026, 1, 9, 16, 30))
        cancelled = make_job(org, contract=contract, reported_at=FRIDAY_16)
        change(cancelled, status="cancelled", status_changed_at=ams(2026, 1, 9, 16, 10))
        return {"calendar": calendar, "running": running, "responded": responded, "cancelled": cancelled}

    def test_a_holiday_moves_the_due_times_and_the_header_counts_the_running_clocks(self, api, setup):
        running, responded = setup["running"], setup["responded"]
        assert due_times(running) == {
            "response": iso(ams(2026, 1, 12, 9, 0)),
            "resolution": iso(ams(2026, 1, 12, 15, 0)),
            "on_site": iso(ams(2026, 1, 12, 11, 0)),
        }
        cancelled_before = list(SlaClock.objects.filter(work_order=setup["cancelled"]).values())
        response = api("manager").patch(
            f"{URL}/{setup['calendar'].pk}",
            {"holidays": [{"date": "2026-01-12", "name": "Closed for stock-taking"}]},
            format="json",
        )
        assert response.status_code == 200, response.content
        # The running job's response and resolution clocks, and the other job's resolution clock;
        # not the stopped response clock, not the on-site clock on another calendar, not the cancelled job.
        assert response["X-Recomputed-Clocks"] == "3"
        assert due_times(running) == {
            "response": iso(ams(2026, 1, 13, 9, 0)),
            "resolution": iso(ams(2026, 1, 13, 15, 0)),
            "on_site": iso(ams(2026, 1, 12, 11, 0)),  # its own calendar has no holiday
        }
        assert due_times(responded)["resolution"] == iso(ams(2026, 1, 13, 15, 0))
        assert list(SlaClock.objects.filter(work_order=setup["cancelled"]).values()) == cancelled_before
        # ... and the API shows the new due times.
        clocks = api("viewer").get(f"/api/v1/work_orders/{running.pk}").json()["sla_clocks"]
        assert {c["metric"]: c["due_at"] for c in clocks}["response"] == iso(ams(2026, 1, 13, 9, 0))

    def test_a_new_time_zone_moves_the_due_times(self, api, setup):
        response = api("manager").patch(f"{URL}/{setup['calendar'].pk}", {"time_zone": "Europe/London"}, format="json")
        assert response.status_code == 200 and response["X-Recomputed-Clocks"] == "3"
        # 15:00 UTC is 15:00 in London: the two hours to closing are exactly the target, so the
        # response is due at the closing instant, Friday 17:00 London, not at Monday's opening.
        assert due_times(setup["running"])["response"] == "2026-01-09T17:00:00Z"
        assert due_times(setup["running"])["resolution"] == "2026-01-12T14:00:00Z"

    def test_new_hours_move_the_due_times(self, api, setup):
        hours = [{"weekday": day, "start": "10:00", "end": "17:00"} for day in range(1, 6)]
        response = api("manager").patch(f"{URL}/{setup['calendar'].pk}", {"hours": hours}, format="json")
        assert response.status_code == 200 and response["X-Recomputed-Clocks"] == "3"
        assert due_times(setup["running"])["response"] == iso(ams(2026, 1, 12, 11, 0))

    def test_a_new_name_recomputes_nothing(self, api, setup):
        before = list(SlaClock.objects.order_by("pk").values("pk", "due_at", "updated_at"))
        response = api("manager").patch(f"{URL}/{setup['calendar'].pk}", {"name": "Renamed"}, format="json")
        assert response.status_code == 200 and response["X-Recomputed-Clocks"] == "0"
        assert list(SlaClock.objects.order_by("pk").values("pk", "due_at", "updated_at")) == before

    def test_an_unchanged_patch_says_zero(self, api, setup):
        calendar = setup["calendar"]
        response = api("manager").patch(f"{URL}/{calendar.pk}", {"time_zone": calendar.time_zone}, format="json")
        assert response.status_code == 200 and response["X-Recomputed-Clocks"] == "0"
        assert not Event.objects.filter(type="calendar.updated").exists()

    def test_recomputation_runs_in_batches(self, api, org, monkeypatch):
        monkeypatch.setattr("workorders.services.RECOMPUTE_BATCH", 2)
        calendar = make_calendar(org)
        contract = make_contract(org, status="active")
        make_rule(contract, metric="response", target_minutes=120, calendar=calendar)
        jobs = [make_job(org, contract=contract, reported_at=FRIDAY_16) for _ in range(5)]
        client = api("manager")
        with CaptureQueriesContext(connection) as queries:
            response = client.patch(
                f"{URL}/{calendar.pk}", {"holidays": [{"date": "2026-01-12", "name": "Closed"}]}, format="json"
            )
        assert response.status_code == 200 and response["X-Recomputed-Clocks"] == "5"
        sqls = [q["sql"] for q in queries.captured_queries]
        batches = [sql for sql in sqls if 'FROM "workorders_workorder"' in sql and "LIMIT 2" in sql]
        assert len(batches) == 4  # 2 + 2 + 1 jobs, then an empty batch ends the walk
        assert {due_times(job)["response"] for job in jobs} == {iso(ams(2026, 1, 13, 9, 0))}

    def test_the_edit_and_its_recomputation_are_one_transaction(self, api, setup, monkeypatch):
        def fail(*args, **kwargs):
            raise RuntimeError("recomputation failed")

        monkeypatch.setattr("workorders.services.recompute_clocks", fail)
        calendar = setup["calendar"]
        client = api("manager")
        client.raise_request_exception = False
        response = client.patch(f"{URL}/{calendar.pk}", {"time_zone": "Europe/London"}, format="json")
        assert response.status_code == 500
        assert Calendar.objects.get(pk=calendar.pk).time_zone == "Europe/Amsterdam"
        assert due_times(setup["running"])["response"] == iso(ams(2026, 1, 12, 9, 0))
