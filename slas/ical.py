"""Calendars in and out of iCalendar (RFC 5545) with the `icalendar` package.

- `export_calendar`: the weekly working hours as weekly recurring events (RRULE FREQ=WEEKLY in
  the calendar's time zone) and every holiday of the asked years (public ones from the country,
  the calendar's own additions, minus its working days) as all-day events.
- `parse_holidays`: the all-day events of an `.ics` file as holidays (a multi-day event, by DTEND
  or DURATION in whole days, gives each of its days; a yearly or other recurring one its
  occurrences within `RECURRENCE_YEARS` and its RDATE dates, less its EXDATE dates; an override
  (RECURRENCE-ID) replaces the occurrence it names; a STATUS:CANCELLED or STATUS:TENTATIVE
  event gives none: a closure that may not happen is not a closure), or
  `IcsError` naming the fault (line, component, property) for a malformed file, and naming what
  would change an event's days but is not read (EXRULE, RECURRENCE-ID;RANGE, ...). A recurring
  event's RRULE is checked as a visit plan's is (`workorders.recurrence.validate`: DAILY or
  coarser, since holidays are dates; a rule no date satisfies refused at once; BYHOUR, BYMINUTE
  and BYSECOND refused, as whole days have no times) and expanded
  lazily up to its horizon; a file gives at most `MAX_HOLIDAYS` dates from at most `MAX_EVENTS`
  all-day events, computing at most `MAX_DAYS` days on the way. A value with `VALUE=DATE` is a
  date even with a TZID; a UTC `UNTIL` on an all-day rule is read at the calendar's local midnights.

No Django import: the view turns `IcsError` into a 422.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re

import icalendar
from dateutil.relativedelta import relativedelta

from config import dates, text
from workorders import recurrence as rrules

from .clock import CalendarSpec, public_holidays

WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
RECURRENCE_YEARS = 10  # a recurring all-day event is expanded this many years from its start
MAX_HOLIDAYS = 2000  # more dates than this in one file is refused
MAX_EVENTS = 2000  # all-day events per file (timed ones are skipped, at no cost)
# Days computed per file: each day of each occurrence, repeats too (two events on one date, a
# daily rule under a multi-day event). A file of 2,000 dates computes 2,000 when none repeats.
MAX_DAYS = 20_000


class IcsError(ValueError):
    """A malformed or unusable `.ics` file; `field` is where the fault is."""

    def __init__(self, message: str, field: str = "file") -> None:
        super().__init__(message)
        self.message, self.field = message, field


def holidays_of(spec: CalendarSpec, names: dict[dt.date, str], years: range) -> list[tuple[dt.date, str]]:
    """The holidays of `years` as the clock counts them, with names, sorted."""
    found: dict[dt.date, str] = {}
    if spec.country:
        import holidays as holidays_package

        for year in years:
            named = holidays_package.country_holidays(spec.country, subdiv=spec.subdivision, years=year)
            for day in public_holidays(spec.country, spec.subdivision, year) - spec.working_days:
                found[day] = named.get(day) or "Public holiday"
    for day in spec.holidays:
        if day.year in years:
            found[day] = names.get(day) or found.get(day) or "Holiday"
    return sorted(found.items())


def export_calendar(*, name: str, uid_base: str, spec: CalendarSpec, names: dict[dt.date, str], years: range) -> bytes:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//SLA service//calendar export//EN")
    cal.add("version", "2.0")
    # As TEXT, escaped like SUMMARY: icalendar writes an X- property's plain str raw, so a line
    # break in the name was a 500 (LF) or a bare CR inside the content line.
    cal.add("x-wr-calname", icalendar.vText(name))
    cal.add("x-wr-timezone", spec.time_zone)
    zone = _zone(spec.time_zone)
    anchor = dt.date(years.start, 1, 1)
    stamp = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for index, (weekday, start, end) in enumerate(spec.hours):
        day = anchor + dt.timedelta(days=(weekday - 1 - anchor.weekday()) % 7)
        begins = dt.datetime.combine(day, dt.time.fromisoformat(start), tzinfo=zone)
        ends = (
            dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0), tzinfo=zone)
            if end == "24:00"
            else dt.datetime.combine(day, dt.time.fromisoformat(end), tzinfo=zone)
        )
        event = icalendar.Event()
        event.add("uid", f"{uid_base}-hours-{index}")
        event.add("dtstamp", stamp)
        event.add("summary", "Working hours")
        event.add("dtstart", begins)
        event.add("dtend", ends)
        event.add("rrule", {"freq": "weekly", "byday": WEEKDAYS[weekday - 1]})
        event.add("transp", "OPAQUE")
        cal.add_component(event)
    for day, holiday in holidays_of(spec, names, years):
        event = icalendar.Event()
        event.add("uid", f"{uid_base}-holiday-{day.isoformat()}")
        event.add("dtstamp", stamp)
        event.add("summary", holiday)
        event.add("dtstart", day)
        event.add("dtend", day + dt.timedelta(days=1))
        event.add("transp", "TRANSPARENT")
        event.add("categories", ["Holiday"])
        cal.add_component(event)
    # The zone's changes over the years asked for (icalendar's default, 1970 to 2037, left a 2040
    # export's summer at winter time for a client that reads the VTIMEZONE), and on through the
    # next ten for the weekly events, which recur on.
    cal.add_missing_timezones(first_date=anchor, last_date=dt.date(years.stop + 10, 1, 1))
    return cal.to_ical()


def _zone(name: str):
    import zoneinfo

    return zoneinfo.ZoneInfo(name)


def parse_holidays(data: bytes, *, time_zone: str = "UTC") -> list[dict]:
    """The all-day events of an `.ics` file as ``[{"date": "YYYY-MM-DD", "name": ...}]``, sorted.

    `time_zone` is the calendar's: its local midnights are when the holidays begin, for an RRULE's
    UNTIL given in UTC. Timed, cancelled and tentative events are not holidays and are skipped.
    Raises IcsError for anything malformed, and for anything that would change an event's days
    which is not read here (EXRULE, RECURRENCE-ID;RANGE, RDATE periods, METHOD:CANCEL, a time of
    day in an all-day RRULE): refused, never dropped.
    """
    if not data or not data.strip():
        raise IcsError("The file is empty; expected an iCalendar (.ics) file.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IcsError(f"Not UTF-8 text at byte {exc.start}; expected an iCalendar (.ics) file.") from None
    if not text.lstrip().upper().startswith("BEGIN:VCALENDAR"):
        raise IcsError("Not an iCalendar file: it must begin with BEGIN:VCALENDAR.")
    try:
        calendars = icalendar.Calendar.from_ical(text, multiple=True)
    except ValueError as exc:
        raise IcsError(f"Malformed iCalendar: {exc}") from None
    found: dict[dt.date, str] = {}
    events = days = unsure = 0
    for calendar in calendars:
        if str(calendar.get("method") or "").upper() == "CANCEL":
            raise IcsError("METHOD:CANCEL: the file cancels events (an iTIP message); it lists no holidays.")
        vevents = []
        for index, event in enumerate(calendar.walk("VEVENT")):
            where = f"VEVENT {index + 1}"
            if event.errors:
                prop, message = event.errors[0]
                raise IcsError(f"{where}: {prop}: {message}", "file")
            vevents.append((where, event))
        masters, moved = _series(vevents)
        for where, event in vevents:
            master = masters.get(_uid(event, where)) if event.get("recurrence-id") is not None else None
            if not _firm(event, where, master):
                # A cancelled or tentative event gives no days, nor do the moved occurrences of a
                # cancelled one; an override's own STATUS decides its occurrence (its series' without).
                unsure += 1
                continue
            start = _one(event, "dtstart", where)
            if start is None:
                raise IcsError(f"{where}: DTSTART is missing.")
            first = _when(start)
            if isinstance(first, dt.datetime):
                continue  # a timed event, not a holiday
            events += 1
            if events > MAX_EVENTS:
                raise IcsError(f"More than {MAX_EVENTS} all-day events in one file.")
            if not dates.in_range(first):
                raise IcsError(f"{where}: DTSTART {first.isoformat()} is not {dates.RANGE}.")
            name = _name(event, where)
            length = _length(event, first, where)
            for begin in _starts(event, first, length, where, moved, time_zone):
                for offset in range(length):
                    days += 1
                    if days > MAX_DAYS:
                        raise IcsError(
                            f"{where}: the file's events give more than {MAX_DAYS:,} days (each day of each "
                            "occurrence, repeats too): split it."
                        )
                    found.setdefault(begin + dt.timedelta(days=offset), name)
                    if len(found) > MAX_HOLIDAYS:
                        raise IcsError(f"More than {MAX_HOLIDAYS} holiday dates in one file.")
    if not found:
        skipped = f" ({unsure} tentative or cancelled, which are not closures)" if unsure else ""
        raise IcsError(f"No all-day events in the file{skipped}: nothing to import as holidays.")
    return [{"date": day.isoformat(), "name": name} for day, name in sorted(found.items())]


def _one(event, name: str, where: str):
    """The event's `name` property, or None; IcsError if given more than once (icalendar then
    gives a list: a second DTSTART or RRULE was a 500)."""
    value = event.get(name)
    if isinstance(value, list):
        raise IcsError(f"{where}: {name.upper()} is given {len(value)} times: at most once.")
    return value


def _when(prop, params=None):
    """A DTSTART, DTEND, RECURRENCE-ID, RDATE or EXDATE value as its VALUE says: icalendar reads
    `;TZID=...;VALUE=DATE:20261225` (some exporters write it) as a date-time at local midnight, and
    the all-day event was skipped as timed. A date has no time zone: the TZID is ignored."""
    value = prop.dt
    given = (prop.params if params is None else params).get("VALUE", "")
    if isinstance(value, dt.datetime) and str(given).upper() == "DATE":
        return value.date()
    return value


def _listed(event, name: str) -> list:
    """The values of every RDATE or EXDATE line of the event (a date, a date-time or a period),
    each read by `_when` with its line's parameters."""
    lines = event.get(name, [])
    return [_when(item, line.params) for line in (lines if isinstance(lines, list) else [lines]) for item in line.dts]


