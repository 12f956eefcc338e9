"""Calendars by country (the `holidays` package), working days, iCalendar export and import,
and the compiled-calendar cache."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import icalendar
import pytest

from slas import clock
from slas.models import Calendar
from tests.contracts.factories import make_contract
from tests.slas.factories import OFFICE_HOURS, ams, iso, make_calendar, make_rule
from tests.workorders.factories import make_job
from workorders.models import SlaClock

URL = "/api/v1/calendars"
# Friday 3 April 2026 16:00 in Amsterdam; Monday 6 April is Easter Monday (Tweede Paasdag).
BEFORE_EASTER = ams(2026, 4, 3, 16, 0)


def post(client, **overrides):
    body = {"name": "Cal", "time_zone": "Europe/Amsterdam", "hours": OFFICE_HOURS, **overrides}
    return client.post(URL, body, format="json")


@pytest.mark.django_db
class TestCountryValidation:
    def test_country_and_iso_subdivision_are_stored_as_the_package_names_them(self, api):
        response = post(api("manager"), holiday_country="gb", holiday_subdivision="GB-SCT")
        assert response.status_code == 201, response.content
        body = response.json()
        assert (body["holiday_country"], body["holiday_subdivision"]) == ("GB", "SCT")
        assert post(api("manager"), name="CA", holiday_country="US", holiday_subdivision="CA").status_code == 201

    @pytest.mark.parametrize(
        "fields, field, fragment",
        [
            ({"holiday_country": "XX"}, "holiday_country", "not a country the holidays package supports"),
            ({"holiday_country": "GBR"}, "holiday_country", "no more than 2"),
            ({"holiday_country": "GB", "holiday_subdivision": "XYZ"}, "holiday_subdivision", "Not one of GB's"),
            ({"holiday_subdivision": "SCT"}, "holiday_subdivision", "Needs a holiday_country"),
            (
                {"holidays": [{"date": "2026-04-06", "name": "x"}], "working_days": ["2026-04-06"]},
                "working_days",
                "Also listed as holidays: 2026-04-06",
            ),
            ({"working_days": ["2026-04-06", "2026-04-06"]}, "working_days", "Listed twice"),
            ({"working_days": ["2026-13-01"]}, "working_days[0]", "Date has wrong format"),
        ],
    )
    def test_faults_are_422_naming_the_field(self, api, fields, field, fragment):
        response = post(api("manager"), **fields)
        assert response.status_code == 422, response.content
        assert fragment in " ".join(response.json()["errors"][field]), response.json()

    def test_a_new_country_must_fit_the_stored_subdivision(self, api, org):
        calendar = make_calendar(org, holiday_country="GB", holiday_subdivision="SCT")
        response = api("manager").patch(f"{URL}/{calendar.pk}", {"holiday_country": "NL"}, format="json")
        assert response.status_code == 422
        assert "holiday_subdivision" in response.json()["errors"]


def due_times(job) -> dict[str, str]:
    return {c.metric: iso(c.due_at) for c in SlaClock.objects.filter(work_order=job)}


@pytest.mark.django_db
class TestCountryHolidaysMoveRunningClocks:
    @pytest.fixture
    def job(self, org):
        calendar = make_calendar(org)
        contract = make_contract(org, status="active")
        make_rule(contract, metric="response", target_minutes=120, calendar=calendar)
        job = make_job(org, contract=contract, reported_at=BEFORE_EASTER)
        job.calendar = calendar
        return job

    def test_country_then_working_day_then_back(self, api, job):
        client = api("manager")
        url = f"{URL}/{job.calendar.pk}"
        assert due_times(job) == {"response": iso(ams(2026, 4, 6, 9, 0))}
        response = client.patch(url, {"holiday_country": "NL"}, format="json")
        assert response.status_code == 200 and response["X-Recomputed-Clocks"] == "1"
        # Good Friday and Easter Monday are off: two hours from Tuesday's opening.
        assert due_times(job) == {"response": iso(ams(2026, 4, 7, 10, 0))}
        response = client.patch(url, {"working_days": ["2026-04-06"]}, format="json")
        assert response.status_code == 200 and response["X-Recomputed-Clocks"] == "1"
        assert due_times(job) == {"response": iso(ams(2026, 4, 6, 10, 0))}  # Easter Monday worked after all
        response = client.patch(url, {"working_days": [], "holiday_country": ""}, format="json")
        assert response.status_code == 200
        assert due_times(job) == {"response": iso(ams(2026, 4, 6, 9, 0))}

    def test_a_country_calendar_is_right_years_ahead(self, api, org):
        """No upkeep: the model's compiled calendar knows the holidays of any year it is asked about."""
        calendar = Calendar.objects.get(pk=make_calendar(org, holiday_country="NL").pk)
        # Hemelvaartsdag 2031 is Thursday 22 May: Wednesday 16:00 + 2 h runs to Friday 09:00.
        assert clock.due(calendar.compiled, ams(2031, 5, 21, 16, 0), 120) == ams(2031, 5, 23, 9, 0)
        # Koningsdag 2036 is Sunday 27 April, so it moves to Saturday 26 April: Friday 25th is worked.
        assert clock.due(calendar.compiled, ams(2036, 4, 25, 16, 0), 60) == ams(2036, 4, 25, 17, 0)
        # Christmas 2040 (Tuesday and Wednesday): Monday 24 Dec 16:00 + 2 h runs to Thursday 09:00.
        assert clock.due(calendar.compiled, ams(2040, 12, 24, 16, 0), 120) == ams(2040, 12, 27, 9, 0)


