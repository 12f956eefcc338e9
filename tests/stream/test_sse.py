"""GET /api/v1/events/stream (Server-Sent Events): under ASGI through Django's AsyncClient (the
async streaming response: replay, then live, until the client goes), under WSGI through the test
client (what is stored, then the end and a `retry:`). A real ASGI server is in test_e2e."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from django.test import AsyncClient, Client

from tenancy.auth import issue_tokens
from tests.events.helpers import emit

from .conftest import run, write

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/events/stream"


def parse(text: str) -> list[dict]:
    """SSE frames as dicts of their fields (comments under ":")."""
    frames = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        frame: dict = {}
        for line in block.split("\n"):
            field, _, value = line.partition(":")
            frame.setdefault(field, []).append(value[1:] if value.startswith(" ") else value)
        frames.append({k: "\n".join(v) for k, v in frame.items()})
    return frames


def event_ids(frames) -> list[int]:
    return [int(f["id"]) for f in frames if "data" in f and "event" not in f]


@pytest.fixture
def bearer(make_member, org):
    def make(role="viewer", organization=None):
        return f"Bearer {issue_tokens(make_member(role, organization or org))['access']}"

    return make


def _emit(org, kind="thing.happened") -> int:
    return emit(org, kind).pk


def get(auth, query="", **headers):
    response = Client().get(URL + query, HTTP_AUTHORIZATION=auth, **headers)
    body = b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()
    return response, body


# --- WSGI: the stored events after the cursor, then the end -------------------------------------------


def test_replays_after_since_and_ends_with_retry(bearer, org, other_org):
    ids = [_emit(org) for _ in range(4)]
    _emit(other_org)
    response, body = get(bearer(), f"?since={ids[0]}", HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream") and response["Cache-Control"] == "no-cache"
    frames = parse(body)
    assert frames[0]["retry"] == "2000"
    assert event_ids(frames) == ids[1:]
    assert frames[-1] == {"id": str(ids[-1]), "": "heartbeat"}


def test_last_event_id_wins_over_since(bearer, org):
    ids = [_emit(org) for _ in range(3)]
    _, body = get(bearer(), "?since=0", HTTP_LAST_EVENT_ID=str(ids[1]))
    assert event_ids(parse(body)) == ids[2:]


def test_data_is_the_event_as_the_rest_api_shows_it(bearer, org, api):
    event_id = _emit(org, "contract.state_changed")
    _, body = get(bearer(), f"?since={event_id - 1}")
    (frame,) = [f for f in parse(body) if "data" in f]
    assert json.loads(frame["data"]) == api("viewer").get(f"/api/v1/events?since={event_id - 1}").json()[0]


def test_type_globs_and_event_filters(bearer, org):
    kinds = ["breach.detected", "contract.created", "breach.waived", "contract.state_changed"]
    ids = dict(zip(kinds, [_emit(org, k) for k in kinds], strict=True))
    _, body = get(bearer(), "?since=0&types=breach.*,contract.state_changed")
    frames = parse(body)
    assert event_ids(frames) == [ids["breach.detected"], ids["breach.waived"], ids["contract.state_changed"]]
    assert frames[-1]["id"] == str(ids["contract.state_changed"])
    _, body = get(bearer(), "?since=0&type=contract.created,breach.waived")
    assert event_ids(parse(body)) == [ids["contract.created"], ids["breach.waived"]]
    _, body = get(bearer(), "?since=0&types=contract.*&type=!contract.created")
    assert event_ids(parse(body)) == [ids["contract.state_changed"]]


def test_a_filter_that_matches_nothing_still_moves_the_cursor(bearer, org):
    last = [_emit(org) for _ in range(3)][-1]
    _, body = get(bearer(), "?since=0&types=breach.*")
    frames = parse(body)
    assert event_ids(frames) == [] and frames[-1]["id"] == str(last)


def test_a_since_older_than_the_replay_window_gets_a_reset(bearer, org, settings):
    settings.STREAM = {**settings.STREAM, "REPLAY_LIMIT": 2}
    ids = [_emit(org) for _ in range(4)]
    _, body = get(bearer(), "?since=0")
    frames = parse(body)
    assert {**frames[1], "data": json.loads(frames[1]["data"])} == {
        "event": "reset",
        "id": str(ids[-1]),
        "data": {"type": "reset", "cursor": ids[-1]},
    }
    assert event_ids(frames) == []


@pytest.mark.parametrize(
    "query, field",
    [
        ("?since=abc", "since"),
        ("?since=-1", "since"),
        # ASCII digits only, up to the largest id, as /api/v1/events (found by an outside sweep:
        # an Arabic-Indic three was cursor 3)
        ("?since=%D9%A3", "since"),
        ("?since=9223372036854775808", "since"),
        ("?since=" + "9" * 5000, "since"),
        ("?types=a%20b", "types"),
        ("?types=*a*a*a*a*a*Q", "types"),  # more than 4 wildcards
        ("?color=red", "color"),
        # the toolkit's collection parameters, which the stream does not honour (it answered every
        # event, every field, in order: found by an outside sweep)
        ("?fields=id", "fields"),
        ("?sort=-id", "sort"),
        ("?page=9", "page"),
        ("?per_page=1", "per_page"),
    ],
)
def test_bad_parameters_are_400_in_the_envelope(bearer, query, field):
    response, body = get(bearer(), query)
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert field in json.loads(body)["errors"]


def test_a_last_event_id_that_is_not_ascii_digits_is_400(bearer, api):
    for value in ("\u0663", "\uff13", "1\u0662"):  # Arabic-Indic 3, fullwidth 3, a mix
        response, body = get(bearer(), "", HTTP_LAST_EVENT_ID=value)
        assert response.status_code == 400 and "since" in json.loads(body)["errors"], value
    # the rule of GET /api/v1/events?since=
    assert api("viewer").get("/api/v1/events?since=%D9%A3").status_code == 400


def test_without_a_token_401_in_the_envelope():
    response = Client().get(URL, HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 401 and response["Content-Type"] == "application/json"
    assert "message" in response.json()


def test_tenancy_wall(bearer, org, other_org):
    mine = [_emit(org) for _ in range(2)]
    theirs = [_emit(other_org) for _ in range(2)]
    _, body = get(bearer("admin", other_org), "?since=0")
    assert event_ids(parse(body)) == theirs
    _, body = get(bearer(), "?since=0")
    assert event_ids(parse(body)) == mine


def test_it_is_in_the_openapi_schema(api):
    schema = api("viewer").get("/api/v1/schema?format=json").json()
    operation = schema["paths"]["/api/v1/events/stream"]["get"]
    assert "text/event-stream" in operation["responses"]["200"]["content"]


# --- ASGI: an async stream that follows live ------------------------------------------------------------


async def read_frames(response, count: int, timeout: float = 5) -> list[dict]:
    """Read the stream until `count` event frames arrived (frames are never split by the server)."""
    text = ""
    iterator = response.streaming_content.__aiter__()
    while len(event_ids(parse(text))) < count:
        chunk = await asyncio.wait_for(iterator.__anext__(), timeout)
        text += chunk.decode() if isinstance(chunk, bytes) else chunk
    return parse(text)


def test_under_asgi_it_replays_then_follows_live(bearer, org, other_org):
    auth = bearer()

    async def scenario():
        ids = [(await write(org)).pk for _ in range(3)]
        response = await AsyncClient().get(f"{URL}?since={ids[0]}", headers={"Authorization": auth})
        assert response.status_code == 200 and response.is_async
        frames = await read_frames(response, 2)
        assert event_ids(frames) == ids[1:]
        await write(other_org)
        live = [(await write(org)).pk for _ in range(2)]
        frames = await read_frames(response, 2)
        assert event_ids(frames) == live
        await response.streaming_content.aclose()

    run(scenario)


def test_under_asgi_heartbeats_carry_the_cursor(bearer, org, _stream_settings):
    _stream_settings["HEARTBEAT"] = 0.2
    auth = bearer()

    async def scenario():
        last = (await write(org, "contract.created")).pk
        response = await AsyncClient().get(f"{URL}?types=breach.*", headers={"Authorization": auth})
        iterator = response.streaming_content.__aiter__()
        text = ""
        while "heartbeat" not in text:
            chunk = await asyncio.wait_for(iterator.__anext__(), 3)
            text += chunk.decode() if isinstance(chunk, bytes) else chunk
        assert parse(text)[-1] == {"id": str(last), "": "heartbeat"}
        await response.streaming_content.aclose()

    run(scenario)


def test_under_asgi_removing_the_membership_ends_the_stream_before_the_next_event(make_member, org):
    """Found by an outside sweep: the stream went on delivering until the token expired."""
    from channels.db import database_sync_to_async

    from tenancy.models import Membership

    membership = make_member("viewer", org)
    auth = f"Bearer {issue_tokens(membership)['access']}"
    remove = database_sync_to_async(lambda: Membership.objects.get(pk=membership.pk).delete())

    async def scenario():
        response = await AsyncClient().get(URL, headers={"Authorization": auth})
        first = (await write(org)).pk
        assert event_ids(await read_frames(response, 1)) == [first]
        await remove()
        await write(org, secret="after removal")
        text, iterator = "", response.streaming_content.__aiter__()
        with contextlib.suppress(StopAsyncIteration):  # the stream ends: nothing after the removal
            while True:
                chunk = await asyncio.wait_for(iterator.__anext__(), 5)
                text += chunk.decode() if isinstance(chunk, bytes) else chunk
        assert "after removal" not in text and "membership" in text
        again = await AsyncClient().get(URL, headers={"Authorization": auth})
        assert again.status_code == 401

    run(scenario)


def test_under_asgi_with_redis_down_the_stream_follows_by_re_reads(bearer, org, settings, _stream_settings):
    """Redis refusing (the channel layer's group_add fails): the stream was an ASGI error right after
    its 200 and delivered nothing; now it replays and follows live without its pokes."""
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}
    }
    channel_layers.backends.clear()
    _stream_settings["HEARTBEAT"] = 0.2
    auth = bearer()

    async def scenario():
        ids = [(await write(org)).pk for _ in range(3)]
        response = await AsyncClient().get(f"{URL}?since={ids[0]}", headers={"Authorization": auth})
        assert response.status_code == 200 and response.is_async
        assert event_ids(await read_frames(response, 2)) == ids[1:]
        live = (await write(org)).pk  # its poke fails too (the write stands)
        assert event_ids(await read_frames(response, 1)) == [live]
        await response.streaming_content.aclose()

    run(scenario)