def _name(event, where: str) -> str:
    """The holiday's name: the SUMMARY, one line, as every name the API takes
    (`config.text`): a line break or tab (an escaped `\\n` is legal TEXT) becomes a space; any other
    control character (a NUL was a 500 on PostgreSQL) is refused, naming the event."""
    summary = _one(event, "summary", where)
    name = text.flattened(str(summary or ""))[:120].strip() or "Holiday"
    char = text.control_character(name)
    if char is not None:
        raise IcsError(
            f"{where}: SUMMARY holds a control character (U+{ord(char):04X}): a holiday's name is one line of text."
        )
    return name


def _uid(event, where: str) -> str | None:
    uid = _one(event, "uid", where)
    return None if uid is None else str(uid)


EVENT_STATUSES = ("TENTATIVE", "CONFIRMED", "CANCELLED")  # RFC 5545 3.8.1.11, for a VEVENT


def _status(event, where: str) -> str | None:
    """The event's STATUS, upper case, or None; IcsError for a value a VEVENT does not take (a
    to-do's NEEDS-ACTION, a journal's DRAFT): refused rather than guessed."""
    value = _one(event, "status", where)
    if value is None:
        return None
    status = str(value).strip().upper()
    if status not in EVENT_STATUSES:
        raise IcsError(f"{where}: STATUS:{value} is not an event's status (TENTATIVE, CONFIRMED or CANCELLED).")
    return status


