"""Reading one organization's event log forward from a cursor: what both transports share.

A cursor is an event id: "everything of my organization up to here has been delivered". Thanks
to the order lock of `events.feed`, an organization's events become visible in id order, so
reading `id > cursor` never skips one. Each read first takes the organization's head (its highest
visible event id) and then reads the matching events up to that head: the cursor can move to the
head even when the filters matched nothing, so a narrow subscription does not re-scan the same
events at every poke, and a resume from that cursor loses nothing.

What is kept for replay (the answer to "a `since` older than what is kept"): the event log itself
is the audit trail and is never pruned, but a stream replays at most `STREAM["REPLAY_LIMIT"]`
events (default 10,000) after a cursor. A cursor further behind than that, or one this
organization never handed out (above its head: a cursor from another installation or a restored
database), gets a *reset*: the client re-reads the state it shows through the REST API and
follows on from the head.
"""

from __future__ import annotations

import asyncio
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import close_old_connections, connection
from django.db.models import Max, QuerySet
from rest_framework.exceptions import AuthenticationFailed

from config.api.filters import MAX_DB_ID
from config.api.pagination import whole_number
from events.api import EventSerializer
from events.models import Event
from events.patterns import types_q
from events.visibility import readable_by
from tenancy.auth import TenantJWTAuthentication

TYPE_PATTERN = re.compile(r"^[A-Za-z0-9_.*-]{1,64}$")
MAX_TYPE_PATTERNS = 50
# `*` per pattern once runs of `*` are collapsed. Matching is a GLOB/LIKE of the database (see
# `types_q`), which stays fast with any number, but no event type glob needs more than a few
# (`breach.*`, `*.created`, `*order*changed`) and the cap keeps the work per event small whatever
# the engine does with wildcards.
MAX_WILDCARDS = 4


class StreamInputError(ValueError):
    """A subscription parameter that is not valid: `errors` names it (the REST error shape)."""

    def __init__(self, message: str, errors: dict[str, list[str]]):
        super().__init__(message)
        self.message, self.errors = message, errors


def parse_types(value) -> tuple[str, ...]:
    """`["breach.*", "contract.state_changed"]` (or a comma-separated string): event type globs,
    `*` standing for any characters. None or empty: every type. A run of `*` is one `*` (the
    patterns come back collapsed); at most `MAX_WILDCARDS` of them per pattern."""
    if value in (None, "", []):
        return ()
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise StreamInputError(
            "types must be a list of event type patterns.", {"types": ["Expected a list of strings."]}
        )
    bad = [p for p in value if not TYPE_PATTERN.fullmatch(p)]  # `$` would let a trailing newline in
    if bad or len(value) > MAX_TYPE_PATTERNS:
        detail = f"Not an event type pattern: {', '.join(map(repr, bad))}." if bad else "Too many patterns."
        raise StreamInputError(f"Invalid types: {detail}", {"types": [detail]})
    value = [_STARS.sub("*", p) for p in value]
    wild = [p for p in value if p.count("*") > MAX_WILDCARDS]
    if wild:
        detail = (
            f"At most {MAX_WILDCARDS} wildcards (*) per pattern, a run of * counting as one: "
            f"{', '.join(map(repr, wild))}."
        )
        raise StreamInputError(f"Invalid types: {detail}", {"types": [detail]})
    return tuple(dict.fromkeys(value))


_STARS = re.compile(r"\*{2,}")


def parse_since(value) -> int | None:
    """A cursor from the client: a whole number (an event id) or None for "from now on".

    Strings (`?since=`, `Last-Event-ID`, a WebSocket's `"since": "41"`) by the rule of
    `GET /api/v1/events?since=`: ASCII digits, at most the largest id (found by an outside sweep:
    `str.isdigit` took `٣` as cursor 3)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = whole_number(value, MAX_DB_ID)
    elif isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DB_ID:
        value = None
    if value is None:
        raise StreamInputError(
            f"since must be an event id (a whole number from 0 to {MAX_DB_ID}).",
            {"since": [f"Must be 0 to {MAX_DB_ID}."]},  # as GET /events?since= says
        )
    return value


@dataclass
class Subscription:
    """What one connection follows: its organization, a filtered queryset of the events its role
    reads (events.visibility), its cursor, and the access token and role it was opened with
    (`still_admitted` before each read)."""

    organization_id: int
    token: str
    role: str
    cursor: int = 0
    types: tuple[str, ...] = ()
    base: QuerySet = field(default_factory=lambda: Event.objects.all())

    def __post_init__(self):
        self.base = readable_by(self.base, self.role)
        if self.types:
            self.base = self.base.filter(types_q(self.types))


def head(organization_id: int) -> int:
    """The organization's highest visible event id (0 without events)."""
    return Event.objects.filter(organization_id=organization_id).aggregate(head=Max("id"))["head"] or 0


