"""The error envelope (DESIGN §5): every API error is `{"message": ..., "errors": {...}}`.

Status codes: 400 bad parameters or malformed JSON, 401, 403, 404, 405, 409 illegal transition,
conflicting write or a stored time zone tzdata lacks, 422 validation failed, 429 with Retry-After.
Anything unexpected is a JSON 500, logged with its traceback, never an HTML page.
"""

from __future__ import annotations

import logging
import math

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, OperationalError, transaction
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from config.errors import (
    BadRequest,
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    Unprocessable,
    as_domain_error,
)

logger = logging.getLogger("api")


# The error classes live in the domain (config.errors, no REST import); the REST face keeps
# exporting them under the names it has always used, and maps each kind to its status below.
APIError = DomainError

STATUS_BY_KIND = {
    BadRequest.kind: status.HTTP_400_BAD_REQUEST,
    Invalid.kind: 422,
    Conflict.kind: status.HTTP_409_CONFLICT,
    Forbidden.kind: status.HTTP_403_FORBIDDEN,
    NotFound.kind: status.HTTP_404_NOT_FOUND,
}

__all__ = [
    "APIError",
    "BadRequest",
    "Conflict",
    "DomainError",
    "Forbidden",
    "Invalid",
    "NotFound",
    "Unprocessable",
    "exception_handler",
]


CONFLICTING_WRITE = "Conflicting write: the record was changed or created concurrently. Retry."
# deadlock_detected, serialization_failure
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


def flatten_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail to `{"field.sub[0]": ["message"]}`."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key != "non_field_errors" else "base"
            path = f"{prefix}.{name}" if prefix else str(name)
            if isinstance(name, int):  # DRF keys a list item's errors by its index
                path = f"{prefix}[{name}]"
            elif name == "base" and prefix:  # a nested object's own errors are the object's: `holidays[0]`
                path = prefix
            for k, v in flatten_errors(value, path).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            out.setdefault(prefix or "base", []).extend(str(item) for item in detail)
        else:
            for index, item in enumerate(detail):
                if item in ({}, []):
                    continue
                for k, v in flatten_errors(item, f"{prefix}[{index}]").items():
                    out.setdefault(k, []).extend(v)
    else:
        out.setdefault(prefix or "base", []).append(str(detail))
    return out


def _envelope(message: str, errors: dict | None = None) -> dict:
    body: dict = {"message": message}
    if errors:
        body["errors"] = errors
    return body


def _source_id_taken(exc: IntegrityError, context) -> Conflict | None:
    """A `*_unique_source_id` violation (a concurrent create won): the same 409 naming the existing
    row as the serializer's check gives when the other row was already there."""
    constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) or ""
    view, request = context.get("view"), context.get("request")
    if not constraint.endswith("_unique_source_id") or view is None or request is None:
        return None
    from config.api.serializers import source_id_conflict  # the serializers import this module

    model = view.get_serializer_class().Meta.model
    data = request.data if isinstance(request.data, dict) else {}
    pk = view.kwargs.get(view.lookup_url_kwarg or view.lookup_field)
    stored = model.objects.filter(pk=pk).values("source", "source_id").first() if pk else None
    stored = stored or {"source": "", "source_id": ""}
    source = data.get("source", stored["source"])
    source_id = data.get("sourceID", stored["source_id"])
    return source_id_conflict(model, request.auth.organization, source, source_id, exclude=pk)


def _valid_now(context) -> Exception | None:
    """The serializer's answer now, after the rollback, for a create or an edit that a constraint
    stopped although its checks had passed: a concurrent write won (the same unique reference or
    name; the row an id names deleted). The 422 naming the field (the row that has the value, the id
    that does not exist) is what the same request gets a moment later, where "Retry" could only
    lead there. None when it passes now (the generic 409 stays)."""
    view, request = context.get("view"), context.get("request")
    action = getattr(view, "action", None)
    if action not in ("create", "update", "partial_update") or request is None:
        return None
    if transaction.get_connection().needs_rollback:
        return None  # the failed transaction is still open (no savepoint of its own): nothing can be read
    try:
        instance = None if action == "create" else view.get_object()
        view.get_serializer(instance, data=request.data, partial=action == "partial_update").is_valid(
            raise_exception=True
        )
    except Http404:
        return exceptions.NotFound()
    except (exceptions.ValidationError, DomainError) as exc:
        return exc
    return None


def exception_handler(exc, context):
    headers = {}
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"base": exc.messages}
        exc = Unprocessable(errors=errors)
    elif isinstance(exc, IntegrityError):
        # A unique constraint lost a race with a concurrent writer: the write did not happen.
        logger.info("integrity error mapped to 409: %s", exc)
        exc = _source_id_taken(exc, context) or _valid_now(context) or Conflict(CONFLICTING_WRITE)
    elif isinstance(exc, OperationalError) and getattr(exc.__cause__, "sqlstate", None) in RETRYABLE_SQLSTATES:
        # PostgreSQL chose this transaction to end a deadlock (or a serialization failure): it was
        # rolled back whole, so the client may simply send the request again.
        logger.warning("retryable database error mapped to 409: %s", exc)
        exc = Conflict(CONFLICTING_WRITE)
    else:
        exc = as_domain_error(exc) or exc

    if isinstance(exc, DomainError):
        body = _envelope(exc.message, exc.errors)
        status_code = STATUS_BY_KIND.get(exc.kind, status.HTTP_400_BAD_REQUEST)
    elif isinstance(exc, exceptions.ValidationError):
        status_code = 422
        body = _envelope("Validation failed.", flatten_errors(exc.detail))
    elif isinstance(exc, exceptions.ParseError):
        status_code = 400
        body = _envelope(f"Malformed request body: {exc.detail}")
    elif isinstance(exc, exceptions.APIException):
        status_code = exc.status_code
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None) is not None:
            # The seconds the message says (DRF's Throttled rounds its wait up once): `int(wait) + 1`
            # said 52 beside "Expected available in 51 seconds."
            headers["Retry-After"] = str(math.ceil(exc.wait))
        detail = exc.detail
        if isinstance(detail, dict):
            message = str(detail.get("detail", detail.get("message", exc.default_detail)))
        elif isinstance(detail, list):
            message = " ".join(str(d) for d in detail)
        else:
            message = str(detail)
        body = _envelope(message)
    else:
        logger.exception("unhandled API error", exc_info=exc)
        status_code = 500
        body = _envelope("Internal server error.")

    set_rollback()
    return Response(body, status=status_code, headers=headers)