def _firm(event, where: str, master: tuple | None) -> bool:
    """Whether the event is a closure: not CANCELLED, and not TENTATIVE (a closure that may not
    happen is not one). An override (`master`: its series' event) of a cancelled series gives no
    days; otherwise its own STATUS decides, its series' when it has none."""
    status = _status(event, where)
    if master is not None:
        series = _status(master[1], master[0])
        if series == "CANCELLED":
            return False
        status = status or series
    return status not in ("TENTATIVE", "CANCELLED")


def _length(event, first: dt.date, where: str) -> int:
    """The days of an all-day event from its DTEND or DURATION (RFC 5545: one day without either)."""
    end, duration = _one(event, "dtend", where), _one(event, "duration", where)
    if end is not None and duration is not None:
        raise IcsError(f"{where}: DTEND and DURATION exclude each other (RFC 5545): give one.")
    if duration is not None:
        span = duration.dt
        # An all-day event lasts whole days (P3D, P1W); PT36H is not a number of dates.
        if not isinstance(span, dt.timedelta) or span % dt.timedelta(days=1) or span.days < 1:
            raise IcsError(
                f"{where}: DURATION must be whole days, at least one (such as P3D or P1W), for an all-day event."
            )
        if span.days > (dates.LATEST - first).days + 1:  # `first + span` may not even be a Python date
            raise IcsError(f"{where}: DURATION {duration.to_ical().decode()} ends after {dates.LATEST}.")
        return span.days
    last = _when(end) if end is not None else first + dt.timedelta(days=1)
    if isinstance(last, dt.datetime) or last <= first:
        raise IcsError(f"{where}: DTEND must be a date after DTSTART ({first.isoformat()}).")
    if not dates.in_range(last - dt.timedelta(days=1)):
        raise IcsError(f"{where}: DTEND {last.isoformat()} is not {dates.RANGE}.")
    return (last - first).days


