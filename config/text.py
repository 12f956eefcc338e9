"""One-line text (a name, a reference, a holiday's name): no control character (pure: no Django).

`config.api.serializers.single_line` refuses such text in REST and GraphQL input; the calendar
import (`slas.ical`) reads names from files with the same rule.
"""

from __future__ import annotations

import re
import unicodedata

# Control characters that are whitespace (TAB, LF, VT, FF, CR, FS to US, NEL, and the line and
# paragraph separators): a line break in a name read from a file is layout, not content.
_WHITESPACE_CONTROLS = re.compile(r"[\t\n\x0b\x0c\r\x1c-\x1f\x85\u2028\u2029]+")

# Besides category Cc: the line and paragraph separators (Zl, Zp: line breaks to every Unicode
# reader) and the explicit bidirectional embeddings, overrides and isolates (U+202A-U+202E,
# U+2066-U+2069), which make a name display in another order than it is stored ("Trojan Source",
# CVE-2021-42574): a reference with U+202E showed reversed wherever it is displayed (both found
# by an outside sweep). The implicit marks (LRM, RLM, ALM) stay: right-to-left names need them.
_ALSO_CONTROLS = frozenset("\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def control_character(value: str) -> str | None:
    """The first control character in `value` (Unicode category Cc, C1 included; a line or paragraph
    separator; an explicit bidirectional formatting character), or None."""
    return next((char for char in value if char in _ALSO_CONTROLS or unicodedata.category(char) == "Cc"), None)


def control_message(char: str) -> str:
    return f"Must be one line of text without control characters (found U+{ord(char):04X})."


def flattened(value: str) -> str:
    """`value` with each run of whitespace control characters (line breaks, tabs) as one space."""
    return _WHITESPACE_CONTROLS.sub(" ", value).strip()
