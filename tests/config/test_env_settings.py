"""The settings refuse a bad value from the environment at start, naming the variable (found by an
outside tester: a malformed rate or Redis URL started fine and then made every API request a 500; a bad
number failed deep in Django without naming the variable; out-of-range limits locked every request out)."""

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

SETTINGS = Path(settings.BASE_DIR) / "config" / "settings.py"


def load(monkeypatch, **variables):
    """The settings module as a fresh process would read it with these variables set."""
    for name in ("DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS))


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("THROTTLE_ANON_RATE", "5/fortnight", "'5/fortnight'"),
        ("THROTTLE_USER_RATE", "lots", "'lots'"),
        ("THROTTLE_LOGIN_RATE", "5/month", "'5/month'"),  # DRF would have read a minute
        ("THROTTLE_USER_RATE", "0/min", "'0/min'"),
        ("CONN_MAX_AGE", "abc", "'abc'"),
        ("STREAM_SEND_TIMEOUT", "x", "'x'"),
        ("STREAM_HEARTBEAT", "nan", "'nan'"),
        ("NUM_PROXIES", "1.5", "'1.5'"),
        ("SECURE_HSTS_SECONDS", "a year", "'a year'"),
        ("DEBUG", "maybe", "'maybe'"),
        ("LOG_LEVEL", "LOUD", "'LOUD'"),
        ("DATABASE_URL", "garbage", "'garbage'"),
        ("REDIS_URL", "garbage", "redis://"),
        ("REDIS_URL", "redis://127.0.0.1:port/0", "redis://"),
        ("MAX_REQUEST_BYTES", "-5", "at least 1024"),
        ("MAX_URL_BYTES", "0", "at least 1024"),
        ("JWT_ACCESS_MINUTES", "-1", "at least 1"),
        ("JWT_REFRESH_DAYS", "0", "at least 1"),
        ("NUM_PROXIES", "-1", "at least 0"),
        ("CONN_MAX_AGE", "-1", "at least 0"),
        ("STREAM_DB_THREADS", "0", "at least 1"),
        ("STREAM_SEND_TIMEOUT", "-1", "'-1'"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(monkeypatch, name, value, says):
    with pytest.raises(ImproperlyConfigured) as refused:
        load(monkeypatch, **{name: value})
    assert str(refused.value).startswith(name)
    assert says in str(refused.value)


def test_good_values_are_read(monkeypatch):
    loaded = load(
        monkeypatch,
        THROTTLE_USER_RATE="100/hours",
        THROTTLE_ANON_RATE="5/Second",
        CONN_MAX_AGE="0",
        STREAM_SEND_TIMEOUT="2.5",
        DEBUG="yes",
        LOG_LEVEL="debug",
        MAX_URL_BYTES="4000",
        NUM_PROXIES="",  # empty: the default
        REDIS_URL="redis://127.0.0.1:6379/3",
    )
    assert loaded["REST_FRAMEWORK"]["DEFAULT_THROTTLE_RATES"]["user"] == "100/hour"
    assert loaded["REST_FRAMEWORK"]["DEFAULT_THROTTLE_RATES"]["anon"] == "5/second"
    assert loaded["STREAM"]["SEND_TIMEOUT"] == 2.5
    assert loaded["DEBUG"] is True
    assert loaded["LOGGING"]["root"]["level"] == "DEBUG"
    assert loaded["MAX_URL_BYTES"] == 4000
    assert loaded["NUM_PROXIES"] == 0
    assert loaded["CACHES"]["default"]["LOCATION"] == "redis://127.0.0.1:6379/3"


def test_manage_py_check_fails_on_a_malformed_rate():
    env = {**os.environ, "THROTTLE_USER_RATE": "lots", "DJANGO_SETTINGS_MODULE": "config.settings"}
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "ImproperlyConfigured: THROTTLE_USER_RATE must be a rate" in done.stderr
