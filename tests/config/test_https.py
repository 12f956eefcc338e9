"""HTTPS behind the TLS-terminating proxy (found by an outside sweep): `manage.py check --deploy`
can be cleared from the environment, the cookies are Secure outside DEBUG, and X-Forwarded-Proto
is trusted only behind NUM_PROXIES trusted proxies."""

import os
import runpy
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from contracts.models import Contract
from events.models import Event
from signing.models import SignatureRequest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {  # the README's production environment
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "sla.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://sla.example.com",
}
HTTPS_CHECKS = ["security.W004", "security.W008", "security.W012", "security.W016"]


def check_deploy(extra: dict) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "DEBUG" and not k.startswith(("SECURE_", "SESSION_"))}
    environment.pop("CSRF_COOKIE_SECURE", None)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**environment, **PRODUCTION, **extra},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_the_https_settings():
    result = check_deploy(
        {
            "SECURE_HSTS_SECONDS": "31536000",
            "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
            "SECURE_HSTS_PRELOAD": "true",
            "SECURE_SSL_REDIRECT": "true",
        }
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_cookies_are_secure_by_default_and_hsts_and_redirect_are_asked_for():
    result = check_deploy({})
    found = [check for check in HTTPS_CHECKS if check in result.stderr + result.stdout]
    # W004 (HSTS) and W008 (the redirect) are the deployment's choice; the cookies need none.
    assert found == ["security.W004", "security.W008"], result.stderr


def settings_with(monkeypatch, **environment) -> dict:
    """config/settings.py as a process started with this environment reads it."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "config" / "settings.py"))


@pytest.mark.parametrize(("proxies", "scheme"), [("1", "https"), ("0", "http")])
def test_x_forwarded_proto_is_trusted_only_behind_a_proxy(demo, monkeypatch, proxies, scheme):
    header = settings_with(monkeypatch, NUM_PROXIES=proxies)["SECURE_PROXY_SSL_HEADER"]
    # What the proxy passes on: the client's Host, and the scheme the client spoke.
    proxied = {"HTTP_HOST": "testserver", "HTTP_X_FORWARDED_PROTO": "https"}
    with override_settings(SECURE_PROXY_SSL_HEADER=header):
        listed = demo.get("/api/v1/counterparties?per_page=1", **proxied)
        assert listed.status_code == 200
        assert f"<{scheme}://testserver/api/v1/counterparties?" in listed["Link"]
        made = demo.post("/api/v1/counterparties", {"name": "Proxy test", "kind": "customer"}, **proxied)
        assert made.status_code == 201, made.json()
        assert made["Location"].startswith(f"{scheme}://testserver/api/v1/counterparties/")


def test_make_run_and_debug_keep_plain_http_cookies(monkeypatch):
    assert settings_with(monkeypatch, DEBUG="true")["SESSION_COOKIE_SECURE"] is False
    ran = settings_with(monkeypatch, DEBUG="false", SESSION_COOKIE_SECURE="false", CSRF_COOKIE_SECURE="false")
    assert (ran["SESSION_COOKIE_SECURE"], ran["CSRF_COOKIE_SECURE"]) == (False, False)
    assert "SESSION_COOKIE_SECURE=$${SESSION_COOKIE_SECURE:-false}" in (ROOT / "Makefile").read_text()


@pytest.mark.django_db
def test_the_health_check_is_not_redirected(client, monkeypatch):
    exempt = settings_with(monkeypatch, SECURE_SSL_REDIRECT="true")["SECURE_REDIRECT_EXEMPT"]
    with override_settings(SECURE_SSL_REDIRECT=True, SECURE_REDIRECT_EXEMPT=exempt):
        assert client.get("/healthz").status_code == 200  # the probes speak plain http
        moved = client.get("/api/v1/counterparties")
        assert moved.status_code == 301 and moved["Location"] == "https://testserver/api/v1/counterparties"


@pytest.mark.parametrize(("proxies", "scheme"), [("1", "https"), ("0", "http")])
def test_a_graphql_mutation_keeps_the_scheme_the_client_spoke(demo, monkeypatch, proxies, scheme):
    """The REST call behind a mutation forwards X-Forwarded-Proto: a signature request made over
    GraphQL behind the TLS proxy mails an https link, as one made over REST does."""
    header = settings_with(monkeypatch, NUM_PROXIES=proxies)["SECURE_PROXY_SSL_HEADER"]
    contract = Contract.objects.get(reference="DEMO-MU-001")
    SignatureRequest.objects.filter(contract=contract).delete()
    mutation = (
        f'mutation {{ createSignatureRequest(contractId: {contract.pk}, input: {{name: "Ann", '
        f'email: "ann@example.com"}}) {{ __typename }} }}'
    )
    proxied = {"HTTP_HOST": "testserver", "HTTP_X_FORWARDED_PROTO": "https"}
    with override_settings(SECURE_PROXY_SSL_HEADER=header):
        made = demo.post("/api/graphql", {"query": mutation}, format="json", **proxied)
    assert made.json()["data"]["createSignatureRequest"]["__typename"] == "SignatureRequest", made.json()
    event = Event.objects.filter(type="contract.signature_requested").latest("id")
    assert event.payload["link_base"] == f"{scheme}://testserver/"
