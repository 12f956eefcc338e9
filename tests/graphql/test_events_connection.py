"""`eventsConnection(first:, after:, filters:)`: the relay cursor connection on events, through the
real view with real JWTs: oldest first, opaque cursors that are the feed's cursor underneath
(`after` the cursor of event N = REST `?since=N`), filters, the organization wall, bad input, and
a query count that does not grow with the page."""

from __future__ import annotations

import base64

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.graphql import decode_cursor, encode_cursor
from events.models import Event
from events.services import record_event
from tests.events.helpers import Thing

pytestmark = pytest.mark.django_db

PAGE = """query Page($first: Int!, $after: String, $filters: EventFilter) {
  eventsConnection(first: $first, after: $after, filters: $filters) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id type actor { username } } }
  }
}"""


def emit(organization, type_="thing.happened", actor=None):
    return record_event(type=type_, obj=Thing(organization), actor=actor, payload={})


@pytest.fixture
def log(org, other_org, make_member):
    """Seven events of ours, by an actor, interleaved with events of another organization."""
    actor = make_member("operator", org).user
    ours = []
    for index in range(7):
        emit(other_org, "breach.opened")
        ours.append(emit(org, "breach.opened" if index % 2 else "contract.created", actor=actor))
    return ours


def page(client, first, after=None, filters=None):
    return client(PAGE, {"first": first, "after": after, "filters": filters})["eventsConnection"]


def test_pages_oldest_first_with_first_and_after(gql, log):
    client = gql("viewer")
    seen, after, pages = [], None, 0
    while True:
        data = page(client, 3, after)
        assert data["totalCount"] == 7
        assert data["pageInfo"]["hasPreviousPage"] is (after is not None)
        seen += [int(edge["node"]["id"]) for edge in data["edges"]]
        pages += 1
        if not data["pageInfo"]["hasNextPage"]:
            break
        assert data["pageInfo"]["endCursor"] == data["edges"][-1]["cursor"]
        after = data["pageInfo"]["endCursor"]
    assert seen == [e.pk for e in log] and pages == 3
    assert data["edges"][0]["node"]["actor"]["username"]


def test_a_cursor_is_opaque_and_is_the_feed_cursor(gql, log):
    client = gql("viewer")
    data = page(client, 2)
    cursor = data["edges"][1]["cursor"]
    assert not cursor.isdigit() and decode_cursor(cursor) == log[1].pk
    # `after` the cursor of event N is REST's `?since=N` and the offset list's `since: N`.
    after = [int(e["node"]["id"]) for e in page(client, 100, cursor)["edges"]]
    rest = client.client.get(f"/api/v1/events?since={log[1].pk}&per_page=100").json()
    since = client(f"{{ events(filters: {{since: {log[1].pk}}}) {{ results {{ id }} }} }}")["events"]["results"]
    assert after == [r["id"] for r in rest] == [int(e["id"]) for e in since] == [e.pk for e in log[2:]]


def test_filters_are_the_rest_filters(gql, log):
    data = page(gql("viewer"), 100, filters={"type": {"eq": "breach.opened"}})
    assert [int(e["node"]["id"]) for e in data["edges"]] == [e.pk for e in log if e.type == "breach.opened"]
    assert data["totalCount"] == 3


def test_another_organizations_events_are_never_in_it(gql, log, other_org):
    data = page(gql("admin"), 100)
    ids = {int(e["node"]["id"]) for e in data["edges"]}
    assert ids == {e.pk for e in log}
    theirs = list(Event.objects.filter(organization=other_org).order_by("id").values_list("pk", flat=True))
    assert not ids & set(theirs)
    # Their cursor is only a position in our log: what follows it is ours.
    after = page(gql("admin"), 100, encode_cursor(theirs[2]))["edges"]
    assert [int(e["node"]["id"]) for e in after] == [e.pk for e in log if e.pk > theirs[2]]


@pytest.mark.parametrize(
    "after",
    [
        "12",
        "not base64!",
        base64.urlsafe_b64encode(b"contract:3").decode(),
        encode_cursor(1).rstrip("=") + "x",
        base64.urlsafe_b64encode(b"event:" + b"9" * 5000).decode(),  # int() refuses > 4,300 digits
    ],
)
def test_a_bad_cursor_is_a_bad_request_naming_after(gql, after):
    body = gql("viewer")(PAGE, {"first": 5, "after": after}, errors=True)
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST" and "after" in error["extensions"]["errors"]


@pytest.mark.parametrize("first", [-1, 101])
def test_first_is_at_most_100(gql, first):
    body = gql("viewer")(PAGE, {"first": first}, errors=True)
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST" and "first" in body["errors"][0]["message"]


def test_the_query_count_does_not_grow_with_the_page(gql, log):
    client = gql("viewer")
    page(client, 1)  # warm the caches of the authentication

    def count(first):
        with CaptureQueriesContext(connection) as queries:
            page(client, first)
        return len(queries)

    assert count(2) == count(7)
