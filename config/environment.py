"""Readers of the environment's numbers and switches, shared by the settings and gunicorn.conf.py
(which runs before Django and must refuse the same bad values the same way)."""

import math
import os

from django.core.exceptions import ImproperlyConfigured

# Numbers and switches from the environment, checked where they are read: a bad value stops the
# start with ImproperlyConfigured naming the variable and the value (django-environ's own casts failed deep
# in Django without naming either, took "x" as the float '' and anything but "true"/"yes"/... as false;
# found by an outside tester). An empty value means the default.
_TRUE, _FALSE = {"true", "1", "yes", "y", "on"}, {"false", "0", "no", "n", "off"}


def raw_value(name):
    value = os.environ.get(name, "").strip()
    return value or None


def env_int(name, default, *, minimum=None, maximum=None):
    raw = raw_value(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    return _in_range(name, value, minimum, maximum)


def env_float(name, default, *, minimum=None, maximum=None, positive=False):
    raw = raw_value(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None
    if not math.isfinite(value) or (positive and value <= 0):
        raise ImproperlyConfigured(f"{name} must be a {'positive ' if positive else ''}finite number, not {raw!r}")
    return _in_range(name, value, minimum, maximum)


def _in_range(name, value, minimum, maximum):
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, not {value}")
    return value


def env_bool(name, default):
    raw = raw_value(name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")
