import datetime as dt

from slas.holidays import dutch_public_holidays, easter_sunday, uk_bank_holidays


def test_easter_sundays():
    assert [easter_sunday(y) for y in (2024, 2025, 2026, 2027, 2038)] == [
        dt.date(2024, 3, 31),
        dt.date(2025, 4, 20),
        dt.date(2026, 4, 5),
        dt.date(2027, 3, 28),
        dt.date(2038, 4, 25),
    ]


def test_uk_bank_holidays_with_weekend_substitutes():
    assert [day for day, _ in uk_bank_holidays(2026)] == [
        dt.date(2026, 1, 1),
        dt.date(2026, 4, 3),
        dt.date(2026, 4, 6),
        dt.date(2026, 5, 4),
        dt.date(2026, 5, 25),
        dt.date(2026, 8, 31),
        dt.date(2026, 12, 25),
        dt.date(2026, 12, 28),  # Boxing Day is a Saturday
    ]
    days = [day for day, _ in uk_bank_holidays(2027)]
    assert days[0] == dt.date(2027, 1, 1)
    assert days[-2:] == [dt.date(2027, 12, 27), dt.date(2027, 12, 28)]  # both fall on the weekend
    assert [day for day, _ in uk_bank_holidays(2022)][0] == dt.date(2022, 1, 3)  # New Year on a Saturday


def test_dutch_public_holidays():
    days = dict(dutch_public_holidays(2026))
    assert {name: day for day, name in days.items()}["Koningsdag"] == dt.date(2026, 4, 27)
    assert dt.date(2026, 5, 14) in days  # Hemelvaartsdag
    assert dict((name, day) for day, name in dutch_public_holidays(2027))["Koningsdag"] == dt.date(2027, 4, 27)
    assert dict((name, day) for day, name in dutch_public_holidays(2025))["Koningsdag"] == dt.date(
        2025, 4, 26
    )  # the 27th is a Sunday
