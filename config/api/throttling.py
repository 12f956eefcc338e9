"""Rate limits that hold behind a load balancer (DESIGN §5, issue 8).

Counts live in Django's default cache: Redis when `REDIS_URL` is set (one count for every
process and machine), the local-memory cache otherwise (`make run`). Each limit is a fixed
window (`60/min` counts from the start of the minute) kept as one counter per window and
client, bumped with the cache's atomic `incr`, so concurrent requests on several processes
never lose a count.

- `UserThrottle` (`THROTTLE_USER_RATE`, per user) and `AnonThrottle` (`THROTTLE_ANON_RATE`,
  per client address) apply to every API view.
- `LoginAddressThrottle` and `LoginUsernameThrottle` (`THROTTLE_LOGIN_RATE` each) guard
  `POST /api/v1/token` and the admin's login: a password guesser is held back per address and per
  username, so spreading over workers or addresses does not help.

A client's address is REMOTE_ADDR (`client_address`); behind `NUM_PROXIES` trusted proxies, the
address in X-Forwarded-For the outermost proxy appended.

Every API response carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`
(UTC epoch seconds at which the window ends) for the tightest limit that applied; a 429 also
carries `Retry-After` (the exception handler adds it).
"""

from __future__ import annotations

import hashlib
import math

from rest_framework.throttling import AnonRateThrottle, BaseThrottle, SimpleRateThrottle, UserRateThrottle

from config.cache import CACHE_ERRORS, warn

RATE_LIMIT_ATTRIBUTE = "rate_limit"


def client_address(request) -> str:
    """The address a request came from as the rate limits count it (DRF's `get_ident` with
    `NUM_PROXIES`, default 0: REMOTE_ADDR; an X-Forwarded-For the client wrote itself is not
    trusted, or each made-up address would be a fresh count)."""
    return BaseThrottle().get_ident(request) or "unknown"


class WindowThrottle:
    """Fixed-window counting on top of a DRF SimpleRateThrottle (its rates, scopes and keys)."""

    def _window(self) -> tuple[int, int]:
        now = int(self.timer())
        start = now - now % self.duration
        return start, start + self.duration

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        ident = self.get_cache_key(request, view)
        if ident is None:
            return True
        start, self.reset = self._window()
        key = f"{ident}:{start}"
        try:
            self.cache.add(key, 0, self.duration + 5)
            try:
                count = self.cache.incr(key)
            except ValueError:  # the window's key expired between add and incr
                self.cache.set(key, 1, self.duration + 5)
                count = 1
        except CACHE_ERRORS as exc:
            # Fail open: the limits are a guard, not the service; no X-RateLimit-* headers meanwhile.
            warn("rate limits not applied", exc)
            return True
        self.remaining = max(0, self.num_requests - count)
        record(request, self.num_requests, self.remaining, self.reset, refused=count > self.num_requests)
        return count <= self.num_requests

    def peek(self, request) -> tuple[int, int, int] | None:
        """(limit, remaining, reset) without counting this request."""
        if self.rate is None:
            return None
        ident = self.get_cache_key(request, None)
        if ident is None:
            return None
        start, reset = self._window()
        try:
            count = self.cache.get(f"{ident}:{start}") or 0
        except CACHE_ERRORS as exc:
            warn("rate limits not applied", exc)
            return None
        return self.num_requests, max(0, self.num_requests - count), reset

    def wait(self) -> float:
        return max(1.0, self.reset - self.timer())


def record(request, limit: int, remaining: int, reset: int, *, refused: bool = False) -> None:
    """Keep the tightest limit seen for this request, for the response headers: the one that
    refused it, if one did (a login refused by its 3/min showed the anonymous 4/min, both with
    nothing remaining; found by a newcomer's sweep), else the one with the least remaining."""
    django_request = getattr(request, "_request", request)
    current = getattr(django_request, RATE_LIMIT_ATTRIBUTE, None)
    was_refused = current is not None and len(current) > 3 and current[3]
    if current is None or (refused and not was_refused) or (refused == was_refused and remaining < current[1]):
        setattr(django_request, RATE_LIMIT_ATTRIBUTE, (limit, remaining, reset, refused))


# Set on a request whose user the rate limit has already counted: a GraphQL mutation's REST call
# (config.graphql.mutations.call_rest) is part of the GraphQL request that was counted.
COUNTED = "rate_limit_counted"


class UserThrottle(WindowThrottle, UserRateThrottle):
    def allow_request(self, request, view) -> bool:
        if getattr(request, COUNTED, False):
            return True
        return super().allow_request(request, view)


class AnonThrottle(WindowThrottle, AnonRateThrottle):
    def get_cache_key(self, request, view):
        user = getattr(request, "user", None)  # a plain Django request when peeked at by the middleware
        if user is not None and user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginAddressThrottle(WindowThrottle, SimpleRateThrottle):
    scope = "login"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": "login-address", "ident": self.get_ident(request)}


class LoginUsernameThrottle(WindowThrottle, SimpleRateThrottle):
    scope = "login"

    def get_cache_key(self, request, view):
        username = request.data.get("username") if isinstance(request.data, dict) else None
        if not isinstance(username, str) or not username:
            return None
        # Hashed: any text makes a valid cache key; case-folded: "Alice" and "alice" are one guesser's target.
        digest = hashlib.sha256(username.strip().casefold().encode("utf-8", "replace")).hexdigest()
        return self.cache_format % {"scope": "login-username", "ident": digest}


def login_refused(request) -> int | None:
    """Seconds to wait when this login attempt (a DRF request with `username` in its data) is over
    a login limit, else None; the attempt is counted either way, as `POST /api/v1/token` counts it."""
    throttles = (LoginAddressThrottle(), LoginUsernameThrottle())
    over = [throttle for throttle in throttles if not throttle.allow_request(request, None)]
    return math.ceil(max(throttle.wait() for throttle in over)) if over else None


def rate_limit_headers(request) -> dict[str, str]:
    """The X-RateLimit-* headers of a response to `request`: the limits that applied, or (for a
    request refused before the throttles ran: a 401, a 403) the caller's limit as it stands."""
    state = getattr(request, RATE_LIMIT_ATTRIBUTE, None)
    if state is None:
        user = getattr(request, "user", None)
        state = (UserThrottle if user is not None and user.is_authenticated else AnonThrottle)().peek(request)
    if state is None:
        return {}
    limit, remaining, reset = state[:3]
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(math.ceil(reset)),
    }
