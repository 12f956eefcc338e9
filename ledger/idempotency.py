"""`Idempotency-Key` on POST, for any collection whose create makes one row (ledger entries,
billing exports, ...): the same key with the same body returns the original object and status;
with a different body it is a 422. A retrying client never creates twice, even when its retries
arrive at once. A request that failed (4xx) is not remembered: its retry runs again.

Keys are the organization's, not the user's (a client's retries may come with another member's
token), but a replay answers only a caller who may make the request: the body is validated and
the view's `check_create` run first, so a refused caller gets the 403 it gets without a key."""

from __future__ import annotations

import hashlib
import json

from django.db import IntegrityError, transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from config.api.exceptions import APIError, BadRequest, Unprocessable

from .models import IdempotencyKey

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description=(
        "At most 255 characters, unique per organization. A retry with the same key and body returns "
        "the original resource and status; the same key with another body is a 422. A caller who may not "
        "make the request gets its 403, key or not."
    ),
)


def _fingerprint(request) -> str:
    body = json.dumps(request.data, sort_keys=True, default=str)
    return hashlib.sha256(f"{request.path}\n{body}".encode()).hexdigest()


class IdempotentCreateMixin:
    # Put before CreateMixin; `idempotency_resource` names the collection in the stored key.

    idempotency_resource: str

    @extend_schema(parameters=[IDEMPOTENCY_HEADER])
    def create(self, request, *args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if not key:
            return super().create(request, *args, **kwargs)
        if len(key) > 255:
            raise BadRequest(
                "Idempotency-Key is at most 255 characters.", {"Idempotency-Key": ["At most 255 characters."]}
            )
        fingerprint = _fingerprint(request)
        # Validated and the caller's right to ask checked before anything is replayed: a key is the
        # organization's, and another member's key must not answer 201 to a request that without
        # it is a 403 (an operator replaying a manager's adjustment).
        data = self.validated_create(request)
        try:
            with transaction.atomic():
                replayed = self._replay(key, fingerprint)
                if replayed is not None:
                    return replayed
                response = self.create_from(data)
                IdempotencyKey.objects.create(
                    organization=self.organization,
                    key=key,
                    fingerprint=fingerprint,
                    status_code=response.status_code,
                    resource=self.idempotency_resource,
                    object_id=self._responded_pk,
                )
                return response
        except (IntegrityError, APIError):
            # A concurrent request with the same key may have won (its write then took what this
            # one wanted, or its key was inserted first): answer as it did.
            replayed = self._replay(key, fingerprint)
            if replayed is None:
                raise
            return replayed

    def respond(self, instance, *args, **kwargs):
        self._responded_pk = instance.pk  # what the stored key points at
        return super().respond(instance, *args, **kwargs)

    def _replay(self, key: str, fingerprint: str) -> Response | None:
        record = IdempotencyKey.objects.filter(organization=self.organization, key=key).first()
        if record is None:
            return None
        if record.resource != self.idempotency_resource:
            # Keys are the organization's across resources: name no object of another resource,
            # which the caller may not read (an operator's ledger entry against a manager's export).
            raise Unprocessable(
                "This Idempotency-Key was used for another request.",
                {"Idempotency-Key": ["Already used for another resource; send a new key."]},
            )
        if record.fingerprint != fingerprint:
            raise Unprocessable(
                "This Idempotency-Key was used with a different request body.",
                {"Idempotency-Key": [f"Already used for {record.resource} {record.object_id}."]},
            )
        instance = self.get_queryset().get(pk=record.object_id)
        return self.respond(instance, record.status_code, {"Location": self.detail_url(instance)})
