"""GraphQL test helpers: every query goes through the real view (`POST /api/graphql`) with the
real JWTs of the `api(role)` fixture."""

from __future__ import annotations

import pytest

# The live stream's fixtures, for the subscription tests: `token(role)`, and its settings (autouse).
from tests.stream.conftest import _stream_settings, redis_down, token  # noqa: F401 (fixtures, imported to be found here)

URL = "/api/graphql"


class GraphQLClient:
    def __init__(self, client):
        self.client = client
        self.membership = getattr(client, "membership", None)

    def post(self, query: str, variables: dict | None = None):
        return self.client.post(URL, {"query": query, "variables": variables or {}}, format="json")

    def __call__(self, query: str, variables: dict | None = None, *, errors: bool = False) -> dict:
        """The `data` of a query; `errors=True` returns the whole body and expects errors."""
        response = self.post(query, variables)
        assert response.status_code == 200, response.content
        body = response.json()
        if errors:
            assert body.get("errors"), body
            return body
        assert not body.get("errors"), body["errors"]
        return body["data"]


@pytest.fixture
def gql(api):
    """`gql("viewer")` -> a GraphQL client authenticated as a new viewer of `org`."""

    def make(role: str = "manager", **kwargs) -> GraphQLClient:
        return GraphQLClient(api(role, **kwargs))

    return make
