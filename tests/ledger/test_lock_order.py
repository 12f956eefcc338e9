"""The lifecycle's expiry of lots against the event order (events.feed, "Lock order"), on PostgreSQL
in a fixed interleaving.

`run_lifecycle`'s step "lots expired" (`ledger.services.expire_lots`) locked each lot's contract
and only then waited for the organization's order at its posting's event, while a hand-made
posting (and every contract write) holds the order and then locks the contract: a deadlock,
PostgreSQL killed one of the two (the API's posting a 409 "Conflicting write ... Retry.", or the
run's lot skipped and the command exiting 1). Forced here: a third transaction holds the order,
the posting queues for it first, then the expiry; then the third one commits.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from events.feed import hold_order
from ledger import services
from ledger.models import LedgerEntry
from tests.locking import holding, start, wait_until_blocked

from .helpers import DAY, T0, active_contract, credit, h, post, running

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent transactions (SQLite has one writer)"),
]


def test_a_posting_and_the_lifecycles_lot_expiry_do_not_deadlock(org):
    contract = active_contract(org)
    lot = credit(contract, 10, at=T0, expires_at=T0 + DAY)
    release, held = threading.Event(), threading.Event()
    holder = start(holding(lambda: hold_order([org.pk]), release, held))
    assert held.wait(10)
    posting = start(lambda: post(contract, "credit", 5, at=T0 + 2 * DAY))
    wait_until_blocked(posting)  # first in the queue for the order
    expiry = start(lambda: services.expire_lots(now=T0 + 3 * DAY))
    wait_until_blocked(expiry)
    release.set()

    for session in (holder, posting, expiry):
        session.finish()
        assert session.error is None, repr(session.error)
    assert expiry.result == 1
    expired = LedgerEntry.objects.get(reason_code=LedgerEntry.Reason.LOT_EXPIRED)
    assert (expired.lot_id, expired.hours) == (lot.pk, h(-10))
    assert running(contract) == h(5)
