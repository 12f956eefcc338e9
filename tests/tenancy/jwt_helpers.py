"""Building real JWTs for the auth tests: the service's own HS256 tokens, hand-crafted hostile
ones, and tokens of an external OAuth2 issuer signed with keys generated in the tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from rest_framework.test import APIClient

from tenancy.auth import issue_tokens

ISSUER = "https://login.example.com/"
AUDIENCE = "sla-api"


def signing_key() -> str:
    return settings.SIMPLE_JWT["SIGNING_KEY"]


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def decode_local(token: str) -> dict:
    """The claims of a token this service issued (signature checked with the service's key)."""
    return jwt.decode(token, signing_key(), algorithms=["HS256"])


def local_claims(membership, kind: str = "access") -> dict:
    """The claims of a real token issued for `membership`, to alter and sign again."""
    return decode_local(issue_tokens(membership)[kind])


def sign_local(claims: dict, key: str | None = None, algorithm: str = "HS256") -> str:
    """Claims signed the way the service signs (or with another key or algorithm)."""
    return jwt.encode(claims, key if key is not None else signing_key(), algorithm=algorithm)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def craft(header: dict, payload: dict, secret: bytes | None = None, signature: bytes = b"") -> str:
    """A token assembled by hand: HMAC-SHA256 signed with `secret` (any bytes, a PEM too), or
    carrying `signature` as is. PyJWT itself refuses to build such tokens."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    if secret is not None:
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def public_pem(private_key) -> str:
    return private_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def external_claims(**overrides) -> dict:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "auth0|alice",
        "iat": now,
        "exp": now + 300,
        "org": "acme",
        "role": "operator",
        **overrides,
    }


def external_token(
    private_key, algorithm: str = "RS256", claims: dict | None = None, drop: tuple = (), kid: str | None = None
) -> str:
    """A token of the external issuer: default claims, updated with `claims`, minus `drop`."""
    payload = {**external_claims(), **(claims or {})}
    for name in drop:
        payload.pop(name)
    headers = {"kid": kid} if kid else None
    return jwt.encode(payload, private_key, algorithm=algorithm, headers=headers)


ME = "/api/v1/me"
MEMBERS = "/api/v1/members"


def assert_401(response) -> str:
    assert response.status_code == 401, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    body = response.json()
    assert set(body) == {"message"} and body["message"], body
    return body["message"]