def _series(vevents: list) -> tuple[dict[str, tuple], dict[str, dict]]:
    """The recurring events that overrides (RECURRENCE-ID) refer to, by UID, and the occurrences
    each override replaces (its RECURRENCE-ID: the start of the occurrence as its event gave it).
    An override without its event in the file stands alone, as RFC 5545 allows."""
    masters: dict[str, list[tuple]] = {}
    for where, event in vevents:
        if event.get("recurrence-id") is None:
            masters.setdefault(_uid(event, where), []).append((where, event))
    moved: dict[str, dict] = {}
    for where, event in vevents:
        recurrence = _one(event, "recurrence-id", where)
        if recurrence is None:
            continue
        if "RANGE" in recurrence.params:  # THISANDFUTURE: every later occurrence changes too
            raise IcsError(
                f"{where}: RECURRENCE-ID;RANGE={recurrence.params['RANGE']} is not supported: "
                "give each changed occurrence its own RECURRENCE-ID, or split the event."
            )
        uid = _uid(event, where)
        if uid is None:
            raise IcsError(f"{where}: RECURRENCE-ID needs the UID of the event whose occurrence it replaces.")
        replaced = _when(recurrence)
        if replaced in moved.setdefault(uid, {}):
            raise IcsError(
                f"{where}: RECURRENCE-ID {replaced.isoformat()} of UID {uid} is also {moved[uid][replaced]}'s."
            )
        moved[uid][replaced] = where
        own = masters.get(uid, [])
        if len(own) > 1:
            raise IcsError(
                f"{where}: UID {uid} names {len(own)} events without RECURRENCE-ID "
                f"({', '.join(w for w, _ in own)}): which one it overrides is unclear."
            )
        start = _one(own[0][1], "dtstart", own[0][0]) if own else None
        timed = start is not None and isinstance(_when(start), dt.datetime)
        if start is not None and timed != isinstance(replaced, dt.datetime):
            kind = "a date-time" if timed else "a date"
            raise IcsError(f"{where}: RECURRENCE-ID must be {kind}, as the DTSTART of {own[0][0]} (its event) is.")
    return {uid: masters[uid][0] for uid in moved if masters.get(uid)}, moved


