"""The cursor never skips (events.feed, docs/event-cursor.md).

On PostgreSQL, real concurrent transactions (threads, a connection each) try to commit in the
opposite order to their inserts; a reader following `GET /api/v1/events?since=` sees every event
once, in order. The same scenario without the order lock shows the skip it prevents. On SQLite,
the guarantee comes from SQLite itself (one writer): a second writer cannot insert an event while
the first one's transaction is open.
"""

from __future__ import annotations

import random
import threading
import time

import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from events import feed
from events.models import Event
from events.services import record_events
from tenancy.models import Organization

from .helpers import Thing, emit

pytestmark = pytest.mark.django_db(transaction=True)
postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="real concurrent writers")


def write(org, n=0):
    return emit(org, n=n)


def org_object(org):
    return Thing(org)


def read_since(client, cursor):
    response = client.get(f"/api/v1/events?since={cursor}&per_page=100")
    assert response.status_code == 200, response.content
    return [e["id"] for e in response.json()]


class Writer(threading.Thread):
    """Inserts one event in a transaction, then waits for `release` (at most `hold` seconds)
    before committing."""

    def __init__(self, org, release: threading.Event, hold: float):
        super().__init__(daemon=True)
        self.org, self.release, self.hold = org, release, hold
        self.inserted, self.committed = threading.Event(), threading.Event()
        self.event_id = None
        self.error = None

    def run(self):
        try:
            with transaction.atomic():
                self.event_id = write(self.org).pk
                self.inserted.set()
                self.release.wait(self.hold)
            self.committed.set()
        except Exception as exc:  # reported by the test
            self.error = exc
        finally:
            connection.close()


def start_writer(org, release: threading.Event | None = None, hold: float = 0.0) -> Writer:
    writer = Writer(org, release=release or threading.Event(), hold=hold)
    writer.start()
    return writer


def reverse_commit_scenario(org, client):
    """A inserts first; B inserts after A and tries to commit first; a reader reads in between."""
    cursor = read_since(client, 0)[-1] if Event.objects.filter(organization=org).exists() else 0
    b_done = threading.Event()
    a = start_writer(org, release=b_done, hold=1.5)
    assert a.inserted.wait(10)
    b = start_writer(org)
    b.committed.wait(1.0)  # without the order lock B commits here, while A is still open
    seen = read_since(client, cursor)  # A is still open
    cursor = seen[-1] if seen else cursor
    b_done.set()
    a.join(10)
    b.join(10)
    assert a.error is None and b.error is None, (a.error, b.error)
    seen += read_since(client, cursor)
    return a.event_id, b.event_id, seen


@postgres_only
def test_a_reader_never_skips_an_event_committed_after_a_later_one(api, org):
    a_id, b_id, seen = reverse_commit_scenario(org, api("viewer"))
    # B could only take its id once A had committed: id order is commit order.
    assert a_id < b_id
    assert seen == [a_id, b_id]


@postgres_only
def test_without_the_order_lock_the_reader_skips(api, org, monkeypatch):
    """The hazard the lock removes, shown: the same scenario with `hold_order` switched off."""
    monkeypatch.setattr("events.feed.hold_order", lambda ids: None)
    a_id, b_id, seen = reverse_commit_scenario(org, api("viewer"))
    assert a_id < b_id
    assert seen == [b_id]  # A's event committed after the reader had moved past it


