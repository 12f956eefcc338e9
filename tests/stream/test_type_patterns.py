"""The stream's `types` patterns (`stream.reader.parse_types`, `types_q`): globs with `*` only,
matched by the database's own wildcard match (SQLite GLOB, PostgreSQL LIKE), never a regex. An
outside test found `types=************Q` (the regex `^.*.*…Q$`) backtracking exponentially in
SQLite's REGEXP (Python's `re` per row): two minutes for 10 stars over 320 events."""

from __future__ import annotations

import fnmatch

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.models import Event
from stream.reader import StreamInputError, parse_types, types_q
from tests.events.helpers import emit

TYPES = [
    "breach.detected",
    "breach.waived",
    "contract.state_changed",
    "contract.created",
    "work_order.created",
    "workXorder.created",
    "Breach.detected",
    "a" * 64,
    "a" * 63 + "Q",
]
PATTERNS = [
    "*",
    "breach.*",
    "*.created",
    "work_order.*",  # `_` is a literal, not LIKE's any-one-character
    "*order*",
    "*_*",
    "contract.*_changed",
    "*a*a*a*Q",
    "Breach.*",  # case-sensitive, as the regex was (SQLite's LIKE is not: hence GLOB there)
    "*detected*",
    "b*d*d",
]


def test_runs_of_stars_are_one_star():
    assert parse_types(["************Q", "breach.**", "breach.*"]) == ("*Q", "breach.*")
    assert parse_types("**,*") == ("*",)


def test_more_wildcards_than_the_cap_are_refused_naming_it():
    assert parse_types(["*a*a*a*Q"]) == ("*a*a*a*Q",)  # 4: allowed
    with pytest.raises(StreamInputError) as refused:
        parse_types(["*a*a*a*a*a*Q"])
    (message,) = refused.value.errors["types"]
    assert "At most 4 wildcards" in message and "'*a*a*a*a*a*Q'" in message


@pytest.mark.parametrize("pattern", ["contract.*\n", " contract.*", "contract.*\r\n", ""])
def test_a_pattern_with_a_line_break_or_space_is_refused(pattern):
    """Found by a regression sweep: `["contract.*\n"]` was accepted (the check's `$` matched
    before the newline) and then matched nothing."""
    with pytest.raises(StreamInputError):
        parse_types([pattern, "breach.*"])


@pytest.mark.django_db
def test_globs_match_as_fnmatch_does(org):
    """The same matches as the webhooks' `fnmatch.fnmatchcase` of the same patterns."""
    for kind in TYPES:
        emit(org, kind)
    for pattern in PATTERNS:
        (pattern,) = parse_types([pattern])
        found = sorted(Event.objects.filter(types_q([pattern])).values_list("type", flat=True))
        assert found == sorted(t for t in TYPES if fnmatch.fnmatchcase(t, pattern)), pattern


@pytest.mark.django_db
def test_no_regex_reaches_the_database(org):
    """SQLite runs REGEXP as Python's `re` over every row; the globs are GLOB/LIKE instead."""
    emit(org, "breach.detected")
    with CaptureQueriesContext(connection) as queries:
        list(Event.objects.filter(types_q(parse_types(["*a*a*a*Q", "breach.*", "contract.created"]))))
    (sql,) = [q["sql"] for q in queries.captured_queries]
    assert "REGEXP" not in sql.upper() and " ~ " not in sql
    assert ("GLOB" if connection.vendor == "sqlite" else "LIKE") in sql.upper()