def _starts(event, first: dt.date, length: int, where: str, moved: dict[str, dict], time_zone: str):
    """The first days of an all-day event's occurrences, each once (RFC 5545's recurrence set):
    DTSTART or its RRULE's occurrences, and its RDATE dates, less its EXDATE dates and the
    occurrences overrides (RECURRENCE-ID) replace. An override is one occurrence: it has none of these.
    Merged here rather than in dateutil's rruleset: its rrule would lose COUNT or the horizon
    `_rule_starts` keeps (dateutil takes only one of them)."""
    if event.get("recurrence-id") is not None:
        for name in ("rrule", "rdate", "exdate", "exrule"):
            if event.get(name) is not None:
                raise IcsError(
                    f"{where}: {name.upper()} on an override (RECURRENCE-ID) is not supported: it is one occurrence."
                )
        yield first
        return
    if event.get("exrule") is not None:
        raise IcsError(f"{where}: EXRULE is not supported (RFC 5545 deprecates it): list the dates in EXDATE.")
    added = []
    for value in _listed(event, "rdate"):
        begin, end = value if isinstance(value, tuple) else (value, None)
        if isinstance(end, dt.timedelta):  # a period by its duration
            end = begin + end
        if end is not None or isinstance(begin, dt.datetime):
            raise IcsError(
                f"{where}: RDATE {_text(begin, end)} is not a date: an all-day event's RDATE takes dates (VALUE=DATE)."
            )
        if not dates.in_range(begin) or not dates.in_range(begin + dt.timedelta(days=length - 1)):
            raise IcsError(f"{where}: RDATE {begin.isoformat()} is not {dates.RANGE} (with the event's {length} days).")
        added.append(begin)
    excluded = set(moved.get(_uid(event, where), ()))
    for day in _listed(event, "exdate"):
        if isinstance(day, dt.datetime):
            raise IcsError(
                f"{where}: EXDATE {day.isoformat()} is not a date: an all-day event's EXDATE takes dates (VALUE=DATE)."
            )
        excluded.add(day)
    given = set()
    for begin in itertools.chain(_rule_starts(_one(event, "rrule", where), first, where, time_zone), added):
        if begin not in excluded and begin not in given:
            given.add(begin)
            yield begin


def _text(begin, end) -> str:
    return begin.isoformat() if end is None else f"{begin.isoformat()}/{end.isoformat()}"


def _rule_starts(rule, first: dt.date, where: str, time_zone: str):
    """The first days of an event's occurrences: DTSTART alone, or its RRULE's occurrences in the
    `RECURRENCE_YEARS` from it, lazily (the caller stops at its caps). The rule is checked as a
    visit plan's: `FREQ=MINUTELY` made 28 s and 300 MB of occurrences before the cap applied, and
    `BYMONTH=2;BYMONTHDAY=30` searched to the year 9999 (7 s an event; found by an outside test)."""
    if rule is None:
        yield first
        return
    rule_text = _local_until(rule.to_ical().decode(), time_zone)
    for part in rule_text.split(";"):
        name = part.split("=", 1)[0].strip().upper()
        if name in TIME_PARTS:  # a visit plan's times of day (`rrules.validate` takes them)
            raise IcsError(
                f"{where}: RRULE: {part.strip()}: an all-day event recurs on whole dates, not at times of "
                f"day: leave out {', '.join(TIME_PARTS)}."
            )
    try:
        rrules.validate(rule_text, first, start="DTSTART")
    except ValueError as exc:
        raise IcsError(f"{where}: RRULE: {exc}") from None
    # RECURRENCE_YEARS on (a 29 February to the 28th: `replace(year=)` raised for it).
    horizon = dt.datetime.combine(first, dt.time()) + relativedelta(years=RECURRENCE_YEARS)
    for moment in rrules.wall_times(rule_text, first, horizon):
        yield moment.date()


TIME_PARTS = ("BYHOUR", "BYMINUTE", "BYSECOND")  # meaningless for whole days: refused, not ignored
_UTC_UNTIL = re.compile(r"UNTIL=(\d{8}T\d{6})Z", re.IGNORECASE)


def _local_until(rule: str, time_zone: str) -> str:
    """The rule with a UTC UNTIL as the calendar's local wall time. RFC 5545 wants a date UNTIL
    with an all-day DTSTART, but exporters (Outlook) write the UTC instant of the last day's local
    midnight (20301224T230000Z for 25 December in Amsterdam): an occurrence is in the series when
    its day begins, at the calendar's local midnight, at or before that instant."""
    match = _UTC_UNTIL.search(rule)
    if match is None:
        return rule
    try:
        instant = dt.datetime.strptime(match[1], "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)
        wall = instant.astimezone(_zone(time_zone))
    except (ValueError, OverflowError):
        return rule  # not a date-time: refused by the rule's own check
    return f"{rule[: match.start()]}UNTIL={wall:%Y%m%dT%H%M%S}{rule[match.end() :]}"
