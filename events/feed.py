"""The event log as a feed: a cursor that never skips, and a poke after every commit.

**Order.** A reader resumes with "the events of my organization after id N". Ids are drawn at
INSERT but become visible at COMMIT, so without care a reader could see id 42 while id 41's
transaction is still open, move its cursor to 42 and never see 41. `hold_order` prevents that:
the writing transaction takes a per-organization lock *before* it draws an event id and keeps it
until it commits or rolls back. Two transactions writing events of one organization therefore
take their ids one after the other, and the first commits before the second draws any id: within
one organization, id order is commit order, and `id > cursor` never skips (docs/event-cursor.md
has the argument, the alternatives and the measured cost).

- PostgreSQL: `pg_advisory_xact_lock(EVENT_LOCK_CLASS, organization key)`, released by PostgreSQL
  at the end of the transaction; several organizations are locked in ascending order, so two
  transactions locking overlapping sets cannot deadlock on them.
- SQLite: nothing to do. SQLite has one writer at a time: a transaction's first write takes the
  database's write lock and keeps it until COMMIT, so no other transaction can draw an id (or
  write anything) between this transaction's INSERT and its COMMIT.

**Lock order.** The order lock is held from a transaction's first event to its commit, and the
handlers that run under it lock rows (a calendar edit or a back-dated rule recomputes its jobs,
locking each job and its clocks; a breach's penalty locks its contract; a breach's price locks its
rule). A transaction that locks such a row *before* its first event would wait for the order lock
while holding what the holder waits for: a deadlock. So a write that locks a job, a contract or a
rule takes its organization's order first (`hold_order`, then the row):
`workorders.services.update_work_order`, `contracts.services._locked`,
`slas.services._open_contract` (and a rule's edit, amendment, restatement or deletion, before the
rule's row), `ledger.services.post_entry`, a breach's acknowledgement and waiver (a job update
settles the breach of a clock it stops). Claims with `SKIP LOCKED` too: each breach scan batch
reads its candidates' organizations without a lock, holds their order, then claims only their rows
(`breaches.services._hold_order_of`, `_refresh_batch`); `run_lifecycle`'s steps hold a contract's
order before claiming it (`contracts.services._lock_if`; a lot's expiry, `ledger.services.expire_lot`).
Taking it twice in one transaction is harmless (PostgreSQL counts it). `locked` is that order and
the row's re-read in one call, for every update and delete service of a resource (calendars,
counterparties, assets, templates, contract rules, visit plans too: a PATCH and a DELETE of one
took them in opposite orders and deadlocked; the visit generator holds a plan's order before it
claims the plan).
A row locked *before* the order (a webhook endpoint, the organization's own row) is locked `FOR NO
KEY UPDATE` (`locked(..., no_key=True)`): a transaction holding the order checks its new rows'
foreign keys at commit, which takes `FOR KEY SHARE` on the rows they reference (every event names
its organization, a delivery its endpoint), and a `FOR UPDATE` there made it wait for a writer that
waited for the order: a deadlock.

**Poke.** After the commit (`transaction.on_commit`), one message per organization goes through
the channel layer to the group `group_name(organization_id)`: "this organization has new events".
Every live connection re-reads the log from its own cursor, so a lost or duplicated poke costs
latency, never an event. No channel layer configured: no poke. The poke runs in the request
that committed, so it waits at most POKE_TIMEOUT_SECONDS; after a failure (Redis down or not
answering) this process skips pokes through that layer for POKE_BACKOFF_SECONDS (one warning,
no traceback, per failure): a Redis that accepted connections and never answered held every
write 30 s (the layer's socket timeout, which its receives need), and one that refused logged a
traceback per write.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref
from collections.abc import Iterable

from django.db import connection, transaction

from config.errors import NotFound

logger = logging.getLogger("events.feed")

# The first key of the two-key advisory lock ("EV" in ASCII): no other lock of this project uses it.
EVENT_LOCK_CLASS = 0x4556
POKE_TYPE = "events.poke"
# A poke waits at most this long; after a failed one, none is sent for POKE_BACKOFF_SECONDS (live
# connections still catch up at their heartbeat re-read, STREAM["HEARTBEAT"]).
POKE_TIMEOUT_SECONDS = 2.0
POKE_BACKOFF_SECONDS = 5.0
_poke_failed_at: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # layer -> monotonic time


def group_name(organization_id: int) -> str:
    """The channel-layer group whose members follow one organization's events."""
    return f"events.org.{organization_id}"


