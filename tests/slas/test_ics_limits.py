"""The work one `.ics` import may cost (`slas.ical.parse_holidays`): recurrences expanded lazily
up to the caps, at most `MAX_EVENTS` all-day events and `MAX_DAYS` days computed per file. An
outside test found `RRULE:FREQ=MINUTELY` (300 bytes) taking 28 s and 300 MB, and an impossible
rule 7 s an event."""

from __future__ import annotations

import pytest

from slas import ical


def calendar(*events: str) -> bytes:
    body = "".join(f"BEGIN:VEVENT\r\n{event}END:VEVENT\r\n" for event in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n{body}END:VCALENDAR\r\n".encode()


def test_a_daily_rule_is_expanded_only_up_to_the_cap(monkeypatch):
    produced = []
    wall_times = ical.rrules.wall_times

    def counted(*args):
        for moment in wall_times(*args):
            produced.append(moment)
            yield moment

    monkeypatch.setattr(ical.rrules, "wall_times", counted)
    with pytest.raises(ical.IcsError, match="More than 2000 holiday dates"):
        ical.parse_holidays(calendar("DTSTART;VALUE=DATE:20260101\r\nRRULE:FREQ=DAILY\r\n"))
    assert len(produced) == ical.MAX_HOLIDAYS + 1  # of the 3,653 in ten years


def test_more_all_day_events_than_the_cap_are_refused():
    one = "DTSTART;VALUE=DATE:20261225\r\nSUMMARY:Christmas\r\n"
    assert ical.parse_holidays(calendar(*[one] * ical.MAX_EVENTS)) == [{"date": "2026-12-25", "name": "Christmas"}]
    with pytest.raises(ical.IcsError, match="More than 2000 all-day events"):
        ical.parse_holidays(calendar(*[one] * (ical.MAX_EVENTS + 1)))


def test_days_computed_are_bounded_when_dates_repeat():
    """A 1,500-day event repeated daily 20 times: 1,519 dates, but 30,000 days to compute."""
    long = "DTSTART;VALUE=DATE:20260101\r\nDTEND;VALUE=DATE:20300209\r\nRRULE:FREQ=DAILY;COUNT=20\r\n"
    with pytest.raises(ical.IcsError, match="VEVENT 1: the file's events give more than 20,000 days"):
        ical.parse_holidays(calendar(long))
    shorter = long.replace("COUNT=20", "COUNT=13")  # 19,500 days
    assert len(ical.parse_holidays(calendar(shorter))) == 1500 + 12


def test_a_rule_is_checked_as_a_visit_plans_and_named_by_its_event():
    ok = "DTSTART;VALUE=DATE:20260101\r\nSUMMARY:New year\r\nRRULE:FREQ=YEARLY;COUNT=2\r\n"
    for rule, message in [
        ("FREQ=MINUTELY;COUNT=5", "VEVENT 2: RRULE: FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "VEVENT 2: RRULE: The rule names no date that exists"),
        ("FREQ=YEARLY;UNTIL=20251231", "VEVENT 2: RRULE: UNTIL is before DTSTART (2026-01-01)"),
        ("FREQ=DAILY;BYEASTER=0", "VEVENT 2: RRULE: BYEASTER is not part of an RFC 5545 RRULE"),
    ]:
        with pytest.raises(ical.IcsError) as refused:
            ical.parse_holidays(calendar(ok, f"DTSTART;VALUE=DATE:20260101\r\nRRULE:{rule}\r\n"))
        assert refused.value.message.startswith(message), (rule, refused.value.message)
