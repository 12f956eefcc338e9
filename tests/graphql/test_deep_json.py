"""JSON GraphQL reads with REST's bounds (config.api.parsers.loads), found by an outside tester:
strawberry's plain json.loads let a body about 1,000 levels deep exhaust the recursion, a 500 over
HTTP (any role) and, over the WebSocket, a dead handler on a socket left open. Through the real
view with real JWTs, and config.asgi.application with Channels' WebsocketCommunicator."""

from __future__ import annotations

import json

import pytest
from channels.testing import WebsocketCommunicator

from config.api.parsers import MAX_JSON_DEPTH
from tests.stream.conftest import closed_with, run

from .conftest import URL
from .test_subscriptions import PROTOCOL, SUBSCRIPTION, acked

ME = "{ me { role } }"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def post_raw(client, text: str):
    return client.client.post(URL, text, content_type="application/json")


@pytest.mark.django_db
class TestOverHttp:
    @pytest.mark.parametrize("depth", [MAX_JSON_DEPTH, 1000, 5000])
    def test_a_body_nested_too_deep_is_rests_400(self, gql, depth):
        response = post_raw(gql("viewer"), f'{{"query": "{ME}", "variables": {{"x": {nested(depth)}}}}}')
        assert response.status_code == 400, response.content
        assert response.json() == {
            "message": f"Malformed request body: JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels"
        }

    def test_one_key_in_several_objects_is_fine(self, gql):
        body = '{"query": "{ me { role } }", "variables": {"query": {"query": 1}}}'
        response = post_raw(gql("viewer"), body)
        assert response.status_code == 200, response.content
        assert response.json()["data"]["me"]["role"] == "viewer"

    def test_a_body_within_the_bound_runs(self, gql):
        # The body is level 1, `variables` 2: a value of 30 levels ends at REST's 32.
        response = post_raw(gql("viewer"), f'{{"query": "{ME}", "variables": {{"x": {nested(MAX_JSON_DEPTH - 2)}}}}}')
        assert response.status_code == 200, response.content
        assert response.json()["data"]["me"]["role"] == "viewer"

    def test_variables_in_the_query_string_are_bounded_too(self, gql):
        response = gql("viewer").client.get(URL, {"query": ME, "variables": json.dumps({"x": json.loads(nested(40))})})
        assert response.status_code == 400, response.content
        assert response.json()["message"].startswith("Malformed query string: JSON parse error - nested deeper")

    @pytest.mark.parametrize(
        "text, why",
        [
            ('{"query": "{ me { role } }", "variables": {"x": "a\\u0000b"}}', "NUL"),
            ('{"query": "{ me { role } }"', "Expecting"),
            # Not JSON (RFC 8259), and refused in REST by DRF: json.loads took them, so a JSON
            # input (an asset's location, a coverage area) could carry a NaN into the database.
            ('{"query": "{ me { role } }", "variables": {"x": NaN}}', "NaN"),
            ('{"query": "{ me { role } }", "variables": {"x": [1, -Infinity]}}', "-Infinity"),
            # One key twice: REST refuses it too (a reader that takes the first runs another query).
            ('{"query": "{ me { role } }", "query": "{ me { role } }"}', 'the key "query" appears twice'),
        ],
    )
    def test_other_unreadable_bodies_are_400s_saying_why(self, gql, text, why):
        response = post_raw(gql("viewer"), text)
        assert response.status_code == 400, response.content
        assert response.json()["message"].startswith("Malformed request body: JSON parse error - ")
        assert why in response.json()["message"]

    @pytest.mark.parametrize("text", ["null", "1", "true", '"{ me { role } }"'])
    def test_a_body_that_is_json_but_no_operation_is_a_400(self, gql, text):
        # Found by the ninth round's attacker: strawberry called `.get` on it, a 500.
        response = post_raw(gql("viewer"), text)
        assert response.status_code == 400, response.content
        assert response.json() == {"message": "The GraphQL request body must be a JSON object (an operation)."}

    def test_variables_that_are_no_object_keep_strawberrys_answer(self, gql):
        response = gql("viewer").client.get(URL, {"query": ME, "variables": "1"})
        assert response.status_code == 400, response.content
        assert "`variables` must be an object" in response.json()["message"]


class TestOverTheWebSocket:
    """graphql-transport-ws closes a message it cannot read with 4400, and within 5 s: before the
    10 s init timeout, which a socket with a dead handler used to outlive."""

    pytestmark = pytest.mark.django_db(transaction=True)

    @pytest.mark.parametrize("depth", [MAX_JSON_DEPTH - 1, 5000])
    def test_a_deep_connection_init_is_closed_4400(self, depth):
        async def scenario():
            from config.asgi import application

            comm = WebsocketCommunicator(application, "/api/graphql", subprotocols=[PROTOCOL])
            ok, _ = await comm.connect(timeout=5)
            assert ok
            payload = '{"token": ' + nested(depth) + "}"  # a dict: not the protocol's own 4400 for a bad payload
            await comm.send_to(text_data='{"type": "connection_init", "payload": ' + payload + "}")
            code, before = await closed_with(comm, timeout=5)
            assert (code, before) == (4400, [])

        run(scenario)

    def test_a_deep_subscribe_is_closed_4400(self, token):
        async def scenario():
            comm = await acked(token("viewer"))
            frame = {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION, "variables": {}}}
            text = json.dumps(frame).replace('"variables": {}', '"variables": {"types": ' + nested(5000) + "}")
            await comm.send_to(text_data=text)
            code, before = await closed_with(comm, timeout=5)
            assert (code, before) == (4400, [])

        run(scenario)