def _lock_key(organization_id: int) -> int:
    # The lock's second key is an int4; two organizations sharing a key only share the lock.
    return int(organization_id) % 2147483647


def hold_order(organization_ids: Iterable[int]) -> None:
    """Lock the organizations' event order until this transaction ends (call inside it, before
    inserting their events)."""
    keys = sorted({_lock_key(i) for i in organization_ids})
    if not keys or connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        if len(keys) == 1:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [EVENT_LOCK_CLASS, keys[0]])
        else:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, k) FROM (SELECT unnest(%s::int[]) AS k ORDER BY 1) AS keys",
                [EVENT_LOCK_CLASS, keys],
            )


def locked(rows, instance, *, order: bool = True, no_key: bool = False):
    """`instance`'s row as it is now, locked to the end of the transaction: what a write or a delete
    works on (the view read `instance` before the transaction). Its organization's order first (the
    "Lock order" above) unless `order` is False, for a row whose every writer locks it before its
    events (a webhook endpoint: the delivery worker does); such a row is locked with `no_key` (FOR
    NO KEY UPDATE, "Lock order" above). `rows` is the model or a queryset of it.

    Gone meanwhile (a concurrent delete committed first): `NotFound`, the 404 the same request gets
    a moment later; a delete that lost the race so writes no second `*.deleted` event."""
    if order:
        hold_order([instance.organization_id])
    queryset = rows._default_manager.all() if isinstance(rows, type) else rows
    row = queryset.select_for_update(of=("self",), no_key=no_key).filter(pk=instance.pk).first()
    if row is None:
        raise NotFound()
    return row


class _Poke:
    """One on-commit callback per organization and transaction (equal pokes are not queued twice)."""

    def __init__(self, organization_id: int):
        self.organization_id = organization_id

    def __eq__(self, other) -> bool:
        return isinstance(other, _Poke) and other.organization_id == self.organization_id

    def __hash__(self) -> int:
        return hash(self.organization_id)

    def __call__(self) -> None:
        poke(self.organization_id)


def poke_after_commit(organization_ids: Iterable[int]) -> None:
    """Queue a poke for each organization, once per transaction, to run after it commits."""
    queued = {callback for *_, callback, _robust in connection.run_on_commit}
    for organization_id in sorted(set(organization_ids)):
        callback = _Poke(organization_id)
        if callback not in queued:
            transaction.on_commit(callback, robust=True)


def poke(organization_id: int) -> None:
    """Tell the organization's live connections that it has new events (best effort, bounded)."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None or time.monotonic() - _poke_failed_at.get(layer, -math.inf) < POKE_BACKOFF_SECONDS:
        return
    message = {"type": POKE_TYPE, "organization": organization_id}

    async def send() -> None:
        await asyncio.wait_for(layer.group_send(group_name(organization_id), message), POKE_TIMEOUT_SECONDS)

    try:
        async_to_sync(send)()
    except Exception as exc:
        # The events are committed; a connection that missed the poke catches up at the next one
        # or at its heartbeat re-read.
        _poke_failed_at[layer] = time.monotonic()
        logger.warning(
            "could not poke the live stream of organization %s (%s: %s); no pokes for %g s",
            organization_id, type(exc).__name__, exc, POKE_BACKOFF_SECONDS,
        )


def prepare_write(organization_ids: Iterable[int]) -> None:
    """What `record_event(s)` does before inserting events: hold the order, queue the pokes."""
    ids = list(organization_ids)
    hold_order(ids)
    poke_after_commit(ids)
