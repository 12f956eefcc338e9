"""Event type patterns as SQL: `*` stands for any run of characters (the live stream's `types`,
a webhook endpoint's `event_types`). Below the apps that deliver events, so each matches the
same way in the database."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import F, Lookup, Q


class TypeGlob(Lookup):
    """`type` matches a pattern (`stream.reader.parse_types`, a webhook's `event_types`; `*`: any
    run of characters, case-sensitive), as the database's own wildcard match, never a regex:
    SQLite's REGEXP is Python's `re` called per row, and `^.*.*.*…Q$` backtracked exponentially
    there (10 stars: two minutes over 320 events, found by an outside test). SQLite: GLOB, whose
    only other specials (`?`, `[`) a pattern cannot contain. PostgreSQL: LIKE, `_` escaped (`%`
    and `\\` cannot occur). Both engines match `*`/`%` by a scan that gives up as soon as a later
    wildcard runs out of text (no backtracking into earlier ones), so a pattern costs about its
    length times the type's, both at most 64."""

    lookup_name = "type_glob"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        if connection.vendor == "sqlite":
            return f"{lhs} GLOB %s", [*lhs_params, self.rhs]
        return f"{lhs} LIKE %s", [*lhs_params, self.rhs.replace("_", "\\_").replace("*", "%")]


def types_q(patterns: Iterable[str]) -> Q:
    """The SQL condition for type globs: exact names in one IN, wildcards as `TypeGlob`s."""
    exact = [p for p in patterns if "*" not in p]
    q = Q(type__in=exact) if exact else Q(pk__in=[])
    for pattern in patterns:
        if "*" in pattern:
            q |= Q(TypeGlob(F("type"), pattern))
    return q
