"""GraphQL's face of the domain errors (config.errors), mapped once.

- In queries, a domain error is a GraphQL error whose `extensions` carry `code` (BAD_REQUEST,
  INVALID, CONFLICT, FORBIDDEN, NOT_FOUND) and the per-field `errors`, with REST's message. A
  missing object (another organization's id included) is NOT_FOUND "Not found.". A request
  GraphQL itself refuses before running it (a syntax error, an unknown field, a variable of the
  wrong type, the abuse limits) is BAD_REQUEST too: REST's 400 for a bad request.
- In mutations, the same failures come back as data: an `OperationError` with `kind`, `message`
  and `fields` (path + messages), a member of each mutation's result union.
- Anything else is masked as "Internal server error." and logged, like REST's JSON 500.
- Strawberry logs every error of an operation at ERROR with its traceback; the schema
  (config/graphql/schema.py) keeps a client's errors to one WARNING line, like Django's line for
  a REST 4xx.
"""

from __future__ import annotations

import enum
import logging

import strawberry
from django.core.exceptions import ObjectDoesNotExist
from graphql import GraphQLError

from config.errors import DomainError, as_domain_error

logger = logging.getLogger("api")


@strawberry.enum(description="The kind of failure; the REST status it corresponds to in brackets.")
class ErrorKind(enum.Enum):
    BAD_REQUEST = "bad_request"  # 400
    FORBIDDEN = "forbidden"  # 403
    NOT_FOUND = "not_found"  # 404
    CONFLICT = "conflict"  # 409
    INVALID = "invalid"  # 422
    RATE_LIMITED = "rate_limited"  # 429


KIND_BY_STATUS = {
    400: ErrorKind.BAD_REQUEST, 403: ErrorKind.FORBIDDEN, 404: ErrorKind.NOT_FOUND,
    405: ErrorKind.BAD_REQUEST, 409: ErrorKind.CONFLICT, 422: ErrorKind.INVALID, 429: ErrorKind.RATE_LIMITED,
}  # fmt: skip


@strawberry.type(description="The messages of one input field, by its path (`items[0].hours`, `base`).")
class FieldError:
    path: str
    messages: list[str]


@strawberry.type(description="A mutation that did not happen: the same message and field errors as REST.")
class OperationError:
    kind: ErrorKind
    message: str
    fields: list[FieldError]


def is_client_error(error: GraphQLError) -> bool:
    """The client's error, shown to it as it is (a bad document, a refused argument, the limits,
    NOT_FOUND, a domain error): not a fault of the server's, which `format_error` masks."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError | ObjectDoesNotExist):
        return True
    return as_domain_error(original) is not None


def format_error(error: GraphQLError) -> GraphQLError:
    """A query's error as the client sees it."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        if error.path is None and not (error.extensions or {}).get("code"):
            # The document's or the variables' fault, found before anything ran (graphql-core's
            # and strawberry's own errors carry no code): a client reading `extensions.code`, as
            # README says every query error has one, found none.
            return GraphQLError(error.message, error.nodes, error.source, error.positions,
                                extensions={**(error.extensions or {}), "code": "BAD_REQUEST"})  # fmt: skip
        return error
    original = as_domain_error(original) or original
    if isinstance(original, ObjectDoesNotExist):
        return GraphQLError("Not found.", error.nodes, error.source, error.positions, error.path,
                            extensions={"code": "NOT_FOUND"})  # fmt: skip
    if isinstance(original, DomainError):
        extensions = {"code": original.kind.upper()}
        if original.errors:
            extensions["errors"] = original.errors
        return GraphQLError(original.message, error.nodes, error.source, error.positions, error.path,
                            extensions=extensions)  # fmt: skip
    logger.error("unhandled GraphQL error", exc_info=original)
    return GraphQLError("Internal server error.", error.nodes, error.source, error.positions, error.path,
                        extensions={"code": "INTERNAL"})  # fmt: skip
