"""A URL longer than MAX_URL_BYTES is a JSON 414 (issue 8), through Django's test client and
through gunicorn started as in production (its config, gunicorn.conf.py, from the repository's
root): gunicorn's default request-line limit (4094 bytes) used to answer such URLs with its own
HTML page before Django ran."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from bench.list_counterparties import free_port, stop, wait_for_health

ROOT = Path(settings.BASE_DIR)
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def url_of(length: int, path: str = "/api/v1/counterparties") -> str:
    """A URL of exactly `length` bytes: the path and one long query parameter."""
    prefix = f"{path}?name="
    return prefix + "a" * (length - len(prefix))


def assert_414(status: int, content_type: str, body: bytes, limit: int) -> None:
    assert status == 414, body[:200]
    assert content_type.startswith("application/json"), content_type
    assert f"at most {limit} bytes" in body.decode() and b"MAX_URL_BYTES" in body


class TestThroughDjango:
    def test_a_url_over_the_bound_is_414_before_authentication(self, db):
        response = Client().get(url_of(settings.MAX_URL_BYTES + 1))
        assert_414(response.status_code, response["Content-Type"], response.content, settings.MAX_URL_BYTES)
        assert response.json()["errors"]["base"]

    def test_a_url_at_the_bound_is_served(self, db):
        response = Client().get(url_of(settings.MAX_URL_BYTES))
        assert response.status_code == 401  # no token: the URL itself was accepted

    def test_the_bound_is_a_setting_and_counts_percent_encoded_bytes(self, db, settings):
        settings.MAX_URL_BYTES = 300
        # 100 "é" are 600 bytes once percent-encoded in the path, though 100 characters.
        response = Client().get("/api/v1/" + "é" * 100)
        assert_414(response.status_code, response["Content-Type"], response.content, 300)

    def test_admin_pages_and_every_method_too(self, db):
        long = url_of(settings.MAX_URL_BYTES + 10, "/admin/contracts/contract/")
        assert Client().get(long).status_code == 414
        api = url_of(settings.MAX_URL_BYTES + 10)
        for method in ("post", "put", "patch", "delete", "options"):
            response = getattr(Client(), method)(api)
            assert_414(response.status_code, response["Content-Type"], response.content, settings.MAX_URL_BYTES)


def request(port: int, url: str) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", url)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        conn.close()


def test_gunicorn_with_its_committed_config_answers_json_414(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",  # /healthz only runs SELECT 1
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    env.pop("MAX_URL_BYTES", None)
    port = free_port()
    # No -c: gunicorn reads ./gunicorn.conf.py from the working directory, as in production.
    server = subprocess.Popen(
        [GUNICORN, "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_health(server, port)
        limit = settings.MAX_URL_BYTES
        status, _, body = request(port, url_of(limit))
        assert status == 401, body[:200]  # the URL at the bound reaches the API
        assert limit > 4094 + 100  # the default bound lies past gunicorn's default line limit
        for length in (limit + 1, 8150):
            assert_414(*request(port, url_of(length)), limit)
    finally:
        stop(server)


def test_gunicorn_config_refuses_a_url_bound_above_its_line_limit():
    env = {**os.environ, "MAX_URL_BYTES": "9000", "DJANGO_SETTINGS_MODULE": "config.settings"}
    result = subprocess.run(
        [GUNICORN, "--check-config", "config.wsgi"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "limit_request_line must exceed MAX_URL_BYTES" in result.stdout + result.stderr


@pytest.mark.parametrize("bound", ["4096", "8000", "8170"])
def test_gunicorn_config_accepts_bounds_below_its_line_limit(bound):
    env = {**os.environ, "MAX_URL_BYTES": bound, "DJANGO_SETTINGS_MODULE": "config.settings"}
    result = subprocess.run(
        [GUNICORN, "--check-config", "config.wsgi"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("abc", "GUNICORN_LIMIT_REQUEST_LINE must be a whole number, not 'abc'"),
        ("0", "GUNICORN_LIMIT_REQUEST_LINE must be at least 1, not 0"),  # gunicorn: unlimited
        ("-1", "GUNICORN_LIMIT_REQUEST_LINE must be at least 1, not -1"),
        ("9000", "GUNICORN_LIMIT_REQUEST_LINE must be at most 8190, not 9000"),  # gunicorn cut it to 8190
        ("8100", "GUNICORN_LIMIT_REQUEST_LINE 8100 is below MAX_URL_BYTES 8100 + 17"),
    ],
)
def test_gunicorn_config_refuses_a_line_limit_it_cannot_keep_in_one_line(line, message):
    """Before, "abc" stopped the start with a ValueError's traceback, and 0, -1 or 9000 started a
    gunicorn whose real limit was not the one set (unlimited, or cut to 8190 below the URL bound)."""
    env = {
        **os.environ, "GUNICORN_LIMIT_REQUEST_LINE": line, "MAX_URL_BYTES": "8100",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }  # fmt: skip
    result = subprocess.run(
        [GUNICORN, "--check-config", "config.wsgi"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0 and message in output and "Traceback" not in output, output
