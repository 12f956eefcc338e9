"""Fixtures of the auth tests: key pairs, the external issuer's settings, a JWKS server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings
from django.test import override_settings
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tenancy.auth import _jwks_client

from .jwt_helpers import AUDIENCE, ISSUER


@pytest.fixture(scope="session")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def other_rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def external_issuer():
    """`external_issuer(PUBLIC_KEY=pem, ...)` configures settings.EXTERNAL_JWT (issuer and
    audience set by default) until the end of the test."""
    applied = []

    def configure(**config):
        override = override_settings(
            EXTERNAL_JWT={**settings.EXTERNAL_JWT, "ISSUER": ISSUER, "AUDIENCE": AUDIENCE, **config}
        )
        override.enable()
        applied.append(override)

    yield configure
    for override in reversed(applied):
        override.disable()


def _jwk(public_key, algorithm_class, kid: str, alg: str) -> dict:
    return {**algorithm_class.to_jwk(public_key, as_dict=True), "kid": kid, "alg": alg, "use": "sig"}


@pytest.fixture
def jwks_server(rsa_key, ec_key):
    """A real HTTP server on 127.0.0.1 (a free port) serving the JWKS of `rsa_key` (kid rsa-1)
    and `ec_key` (kid ec-1) at /jwks.json, and a non-JSON page at /broken; `hits` lists the
    paths fetched."""
    jwks = json.dumps(
        {
            "keys": [
                _jwk(rsa_key.public_key(), RSAAlgorithm, "rsa-1", "RS256"),
                _jwk(ec_key.public_key(), ECAlgorithm, "ec-1", "ES256"),
            ]
        }
    ).encode()
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            if self.path == "/jwks.json":
                body, content_type = jwks, "application/json"
            else:
                body, content_type = b"<html>Sign in</html>", "text/html"
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _jwks_client.cache_clear()
    base = f"http://127.0.0.1:{server.server_port}"
    yield SimpleNamespace(url=f"{base}/jwks.json", broken_url=f"{base}/broken", hits=hits)
    _jwks_client.cache_clear()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
