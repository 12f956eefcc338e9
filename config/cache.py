"""The shared cache (Redis with REDIS_URL) is a counter and an optimization, never something a request
fails on: the rate limits let requests through and the membership is read from the database while it
does not answer (found by an outside tester: with Redis down every API request was an HTML 500)."""

import logging
import math
import time

from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

# What Django's Redis backend raises when Redis is down, slow or refuses (redis-py wraps socket errors).
CACHE_ERRORS = (RedisError, OSError)
# A Redis outage would otherwise log a warning on every request.
WARN_INTERVAL_SECONDS = 60

logger = logging.getLogger("cache")
_warned_at: dict[str, float] = {}


def warn(what: str, exc: BaseException) -> None:
    """Log that the cache failed `what`, at most once per WARN_INTERVAL_SECONDS per `what` and process."""
    now = time.monotonic()
    if now - _warned_at.get(what, -math.inf) >= WARN_INTERVAL_SECONDS:
        _warned_at[what] = now
        logger.warning("cache unavailable, %s (%s: %s)", what, exc.__class__.__name__, exc)


# After a failed call, the cache is not asked again for this long (per process and server): a Redis that
# does not answer cost every call its socket timeout (2 s), so each request (throttle counts, the
# membership) waited several times that. The first call after the pause tries again.
BACKOFF_SECONDS = 5.0
_failed_at: dict[str, float] = {}


class BackingOff(RedisConnectionError):
    """The cache failed a moment ago and is not asked again yet (a CACHE_ERRORS, handled as a failure)."""


class _GuardedClient(RedisCacheClient):
    """Django's Redis client, skipped for BACKOFF_SECONDS after an error. Deletes are always tried: a
    demotion's delete that is skipped would leave the old membership for its cache lifetime."""

    def __init__(self, servers, **options):
        super().__init__(servers, **options)
        self._server_key = ",".join(servers)

    def _guarded(self, method, *args, always=False, **kwargs):
        if not always and time.monotonic() - _failed_at.get(self._server_key, -math.inf) < BACKOFF_SECONDS:
            raise BackingOff(f"the cache failed less than {BACKOFF_SECONDS:g} s ago")
        try:
            return method(*args, **kwargs)
        except CACHE_ERRORS:
            _failed_at[self._server_key] = time.monotonic()
            raise

    def add(self, *args, **kwargs):
        return self._guarded(super().add, *args, **kwargs)

    def get(self, *args, **kwargs):
        return self._guarded(super().get, *args, **kwargs)

    def set(self, *args, **kwargs):
        return self._guarded(super().set, *args, **kwargs)

    def touch(self, *args, **kwargs):
        return self._guarded(super().touch, *args, **kwargs)

    def get_many(self, *args, **kwargs):
        return self._guarded(super().get_many, *args, **kwargs)

    def has_key(self, *args, **kwargs):
        return self._guarded(super().has_key, *args, **kwargs)

    def incr(self, *args, **kwargs):
        return self._guarded(super().incr, *args, **kwargs)

    def set_many(self, *args, **kwargs):
        return self._guarded(super().set_many, *args, **kwargs)

    def delete(self, *args, **kwargs):
        return self._guarded(super().delete, *args, always=True, **kwargs)

    def delete_many(self, *args, **kwargs):
        return self._guarded(super().delete_many, *args, always=True, **kwargs)


class GuardedRedisCache(RedisCache):
    """settings.CACHES' backend with REDIS_URL: Django's Redis cache that, once Redis has failed, lets
    the callers' fallbacks (rate limits open, the membership from the database) answer at once for
    BACKOFF_SECONDS instead of waiting out the socket timeout on every call."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _GuardedClient


def status() -> str:
    """"ok" when the cache answers, else "unavailable: <error>" (for /healthz)."""
    try:
        cache.get("healthz")
    except CACHE_ERRORS as exc:
        return f"unavailable: {exc.__class__.__name__}"
    return "ok"
