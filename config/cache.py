"""The shared cache (Redis with REDIS_URL) is a counter and an optimization, never something a request
fails on: the rate limits let requests through and the membership is read from the database while it
does not answer (found by an outside tester: with Redis down every API request was an HTML 500)."""

import logging
import math
import time

from django.core.cache import cache
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


def status() -> str:
    """"ok" when the cache answers, else "unavailable: <error>" (for /healthz)."""
    try:
        cache.get("healthz")
    except CACHE_ERRORS as exc:
        return f"unavailable: {exc.__class__.__name__}"
    return "ok"
