"""What an imported `.ics` event's SUMMARY, VALUE=DATE and UNTIL say, through
`POST /calendars/{id}/import_holidays` (found by an outside regression sweep): a NUL in a SUMMARY
was a 500 on PostgreSQL and a stored NUL on SQLite, a second SUMMARY a Python repr as the name,
`DTSTART;TZID=...;VALUE=DATE` an all-day event skipped as timed, and an Outlook-style UTC UNTIL
refused in a visit plan's words. A holiday's name follows the one-line rule of every other name
(`config.text`), in the calendar's JSON too."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from slas.models import Calendar
from tests.slas.factories import OFFICE_HOURS, make_calendar
from tests.slas.test_ics_recurrence import ics

pytestmark = pytest.mark.django_db

URL = "/api/v1/calendars"


@pytest.fixture
def calendar(org):
    return make_calendar(org)  # Europe/Amsterdam


def send(api, calendar, body: bytes, *, upload: bool = False):
    url = f"{URL}/{calendar.pk}/import_holidays"
    if upload:
        return api("manager").post(url, {"file": SimpleUploadedFile("h.ics", body)}, format="multipart")
    return api("manager").post(url, body, content_type="text/calendar")


@pytest.mark.parametrize("upload", [False, True])
@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f", "\x85\x07"])
def test_a_control_character_in_a_summary_is_a_422_naming_the_event(api, calendar, upload, char):
    eve = "UID:a\nDTSTART;VALUE=DATE:20261224\nSUMMARY:Eve"
    body = ics(eve, f"UID:b\nDTSTART;VALUE=DATE:20261225\nSUMMARY:Xmas{char}")
    response = send(api, calendar, body, upload=upload)
    assert response.status_code == 422, response.content
    code = ord(char[-1])  # NEL is a line break (a space), BEL is not
    message = f"VEVENT 2: SUMMARY holds a control character (U+{code:04X}): a holiday's name is one line of text."
    assert response.json()["errors"] == {"file": [message]}
    calendar.refresh_from_db()
    assert calendar.holidays == []


def test_a_line_break_or_tab_in_a_summary_is_a_space(api, calendar):
    # `\n` is an escaped line break in iCalendar TEXT (legal); a raw TAB may appear in a value.
    body = ics("UID:a\nDTSTART;VALUE=DATE:20261225\nSUMMARY:Christmas\\nDay\tone")
    response = send(api, calendar, body)
    assert response.status_code == 200, response.content
    assert response.json()["holidays"] == [{"date": "2026-12-25", "name": "Christmas Day one"}]
    exported = api("manager").get(f"{URL}/{calendar.pk}/ical?years=2026").content
    assert b"SUMMARY:Christmas Day one\r\n" in exported


def test_a_summary_given_twice_is_refused_naming_it(api, calendar):
    body = ics("UID:b\nDTSTART;VALUE=DATE:20261226\nSUMMARY:one\nSUMMARY:two")
    response = send(api, calendar, body)
    assert response.status_code == 422, response.content
    assert response.json()["errors"] == {"file": ["VEVENT 1: SUMMARY is given 2 times: at most once."]}


def test_a_date_with_a_tzid_is_an_all_day_event(api, calendar):
    tz = "TZID=Europe/Amsterdam;VALUE=DATE"
    body = ics(
        f"UID:x\nDTSTART;{tz}:20261225\nDTEND;{tz}:20261227\nRRULE:FREQ=YEARLY;COUNT=3\n"
        f"EXDATE;{tz}:20271225\nRDATE;VALUE=DATE;TZID=America/New_York:20301225\nSUMMARY:Xmas",
        f"UID:x\nRECURRENCE-ID;{tz}:20281225\nDTSTART;{tz}:20281229\nSUMMARY:Moved",
        "UID:t\nDTSTART;TZID=Europe/Amsterdam:20261231T100000\nSUMMARY:Timed",  # timed: skipped
    )
    response = send(api, calendar, body)
    assert response.status_code == 200, response.content
    assert [(h["date"], h["name"]) for h in response.json()["holidays"]] == [
        ("2026-12-25", "Xmas"), ("2026-12-26", "Xmas"),
        ("2028-12-29", "Moved"),
        ("2030-12-25", "Xmas"), ("2030-12-26", "Xmas"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "time_zone, until, last",
    [
        # Outlook's: the UTC instant of 25 December 2030's midnight in Amsterdam.
        ("Europe/Amsterdam", "20301224T230000Z", "2030-12-25"),
        ("UTC", "20301224T230000Z", "2029-12-25"),  # in UTC that day begins after the UNTIL
        ("UTC", "20301225T000000Z", "2030-12-25"),
        ("America/New_York", "20301225T050000Z", "2030-12-25"),
        ("America/New_York", "20301225T045959Z", "2029-12-25"),
    ],
)
def test_a_utc_until_ends_at_the_last_day_beginning_by_it_in_the_calendars_zone(api, org, time_zone, until, last):
    calendar = make_calendar(org, time_zone=time_zone)
    body = ics(f"UID:y\nDTSTART;VALUE=DATE:20261225\nRRULE:FREQ=YEARLY;UNTIL={until}\nSUMMARY:Xmas")
    response = send(api, calendar, body)
    assert response.status_code == 200, response.content
    days = [h["date"] for h in response.json()["holidays"]]
    assert days == [f"{year}-12-25" for year in range(2026, int(last[:4]) + 1)]


def test_a_utc_until_before_the_start_is_refused_in_the_imports_words(api, calendar):
    body = ics("UID:y\nDTSTART;VALUE=DATE:20261225\nRRULE:FREQ=YEARLY;UNTIL=20261224T220000Z\nSUMMARY:Xmas")
    response = send(api, calendar, body)
    assert response.status_code == 422, response.content
    assert "plan" not in response.json()["message"]
    assert response.json()["errors"] == {
        "file": ["VEVENT 1: RRULE: UNTIL is before DTSTART (2026-12-25): the rule has no occurrence."]
    }


@pytest.mark.parametrize("char", ["\n", "\t", "\x1b", "\x85"])
def test_a_holidays_name_in_the_calendars_json_is_one_line(api, calendar, char):
    client = api("manager")
    holidays = [{"date": "2026-12-24", "name": "Eve"}, {"date": "2026-12-25", "name": f"Xmas{char}Day"}]
    message = [f"Must be one line of text without control characters (found U+{ord(char):04X})."]
    patched = client.patch(f"{URL}/{calendar.pk}", {"holidays": holidays}, format="json")
    assert patched.status_code == 422, patched.content
    assert patched.json()["errors"] == {"holidays[1].name": message}
    body = {"name": "New", "time_zone": "UTC", "hours": OFFICE_HOURS, "holidays": holidays}
    created = client.post(URL, body, format="json")
    assert created.status_code == 422 and created.json()["errors"] == {"holidays[1].name": message}
    assert not Calendar.objects.filter(name="New").exists()
