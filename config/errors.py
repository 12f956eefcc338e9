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


# The name the services have used since the first issue (422 Unprocessable Entity).
Unprocessable = Invalid


def as_command_error(exc: DomainError):
    """A management command's face: the message and a distinct exit code per kind."""
    from django.core.management.base import CommandError

    detail = exc.message
    if exc.errors:
        detail += " " + "; ".join(f"{field}: {' '.join(map(str, msgs))}" for field, msgs in exc.errors.items())
    return CommandError(detail, returncode=exc.exit_code)