@postgres_only
def test_many_writers_and_a_follower(api, org, other_org):
    """Eight writers (two organizations) commit at random moments; a follower of `org` polling
    all along receives each of its events once, in id order."""
    client = api("viewer")
    stop = threading.Event()
    written: list[int] = []
    lock = threading.Lock()

    def writer(i):
        rng = random.Random(i)
        try:
            for n in range(15):
                target = org if rng.random() < 0.75 else other_org
                with transaction.atomic():
                    event = write(target, n)
                    time.sleep(rng.random() * 0.01)
                if target == org:
                    with lock:
                        written.append(event.pk)
        finally:
            connection.close()

    seen: list[int] = []

    def follower():
        cursor = 0
        try:
            while True:
                finished = stop.is_set()
                ids = read_since(client, cursor)
                seen.extend(ids)
                cursor = ids[-1] if ids else cursor
                if finished and not ids:
                    return
        finally:
            connection.close()

    reader = threading.Thread(target=follower, daemon=True)
    reader.start()
    writers = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(8)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(60)
    stop.set()
    reader.join(60)
    assert not reader.is_alive()
    assert seen == sorted(written) and len(seen) == len(set(seen))
    assert len(seen) == Event.objects.filter(organization=org).count()


@postgres_only
def test_bulk_writes_of_several_organizations_lock_in_order(org, other_org):
    """Two batches naming the same organizations in opposite orders: no deadlock, all written."""
    third = Organization.objects.create(slug="initech", name="Initech")
    orders = [[org, other_org, third], [third, other_org, org]]
    errors = []

    def batch(orgs):
        try:
            for _ in range(10):
                with transaction.atomic():
                    record_events(
                        type="thing.happened",
                        items=[(org_object(o), {}) for o in orgs],
                        occurred_at=timezone.now(),
                    )
                    time.sleep(0.005)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=batch, args=(o,)) for o in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert Event.objects.count() == 60


@postgres_only
def test_the_lock_is_held_until_the_transaction_ends(org, other_org):
    """While one transaction holds `org`'s order, another organization's writer is not held up,
    and a writer of `org` waits."""
    release = threading.Event()
    a = start_writer(org, release=release, hold=5)
    assert a.inserted.wait(10)
    other = start_writer(other_org)
    assert other.committed.wait(5)  # a different organization is not blocked
    same = start_writer(org)
    assert not same.inserted.wait(0.5)  # blocked on the order lock
    release.set()
    assert same.committed.wait(5)
    for thread in (a, other, same):
        thread.join(10)
        assert thread.error is None


@pytest.mark.skipif("connection.vendor != 'sqlite'", reason="SQLite's own single-writer rule")
def test_on_sqlite_no_second_writer_draws_an_id_before_the_first_commits(org):
    release = threading.Event()
    a = start_writer(org, release=release, hold=5)
    assert a.inserted.wait(10)
    outcome = {}

    def second():
        try:
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA busy_timeout = 200")
            write(org)
            outcome["wrote"] = True
        except OperationalError as exc:
            outcome["refused"] = str(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(10)
    release.set()
    a.join(10)
    assert "refused" in outcome and "locked" in outcome["refused"], outcome
    assert a.error is None


def test_one_poke_per_organization_and_transaction(org, other_org, monkeypatch):
    poked = []
    monkeypatch.setattr("events.feed.poke", poked.append)
    with transaction.atomic():
        write(org)
        write(org)
        record_events(
            type="thing.happened",
            items=[(org_object(other_org), {}), (org_object(org), {})],
            occurred_at=timezone.now(),
        )
        assert poked == []  # nothing before the commit
    assert sorted(poked) == sorted([org.pk, other_org.pk])


def test_no_poke_for_a_rolled_back_transaction(org, monkeypatch):
    poked = []
    monkeypatch.setattr("events.feed.poke", poked.append)
    with pytest.raises(RuntimeError), transaction.atomic():
        write(org)
        raise RuntimeError("change failed")
    assert poked == []
    with transaction.atomic():
        write(org)  # the next transaction pokes again
    assert poked == [org.pk]


def test_a_poke_that_fails_does_not_fail_the_write(org, monkeypatch, caplog):
    class BrokenLayer:
        async def group_send(self, group, message):
            raise ConnectionError("channel layer down")

    monkeypatch.setattr("channels.layers.get_channel_layer", lambda: BrokenLayer())
    event = write(org)
    assert Event.objects.filter(pk=event.pk).exists()
    assert "could not poke" in caplog.text
    assert feed.group_name(org.pk) == f"events.org.{org.pk}"
