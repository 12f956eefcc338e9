"""One-line text (a name, a reference, a holiday's name): no control character (pure: no Django).

`config.api.serializers.single_line` refuses such text in REST and GraphQL input; the calendar
import (`slas.ical`) reads names from files with the same rule.
"""

from __future__ import annotations

import re
import unicodedata

# Control characters that are whitespace (TAB, LF, VT, FF, CR, FS to US, NEL): a line break in a
# name read from a file is layout, not content.
_WHITESPACE_CONTROLS = re.compile(r"[\t\n\x0b\x0c\r\x1c-\x1f\x85]+")


def control_character(value: str) -> str | None:
    """The first control character (Unicode category Cc, C1 included) in `value`, or None."""
    return next((char for char in value if unicodedata.category(char) == "Cc"), None)


def control_message(char: str) -> str:
    return f"Must be one line of text without control characters (found U+{ord(char):04X})."


def flattened(value: str) -> str:
    """`value` with each run of whitespace control characters (line breaks, tabs) as one space."""
    return _WHITESPACE_CONTROLS.sub(" ", value).strip()
