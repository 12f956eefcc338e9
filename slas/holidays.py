"""Public holidays for calendars (pure Python): the UK's bank holidays (England and Wales)
and the Dutch public holidays, both computed from Easter."""

import datetime as dt


def easter_sunday(year: int) -> dt.date:
    """Anonymous Gregorian algorithm."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return dt.date(year, month, day + 1)


def _monday_on_or_after(day: dt.date) -> dt.date:
    return day + dt.timedelta(days=(7 - day.weekday()) % 7)


def _last_monday(year: int, month: int) -> dt.date:
    last = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
    return last - dt.timedelta(days=last.weekday())


def uk_bank_holidays(year: int) -> list[tuple[dt.date, str]]:
    """England and Wales bank holidays, with weekend substitutes."""
    easter = easter_sunday(year)
    new_year = dt.date(year, 1, 1)
    if new_year.weekday() >= 5:
        new_year = _monday_on_or_after(new_year)
    christmas = dt.date(year, 12, 25)
    boxing = dt.date(year, 12, 26)
    if christmas.weekday() >= 5:  # Saturday or Sunday: substitutes on Monday and Tuesday
        christmas, boxing = _monday_on_or_after(christmas), _monday_on_or_after(christmas) + dt.timedelta(days=1)
    elif boxing.weekday() >= 5:
        boxing = _monday_on_or_after(boxing)
    return [
        (new_year, "New Year's Day"),
        (easter - dt.timedelta(days=2), "Good Friday"),
        (easter + dt.timedelta(days=1), "Easter Monday"),
        (_monday_on_or_after(dt.date(year, 5, 1)), "Early May bank holiday"),
        (_last_monday(year, 5), "Spring bank holiday"),
        (_last_monday(year, 8), "Summer bank holiday"),
        (christmas, "Christmas Day"),
        (boxing, "Boxing Day"),
    ]


def dutch_public_holidays(year: int) -> list[tuple[dt.date, str]]:
    """The Dutch public holidays (Koningsdag moves to the 26th when the 27th is a Sunday)."""
    easter = easter_sunday(year)
    kings_day = dt.date(year, 4, 27)
    if kings_day.isoweekday() == 7:
        kings_day = dt.date(year, 4, 26)
    return [
        (dt.date(year, 1, 1), "Nieuwjaarsdag"),
        (easter - dt.timedelta(days=2), "Goede Vrijdag"),
        (easter, "Eerste Paasdag"),
        (easter + dt.timedelta(days=1), "Tweede Paasdag"),
        (kings_day, "Koningsdag"),
        (dt.date(year, 5, 5), "Bevrijdingsdag"),
        (easter + dt.timedelta(days=39), "Hemelvaartsdag"),
        (easter + dt.timedelta(days=49), "Eerste Pinksterdag"),
        (easter + dt.timedelta(days=50), "Tweede Pinksterdag"),
        (dt.date(year, 12, 25), "Eerste Kerstdag"),
        (dt.date(year, 12, 26), "Tweede Kerstdag"),
    ]
