"""Filters of the approval page."""

from django import template

register = template.Library()

WEEKDAYS = {1: "Mon", 2: "Tue", 3: "Wed", 4: "Thu", 5: "Fri", 6: "Sat", 7: "Sun"}


@register.filter
def weekly_hours(hours: list) -> str:
    """A calendar's weekly hours for a reader: `Mon 08:00-17:00; Tue 08:00-17:00` (None when empty)."""
    days = (f"{WEEKDAYS.get(item['weekday'], item['weekday'])} {item['start']}-{item['end']}" for item in hours)
    return "; ".join(days) or "None"
