"""What an `.ics` file says about an all-day event's days beyond DTSTART, DTEND and RRULE, through
`POST /calendars/{id}/import_holidays`: DURATION, EXDATE, RDATE, RECURRENCE-ID overrides and
STATUS:CANCELLED (RFC 5545). An outside test found all five read as if absent, and the holidays
wrong; what is not read (EXRULE, RECURRENCE-ID;RANGE, ...) is a 422 naming it. Each file is
written by hand and its dates counted by hand."""

from __future__ import annotations

import pytest

from tests.slas.factories import make_calendar

URL = "/api/v1/calendars"


def ics(*events: str, head: str = "") -> bytes:
    """A VCALENDAR of the given VEVENT bodies (lines joined by CRLF)."""
    body = "".join("BEGIN:VEVENT\r\n" + "\r\n".join(lines.split("\n")) + "\r\nEND:VEVENT\r\n" for lines in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{head}{body}END:VCALENDAR\r\n".encode()


@pytest.fixture
def post(api, org):
    calendar = make_calendar(org)

    def send(body: bytes):
        return api("manager").post(f"{URL}/{calendar.pk}/import_holidays", body, content_type="text/calendar")

    return send


@pytest.fixture
def imported(post):
    def dates(body: bytes) -> list[tuple[str, str]]:
        response = post(body)
        assert response.status_code == 200, response.content
        return [(h["date"], h["name"]) for h in response.json()["holidays"]]

    return dates


@pytest.fixture
def refused(post):
    def message(body: bytes) -> str:
        response = post(body)
        assert response.status_code == 422, response.content
        assert response.json()["errors"]["file"], response.json()
        return response.json()["message"]

    return message


def test_duration_gives_whole_days(imported):
    three = "UID:a\nDTSTART;VALUE=DATE:20260301\nDURATION:P3D\nSUMMARY:Three"
    assert imported(ics(three)) == [("2026-03-01", "Three"), ("2026-03-02", "Three"), ("2026-03-03", "Three")]
    week = "UID:b\nDTSTART;VALUE=DATE:20261228\nDURATION:P1W\nSUMMARY:Week"  # 28 December to 3 January
    assert [day for day, _ in imported(ics(week))] == [
        "2026-03-01", "2026-03-02", "2026-03-03",  # the first import's, kept
        "2026-12-28", "2026-12-29", "2026-12-30", "2026-12-31", "2027-01-01", "2027-01-02", "2027-01-03",
    ]  # fmt: skip


def test_duration_of_each_occurrence(imported):
    # Two days each year, three years.
    body = ics("UID:a\nDTSTART;VALUE=DATE:20261231\nDURATION:P2D\nRRULE:FREQ=YEARLY;COUNT=3\nSUMMARY:Turn")
    assert [day for day, _ in imported(body)] == [
        "2026-12-31", "2027-01-01", "2027-12-31", "2028-01-01", "2028-12-31", "2029-01-01",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "event, message",
    [
        # 99,999,999 days from 2026 end in the year 275,000: imported as 2026-01-01 alone.
        ("DTSTART;VALUE=DATE:20260101\nDURATION:P99999999D", "VEVENT 1: DURATION P99999999D ends after 2999-12-31."),
        ("DTSTART;VALUE=DATE:29991231\nDURATION:P2D", "VEVENT 1: DURATION P2D ends after 2999-12-31."),
        ("DTSTART;VALUE=DATE:20260101\nDURATION:PT36H", "VEVENT 1: DURATION must be whole days"),
        ("DTSTART;VALUE=DATE:20260101\nDURATION:P1DT1H", "VEVENT 1: DURATION must be whole days"),
        ("DTSTART;VALUE=DATE:20260101\nDURATION:-P1D", "VEVENT 1: DURATION must be whole days, at least one"),
        ("DTSTART;VALUE=DATE:20260101\nDURATION:P0D", "VEVENT 1: DURATION must be whole days, at least one"),
        (
            "DTSTART;VALUE=DATE:20260101\nDTEND;VALUE=DATE:20260103\nDURATION:P2D",
            "VEVENT 1: DTEND and DURATION exclude each other",
        ),
        # Under the range but over the caps, as a DTEND as far away is.
        ("DTSTART;VALUE=DATE:20260101\nDURATION:P2001D", "More than 2000 holiday dates in one file."),
        (
            "DTSTART;VALUE=DATE:20260101\nDURATION:P1500D\nRRULE:FREQ=DAILY;COUNT=20",
            "VEVENT 1: the file's events give more than 20,000 days",
        ),
    ],
)
def test_a_duration_that_is_not_whole_days_in_range_is_refused(refused, event, message):
    assert message in refused(ics("UID:a\n" + event))


def test_exdate_removes_occurrences(imported):
    body = ics(
        "UID:ny\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=YEARLY;COUNT=4\nSUMMARY:New year\n"
        "EXDATE;VALUE=DATE:20270101\nEXDATE;VALUE=DATE:20290101,20350101"  # 2035: no such occurrence
    )
    assert imported(body) == [("2026-01-01", "New year"), ("2028-01-01", "New year")]


def test_exdate_removes_every_day_of_its_occurrence_and_may_remove_dtstart(imported):
    # Weekly, Friday and Saturday, from Friday 6 March: the second weekend and the first are out.
    body = ics(
        "UID:w\nDTSTART;VALUE=DATE:20260306\nDTEND;VALUE=DATE:20260308\nRRULE:FREQ=WEEKLY;COUNT=3\n"
        "EXDATE;VALUE=DATE:20260306,20260313\nSUMMARY:Weekend",
        "UID:x\nDTSTART;VALUE=DATE:20260401\nEXDATE;VALUE=DATE:20260401\nSUMMARY:Gone",
        "UID:y\nDTSTART;VALUE=DATE:20260501\nSUMMARY:Labour day",
    )
    assert imported(body) == [("2026-03-20", "Weekend"), ("2026-03-21", "Weekend"), ("2026-05-01", "Labour day")]


def test_rdate_adds_occurrences_of_the_events_length(imported):
    one = ics("UID:r\nDTSTART;VALUE=DATE:20260101\nRDATE;VALUE=DATE:20260105,20260110\nSUMMARY:Closed")
    assert [day for day, _ in imported(one)] == ["2026-01-01", "2026-01-05", "2026-01-10"]
    two = ics(
        "UID:s\nDTSTART;VALUE=DATE:20260601\nDTEND;VALUE=DATE:20260603\nRDATE;VALUE=DATE:20260701\n"
        "RDATE;VALUE=DATE:20260801\nSUMMARY:Two"
    )
    assert [day for day, name in imported(two) if name == "Two"] == [
        "2026-06-01", "2026-06-02", "2026-07-01", "2026-07-02", "2026-08-01", "2026-08-02",
    ]  # fmt: skip


def test_rdate_joins_the_rule_once_and_exdate_wins(imported):
    # Yearly 1 May 2026-2028; RDATE adds 1 May 2027 again (once) and 5 May 2026; EXDATE takes 5 May
    # back out and 1 May 2028. RDATE beyond the rule's ten years is a date the file names: kept.
    body = ics(
        "UID:m\nDTSTART;VALUE=DATE:20260501\nRRULE:FREQ=YEARLY;COUNT=3\nSUMMARY:May\n"
        "RDATE;VALUE=DATE:20270501,20260505,20400501\nEXDATE;VALUE=DATE:20260505,20280501"
    )
    assert [day for day, _ in imported(body)] == ["2026-05-01", "2027-05-01", "2040-05-01"]


def test_an_override_moves_its_occurrence(imported):
    master = "UID:ny\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=YEARLY;COUNT=2\nSUMMARY:New year"
    moved = "UID:ny\nRECURRENCE-ID;VALUE=DATE:20270101\nDTSTART;VALUE=DATE:20270102\nSUMMARY:New year (moved)"
    assert imported(ics(master, moved)) == [("2026-01-01", "New year"), ("2027-01-02", "New year (moved)")]


def test_an_override_may_come_first_and_have_its_own_length(imported):
    moved = "UID:ny\nRECURRENCE-ID;VALUE=DATE:20260101\nDTSTART;VALUE=DATE:20251231\nDURATION:P3D\nSUMMARY:Long"
    master = "UID:ny\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=YEARLY;COUNT=2\nSUMMARY:New year"
    assert imported(ics(moved, master)) == [
        ("2025-12-31", "Long"), ("2026-01-01", "Long"), ("2026-01-02", "Long"), ("2027-01-01", "New year"),
    ]  # fmt: skip


def test_a_cancelled_or_timed_override_removes_its_occurrence(imported):
    master = "UID:d\nDTSTART;VALUE=DATE:20260105\nRRULE:FREQ=DAILY;COUNT=4\nSUMMARY:Closed"
    cancelled = "UID:d\nRECURRENCE-ID;VALUE=DATE:20260106\nDTSTART;VALUE=DATE:20260106\nSTATUS:CANCELLED"
    timed = "UID:d\nRECURRENCE-ID;VALUE=DATE:20260107\nDTSTART:20260107T090000Z\nDTEND:20260107T100000Z"
    assert [day for day, _ in imported(ics(master, cancelled, timed))] == ["2026-01-05", "2026-01-08"]


def test_an_override_without_its_event_stands_alone(imported):
    alone = "UID:elsewhere\nRECURRENCE-ID;VALUE=DATE:20260101\nDTSTART;VALUE=DATE:20260102\nSUMMARY:Alone"
    assert imported(ics(alone)) == [("2026-01-02", "Alone")]


def test_a_cancelled_event_gives_no_days(imported, refused):
    cancelled = "UID:c\nDTSTART;VALUE=DATE:20260101\nSTATUS:CANCELLED\nSUMMARY:Off"
    assert "No all-day events in the file" in refused(ics(cancelled))
    kept = "UID:k\nDTSTART;VALUE=DATE:20260102\nSTATUS:CONFIRMED\nSUMMARY:On"
    series = "UID:s\nDTSTART;VALUE=DATE:20260201\nRRULE:FREQ=DAILY;COUNT=3\nstatus:cancelled"
    moved = "UID:s\nRECURRENCE-ID;VALUE=DATE:20260202\nDTSTART;VALUE=DATE:20260210"  # of a cancelled series
    assert imported(ics(cancelled, kept, series, moved)) == [("2026-01-02", "On")]


@pytest.mark.parametrize(
    "events, message",
    [
        (
            ["UID:e\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=DAILY;COUNT=5\nEXRULE:FREQ=DAILY;INTERVAL=2"],
            "VEVENT 1: EXRULE is not supported",
        ),
        (
            [
                "UID:e\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=YEARLY;COUNT=5",
                "UID:e\nRECURRENCE-ID;RANGE=THISANDFUTURE;VALUE=DATE:20280101\nDTSTART;VALUE=DATE:20280102",
            ],
            "VEVENT 2: RECURRENCE-ID;RANGE=THISANDFUTURE is not supported",
        ),
        (
            [
                "UID:e\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=YEARLY;COUNT=5",
                "UID:e\nRECURRENCE-ID;VALUE=DATE:20270101\nDTSTART;VALUE=DATE:20270102\nRRULE:FREQ=YEARLY;COUNT=2",
            ],
            "VEVENT 2: RRULE on an override (RECURRENCE-ID) is not supported",
        ),
        (
            [
                "UID:e\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=YEARLY;COUNT=5",
                "UID:e\nRECURRENCE-ID;VALUE=DATE:20270101\nDTSTART;VALUE=DATE:20270102",
                "UID:e\nRECURRENCE-ID;VALUE=DATE:20270101\nDTSTART;VALUE=DATE:20270103",
            ],
            "VEVENT 3: RECURRENCE-ID 2027-01-01 of UID e is also VEVENT 2's.",
        ),
        (
            [
                "UID:e\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=YEARLY;COUNT=5",
                "UID:e\nRECURRENCE-ID:20270101T000000\nDTSTART;VALUE=DATE:20270102",
            ],
            "VEVENT 2: RECURRENCE-ID must be a date, as the DTSTART of VEVENT 1 (its event) is.",
        ),
        (
            [
                "UID:e\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=YEARLY;COUNT=5",
                "UID:e\nDTSTART;VALUE=DATE:20260601",
                "UID:e\nRECURRENCE-ID;VALUE=DATE:20270101\nDTSTART;VALUE=DATE:20270102",
            ],
            "VEVENT 3: UID e names 2 events without RECURRENCE-ID (VEVENT 1, VEVENT 2)",
        ),
        (
            ["RECURRENCE-ID;VALUE=DATE:20270101\nDTSTART;VALUE=DATE:20270102"],
            "VEVENT 1: RECURRENCE-ID needs the UID",
        ),
        (
            ["UID:e\nDTSTART;VALUE=DATE:20260101\nRDATE;VALUE=PERIOD:20260105T000000Z/P1D"],
            "VEVENT 1: RDATE 2026-01-05T00:00:00+00:00/2026-01-06T00:00:00+00:00 is not a date",
        ),
        (
            ["UID:e\nDTSTART;VALUE=DATE:20260101\nRDATE:20260105T000000"],
            "VEVENT 1: RDATE 2026-01-05T00:00:00 is not a date",
        ),
        (
            ["UID:e\nDTSTART;VALUE=DATE:20260101\nDTEND;VALUE=DATE:20260103\nRDATE;VALUE=DATE:29991231"],
            "VEVENT 1: RDATE 2999-12-31 is not from 2000-01-01 to 2999-12-31 (with the event's 2 days).",
        ),
        (
            ["UID:e\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=YEARLY;COUNT=3\nEXDATE:20270101T000000"],
            "VEVENT 1: EXDATE 2027-01-01T00:00:00 is not a date",
        ),
        # A second DTSTART or RRULE was a 500 (icalendar gives a list).
        (["UID:e\nDTSTART;VALUE=DATE:20260101\nDTSTART;VALUE=DATE:20260102"], "VEVENT 1: DTSTART is given 2 times"),
        (
            ["UID:e\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=YEARLY;COUNT=2\nRRULE:FREQ=MONTHLY;COUNT=2"],
            "VEVENT 1: RRULE is given 2 times",
        ),
    ],
)
def test_what_is_not_read_is_refused_naming_it(refused, events, message):
    assert message in refused(ics(*events)), message


def test_a_cancelling_itip_message_is_refused(refused):
    body = ics("UID:e\nDTSTART;VALUE=DATE:20260101\nSTATUS:CANCELLED", head="METHOD:CANCEL\r\n")
    assert "METHOD:CANCEL" in refused(body)


def test_a_tentative_event_gives_no_days(imported, refused):
    # A tentative closure is not a closure: a holiday stops every SLA clock of the calendar, so a
    # date the file itself says may not be closed was imported as one (tenth round).
    tentative = "UID:t\nDTSTART;VALUE=DATE:20260101\nSTATUS:TENTATIVE\nSUMMARY:Maybe"
    message = refused(ics(tentative))
    assert "No all-day events in the file (1 tentative or cancelled, which are not closures)" in message, message
    kept = "UID:k\nDTSTART;VALUE=DATE:20260102\nSTATUS:CONFIRMED\nSUMMARY:On"
    series = "UID:s\nDTSTART;VALUE=DATE:20260201\nRRULE:FREQ=DAILY;COUNT=3\nSTATUS:TENTATIVE\nSUMMARY:Works"
    confirmed = "UID:s\nRECURRENCE-ID;VALUE=DATE:20260202\nDTSTART;VALUE=DATE:20260210\nSTATUS:CONFIRMED\nSUMMARY:Works"
    unsure = "UID:s\nRECURRENCE-ID;VALUE=DATE:20260203\nDTSTART;VALUE=DATE:20260211\nSUMMARY:Works"  # the series'
    assert imported(ics(tentative, kept, series, confirmed, unsure)) == [("2026-01-02", "On"), ("2026-02-10", "Works")]


def test_a_tentative_override_removes_its_occurrence(imported):
    master = "UID:d\nDTSTART;VALUE=DATE:20260105\nRRULE:FREQ=DAILY;COUNT=3\nSTATUS:CONFIRMED\nSUMMARY:Closed"
    moved = "UID:d\nRECURRENCE-ID;VALUE=DATE:20260106\nDTSTART;VALUE=DATE:20260109\nSTATUS:TENTATIVE"
    assert [day for day, _ in imported(ics(master, moved))] == ["2026-01-05", "2026-01-07"]


def test_a_status_no_event_takes_is_refused(refused):
    body = ics("UID:e\nDTSTART;VALUE=DATE:20260101\nSTATUS:NEEDS-ACTION")
    assert "VEVENT 1: STATUS:NEEDS-ACTION is not an event's status (TENTATIVE, CONFIRMED or CANCELLED)" in refused(body)


@pytest.mark.parametrize(
    "rule, part",
    [
        ("FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=25;BYHOUR=9", "BYHOUR=9"),
        ("FREQ=WEEKLY;BYDAY=SA;BYMINUTE=30;COUNT=4", "BYMINUTE=30"),
        ("FREQ=DAILY;COUNT=3;BYSECOND=0", "BYSECOND=0"),
    ],
)
def test_a_time_of_day_in_an_all_day_rule_is_refused(refused, rule, part):
    # Whole days have no time of day: such a rule was accepted and its times dropped silently;
    # refused like any other RRULE part an all-day event cannot use, naming the part.
    message = refused(ics(f"UID:e\nDTSTART;VALUE=DATE:20261225\nRRULE:{rule}\nSUMMARY:Xmas"))
    assert f"VEVENT 1: RRULE: {part}: an all-day event recurs on whole dates" in message, message
    assert "leave out BYHOUR, BYMINUTE, BYSECOND" in message, message


def test_a_timed_event_may_recur_at_its_hours(imported):
    # Timed events are skipped before their rule is read: a meeting's BYHOUR is no fault of the file.
    meeting = "UID:m\nDTSTART:20260105T090000\nRRULE:FREQ=DAILY;COUNT=3;BYHOUR=9,15\nSUMMARY:Standup"
    assert imported(ics(meeting, "UID:x\nDTSTART;VALUE=DATE:20261225\nSUMMARY:Xmas")) == [("2026-12-25", "Xmas")]
