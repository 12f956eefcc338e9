"""Domain errors: what services and selectors raise, with no web framework attached.

DESIGN §3: services and selectors raise plain domain errors, and each face maps them once:

- REST (`config.api.exceptions.exception_handler`): the `{"message", "errors"}` envelope with
  the status named by `kind` (`invalid` 422, `conflict` 409, `forbidden` 403, `not_found` 404,
  `bad_request` 400);
- GraphQL (`config.graphql.errors`): a typed error with the same message and field paths;
- the admin: a form error or a message banner (`exc.message`, `exc.errors`);
- management commands: `DomainError.exit_code` through `CommandError` (`as_command_error`).

This module imports nothing from Django REST framework (a test keeps it so).
"""

from __future__ import annotations

from zoneinfo import ZoneInfoNotFoundError


class DomainError(Exception):
    """A rule of the domain refused the operation: a message and optional per-field errors.

    `errors` maps a field path (`contract_id`, `items[0].hours`, `base`) to its messages.
    """

    kind = "error"
    default_message = "The operation was refused."
    exit_code = 1

    def __init__(self, message: str | None = None, errors: dict | None = None):
        self.message = str(message or self.default_message)
        self.errors = errors
        super().__init__(self.message)

    def __str__(self) -> str:  # the message, as every face shows it
        return self.message


class BadRequest(DomainError):
    """A malformed parameter (an unknown filter, a bad cursor): the caller's request is wrong."""

    kind = "bad_request"
    default_message = "Bad request."
    exit_code = 2


class Invalid(DomainError):
    """Validation failed: the input is well formed but breaks a rule (per-field errors)."""

    kind = "invalid"
    default_message = "Validation failed."
    exit_code = 2


class Conflict(DomainError):
    """An illegal transition or a write that conflicts with the current state."""

    kind = "conflict"
    default_message = "Conflict."
    exit_code = 3


class Forbidden(DomainError):
    """The caller may not do this (a role, the four-eyes rule)."""

    kind = "forbidden"
    default_message = "You may not do this."
    exit_code = 4


class NotFound(DomainError):
    """No such object in the caller's organization (another organization's object included)."""

    kind = "not_found"
    default_message = "Not found."
    exit_code = 5


class UnknownStoredTimeZone(Conflict):
    """A stored calendar's or contract's time zone that this server's time zone database lacks (a
    tzdata upgrade dropped or renamed it): nothing that needs it can be computed until an admin sets
    a known zone. Every face answers it as a conflict that says so, not as a server fault."""

    def __init__(self, zone: str, holder: str = "A calendar or contract of this request"):
        self.zone = zone
        super().__init__(
            f"{holder} has an unknown time zone {zone!r}: this server's time zone database (tzdata) does"
            " not have it. An admin must set it to a known zone."
        )


def as_domain_error(exc: BaseException) -> DomainError | None:
    """`exc` as the domain error it stands for, when it is one raised by a library: a stored time
    zone missing from tzdata (`zoneinfo` raises it wherever the zone is first read)."""
    if isinstance(exc, DomainError):
        return exc
    if isinstance(exc, ZoneInfoNotFoundError):
        zone = str(exc.args[0]) if exc.args else ""
        return UnknownStoredTimeZone(zone.removeprefix("No time zone found with key "))
    return None


# The name the services have used since the first issue (422 Unprocessable Entity).
Unprocessable = Invalid


def as_command_error(exc: DomainError):
    """A management command's face: the message and a distinct exit code per kind."""
    from django.core.management.base import CommandError

    detail = exc.message
    if exc.errors:
        detail += " " + "; ".join(f"{field}: {' '.join(map(str, msgs))}" for field, msgs in exc.errors.items())
    return CommandError(detail, returncode=exc.exit_code)