ICS = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
BEGIN:VEVENT\r
UID:a@test\r
DTSTART;VALUE=DATE:20260413\r
DTEND;VALUE=DATE:20260415\r
SUMMARY:Stock-taking\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:b@test\r
DTSTART;VALUE=DATE:20261231\r
SUMMARY:Year end\r
RRULE:FREQ=YEARLY;COUNT=2\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:c@test\r
DTSTART:20260420T090000Z\r
DTEND:20260420T100000Z\r
SUMMARY:A meeting, not a holiday\r
END:VEVENT\r
END:VCALENDAR\r
"""


@pytest.mark.django_db
class TestIcal:
    def test_export_has_weekly_hours_and_every_holiday(self, api, org):
        calendar = make_calendar(
            org,
            name="Amsterdam office",
            holiday_country="NL",
            holidays=[{"date": "2026-07-31", "name": "Summer closing"}],
            working_days=["2026-05-05"],
        )
        response = api("viewer").get(f"{URL}/{calendar.pk}/ical?years=2026")
        assert response.status_code == 200, response.content
        assert response["Content-Type"].startswith("text/calendar")
        parsed = clock_ical_events(response.content)
        weekly = [e for e in parsed if e.get("rrule")]
        assert len(weekly) == 5
        assert weekly[0]["rrule"].to_ical() == b"FREQ=WEEKLY;BYDAY=MO"
        assert str(weekly[0]["dtstart"].dt.tzinfo) == "Europe/Amsterdam"
        holidays = {e["dtstart"].dt.isoformat(): str(e["summary"]) for e in parsed if not e.get("rrule")}
        assert "2026-04-06" in holidays  # Easter Monday, from the package
        assert holidays["2026-07-31"] == "Summer closing"
        assert "2026-05-05" not in holidays  # worked despite Bevrijdingsdag
        assert all(day.startswith("2026-") for day in holidays)
        assert api("viewer").get(f"{URL}/{calendar.pk}/ical?years=20x6").status_code == 400
        # Digits of another script are no year (`int()` read "\u0662\u0660\u0662\u0666" as 2026).
        assert api("viewer").get(f"{URL}/{calendar.pk}/ical", {"years": "\u0662\u0660\u0662\u0666"}).status_code == 400

    def test_export_is_scoped_and_authenticated(self, api, anon, org, other_org):
        theirs = make_calendar(other_org)
        assert api("admin").get(f"{URL}/{theirs.pk}/ical").status_code == 404
        assert anon.get(f"{URL}/{theirs.pk}/ical").status_code == 401

    @pytest.mark.parametrize("name", ["Office\nNorth", "Office\rNorth", "Office\r\nNorth"])
    def test_a_line_break_in_the_name_is_escaped_not_a_500(self, api, org, name):
        # Found by an outside tester: an LF in the name was a 500, a CR went raw into the file.
        calendar = make_calendar(org, name=name)
        response = api("viewer").get(f"{URL}/{calendar.pk}/ical?years=2026")
        assert response.status_code == 200, response.content
        lines = response.content.split(b"\r\n")
        assert not any(b"\r" in line or b"\n" in line for line in lines)  # no break but the line ends
        assert b"X-WR-CALNAME:Office\\nNorth" in lines  # RFC 5545 TEXT, as a holiday's SUMMARY

    @pytest.mark.parametrize(("time_zone", "years"), [("Europe/London", "2040-2041"), ("Australia/Lord_Howe", "2060")])
    def test_the_time_zone_s_changes_cover_the_years_asked(self, api, org, time_zone, years):
        # Twelfth round: the VTIMEZONE had the zone's changes from 1970 to 2037 only, so a client
        # that reads it (rather than the TZID's name) put a 2040 summer's hours at winter time.
        calendar = make_calendar(org, time_zone=time_zone)
        body = api("viewer").get(f"{URL}/{calendar.pk}/ical", {"years": years}).content
        (vtimezone,) = icalendar.Calendar.from_ical(body).timezones
        described = vtimezone.to_tz(lookup_tzid=False)  # from the file's rules, not the name's
        first, last = int(years[:4]), int(years[-4:])
        for year in range(first, last + 11):
            for month in (1, 7):
                wall = dt.datetime(year, month, 1, 12)
                want = wall.replace(tzinfo=ZoneInfo(time_zone)).utcoffset()
                assert wall.replace(tzinfo=described).utcoffset() == want, (year, month)

    def test_export_then_import_round_trips_the_holidays(self, api, org):
        source = make_calendar(
            org,
            holidays=[{"date": "2026-07-31", "name": "Summer closing"}],
            holiday_country="GB",
            holiday_subdivision="ENG",
        )
        exported = api("viewer").get(f"{URL}/{source.pk}/ical?years=2026").content
        target = make_calendar(org)
        response = api("manager").post(f"{URL}/{target.pk}/import_holidays", exported, content_type="text/calendar")
        assert response.status_code == 200, response.content
        dates = {h["date"] for h in response.json()["holidays"]}
        assert {"2026-07-31", "2026-12-25", "2026-04-06"} <= dates

    def test_import_adds_all_day_events_and_recomputes(self, api, org):
        calendar = make_calendar(org, holidays=[{"date": "2026-04-14", "name": "Kept name"}])
        contract = make_contract(org, status="active")
        make_rule(contract, metric="response", target_minutes=120, calendar=calendar)
        job = make_job(org, contract=contract, reported_at=ams(2026, 4, 10, 16, 0))  # Friday
        assert due_times(job) == {"response": iso(ams(2026, 4, 13, 9, 0))}
        response = api("manager").post(f"{URL}/{calendar.pk}/import_holidays", ICS, content_type="text/calendar")
        assert response.status_code == 200, response.content
        assert response["X-Imported-Holidays"] == "3" and response["X-Recomputed-Clocks"] == "1"
        assert response.json()["holidays"] == [
            {"date": "2026-04-13", "name": "Stock-taking"},
            {"date": "2026-04-14", "name": "Kept name"},
            {"date": "2026-12-31", "name": "Year end"},
            {"date": "2027-12-31", "name": "Year end"},
        ]
        assert due_times(job) == {"response": iso(ams(2026, 4, 15, 9, 0))}

    def test_import_as_a_multipart_file(self, api, org):
        from django.core.files.uploadedfile import SimpleUploadedFile

        calendar = make_calendar(org)
        upload = SimpleUploadedFile("closures.ics", ICS, content_type="text/calendar")
        response = api("manager").post(f"{URL}/{calendar.pk}/import_holidays", {"file": upload}, format="multipart")
        assert response.status_code == 200, response.content
        assert len(response.json()["holidays"]) == 4
        response = api("manager").post(f"{URL}/{calendar.pk}/import_holidays", {"other": "x"}, format="multipart")
        assert response.status_code == 422 and "file" in response.json()["errors"]

    @pytest.mark.parametrize(
        "body, fragment",
        [
            (b"", "empty"),
            (b"hello", "must begin with BEGIN:VCALENDAR"),
            (b"BEGIN:VCALENDAR\r\nthis is not a line\r\nEND:VCALENDAR\r\n", "Malformed iCalendar"),
            (
                b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:2026x101\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
                "VEVENT 1: DTSTART",
            ),
            (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "DTSTART is missing"),
            (
                b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20260102\r\nDTEND;VALUE=DATE:20260101\r\n"
                b"END:VEVENT\r\nEND:VCALENDAR\r\n",
                "DTEND must be a date after DTSTART",
            ),
            (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n", "No all-day events"),
            # At the calendar's edges (config.dates): the day after 9999-12-31 was a 500.
            (
                b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:99991231\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
                "DTSTART 9999-12-31 is not from 2000-01-01 to 2999-12-31",
            ),
            (
                b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:00010101\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
                "DTSTART 0001-01-01 is not",
            ),
            (
                b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:29991231\r\nDTEND;VALUE=DATE:99990101\r\n"
                b"END:VEVENT\r\nEND:VCALENDAR\r\n",
                "DTEND 9999-01-01 is not",
            ),
            (  # dateutil never moves forward on INTERVAL=0: the import hung
                b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261201\r\nRRULE:FREQ=DAILY;INTERVAL=0\r\n"
                b"END:VEVENT\r\nEND:VCALENDAR\r\n",
                "INTERVAL must be at least 1",
            ),
            (b"\xff\xfeBEGIN", "Not UTF-8"),
            # Holidays are dates: FREQ=MINUTELY made 28 s and 300 MB of occurrences (an outside test).
            (
                b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261201\r\nRRULE:FREQ=HOURLY;COUNT=3\r\n"
                b"END:VEVENT\r\nEND:VCALENDAR\r\n",
                "VEVENT 1: RRULE: FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY",
            ),
            (  # dateutil searched to the year 9999 for it: 7 s an event
                b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261201\r\n"
                b"RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
                "VEVENT 1: RRULE: The rule names no date that exists",
            ),
        ],
    )
    def test_a_malformed_file_is_422_naming_the_fault(self, api, org, body, fragment):
        calendar = make_calendar(org)
        response = api("manager").post(f"{URL}/{calendar.pk}/import_holidays", body, content_type="text/calendar")
        assert response.status_code == 422, response.content
        assert fragment in response.json()["message"], response.json()
        assert response.json()["errors"]["file"]
        calendar.refresh_from_db()
        assert calendar.holidays == []

    def test_a_yearly_leap_day_recurs_on_the_years_that_have_one(self, api, org):
        # Its ten-year horizon from a 29 February raised (a 500).
        calendar = make_calendar(org)
        body = (
            b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20280229\r\nRRULE:FREQ=YEARLY;COUNT=3\r\n"
            b"SUMMARY:Leap\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )
        response = api("manager").post(f"{URL}/{calendar.pk}/import_holidays", body, content_type="text/calendar")
        assert response.status_code == 200, response.content
        assert [h["date"] for h in response.json()["holidays"]] == ["2028-02-29", "2032-02-29", "2036-02-29"]

    def test_listed_holidays_and_working_days_lie_in_the_services_dates(self, api, org):
        calendar = make_calendar(org)
        for body, field in [
            ({"holidays": [{"date": "1999-12-25", "name": "x"}]}, "holidays[0].date"),
            ({"working_days": ["3000-01-02"]}, "working_days[0]"),
        ]:
            response = api("manager").patch(f"{URL}/{calendar.pk}", body, format="json")
            assert response.status_code == 422, response.content
            assert response.json()["errors"] == {field: ["Must be from 2000-01-01 to 2999-12-31."]}

    def test_import_needs_a_manager_and_own_calendar(self, api, org, other_org):
        mine, theirs = make_calendar(org), make_calendar(other_org)
        assert (
            api("operator").post(f"{URL}/{mine.pk}/import_holidays", ICS, content_type="text/calendar").status_code
            == 403
        )
        assert (
            api("admin").post(f"{URL}/{theirs.pk}/import_holidays", ICS, content_type="text/calendar").status_code
            == 404
        )


def clock_ical_events(body: bytes):
    import icalendar

    return list(icalendar.Calendar.from_ical(body).walk("VEVENT"))


@pytest.mark.django_db
class TestCompiledCache:
    def test_a_calendar_compiles_once_per_process_and_again_after_an_edit(self, org, monkeypatch):
        calendar = make_calendar(org, holiday_country="NL")
        first = Calendar.objects.get(pk=calendar.pk).compiled
        built = []
        monkeypatch.setattr(Calendar, "spec", property(lambda self: built.append(self.pk) or clock.CalendarSpec("UTC")))
        assert Calendar.objects.get(pk=calendar.pk).compiled is first
        assert built == []  # a hit builds no spec
        from slas import services

        services.update_calendar(instance=calendar, actor=None, data={"working_days": ["2026-05-05"]})
        monkeypatch.undo()
        assert Calendar.objects.get(pk=calendar.pk).compiled is not first

    def test_thousands_of_calendars_do_not_thrash(self, org):
        clock.clear_cache()
        # 600 distinct calendars: more than the spec LRU's 512.
        calendars = [
            make_calendar(org, holidays=[{"date": f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}", "name": ""}],
                          time_zone=["Europe/Amsterdam", "Europe/London", "Asia/Tokyo"][n % 3], name=f"c{n}")
            for n in range(600)
        ]  # fmt: skip
        first = {c.pk: Calendar.objects.get(pk=c.pk).compiled for c in calendars}
        again = {c.pk: c.compiled for c in Calendar.objects.filter(pk__in=first)}
        assert all(again[pk] is first[pk] for pk in first)
        # Equal calendars of different rows (or organizations) share one compiled form.
        twin = make_calendar(org, holidays=calendars[0].holidays, time_zone=calendars[0].time_zone)
        assert twin.compiled is first[calendars[0].pk]