def start(subscription: Subscription, since: int | None) -> bool:
    """Set the subscription's cursor from the client's `since`; True when that is a reset."""
    top = head(subscription.organization_id)
    if since is None:
        subscription.cursor = top
        return False
    limit = settings.STREAM["REPLAY_LIMIT"]
    behind = Event.objects.filter(organization_id=subscription.organization_id, id__gt=since).order_by("id")
    if since > top or behind.values_list("id", flat=True)[limit : limit + 1].exists():
        subscription.cursor = top
        return True
    subscription.cursor = since
    return False


def still_admitted(token: str, role: str | None = None):
    """The tenant context of a stream's token now, or AuthenticationFailed: a token expired, or a
    membership removed (or its user or organization deactivated) since the stream began, stops
    the delivery as the next REST request would be refused (found by an outside sweep: streams
    went on until the token expired); so does a changed role (`role`: the one the stream was
    opened with), since it changes which events the member reads. Checked before each read, from
    the membership cache."""
    _user, context = TenantJWTAuthentication().authenticate_token(token)
    if not context.has_role("viewer"):
        raise AuthenticationFailed("This needs the viewer role or higher.")
    if role is not None and context.role != role:
        raise AuthenticationFailed(f"Your role is now {context.role}: reconnect to follow as that role.")
    return context


def read_rows(subscription: Subscription) -> tuple[list[Event], bool]:
    """The next matching events after the cursor (at most `STREAM["BATCH"]`), as rows with their
    actor; moves the cursor. The second value: whether more may follow. (GraphQL's subscription
    resolves its own fields from the rows; `read` serializes them for the WebSocket and SSE.)
    AuthenticationFailed when the subscription's token no longer admits it (`still_admitted`)."""
    still_admitted(subscription.token, subscription.role)
    top = head(subscription.organization_id)
    if top <= subscription.cursor:
        return [], False
    batch = settings.STREAM["BATCH"]
    rows = list(
        subscription.base.filter(organization_id=subscription.organization_id, id__gt=subscription.cursor, id__lte=top)
        .select_related("actor")
        .order_by("id")[:batch]
    )
    more = len(rows) == batch
    subscription.cursor = rows[-1].pk if more else top
    return rows, more


def read(subscription: Subscription) -> tuple[list[dict], bool]:
    """`read_rows`, serialized as `/api/v1/events` shows them."""
    rows, more = read_rows(subscription)
    return list(EventSerializer(rows, many=True).data), more


def dumps(message: dict) -> str:
    return json.dumps(message, cls=DjangoJSONEncoder, separators=(",", ":"))


_db_threads = ThreadPoolExecutor(max_workers=settings.STREAM["DB_THREADS"], thread_name_prefix="stream-db")


def in_db_thread(func):
    """`func` made awaitable for the ORM, connections closed when stale (CONN_MAX_AGE) around it.

    PostgreSQL: in a pool of `STREAM_DB_THREADS` (8) threads of the stream's own, each with its own connection
    (closed after each read under ASGI, where CONN_MAX_AGE is 0), so many followers read in
    parallel (asgiref's `thread_sensitive=False` would carry a connection from one thread to
    another through the context). SQLite: in the one sync thread
    (Channels' `database_sync_to_async`): SQLite has one writer, and an in-memory test database
    refuses a second thread's read while a write is open.
    """
    if connection.vendor == "sqlite":
        return database_sync_to_async(func)

    def in_thread(*args, **kwargs):
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    async def call(*args, **kwargs):
        return await asyncio.get_running_loop().run_in_executor(_db_threads, partial(in_thread, *args, **kwargs))

    return call
