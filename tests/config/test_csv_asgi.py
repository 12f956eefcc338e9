"""CSV exports under ASGI are streamed chunk by chunk, as under WSGI (`config.api.csv.pulled`).

Django serves a sync iterator under ASGI by consuming it whole first (`sync_to_async(list)`, with
a warning), so an export served by uvicorn or daphne (`make run`, the README's production
workers) held every row in memory before its first byte went out. Through Django's ASGI handler
(AsyncClient) and, for the same bytes, the WSGI test client."""

from __future__ import annotations

import pytest
from django.test import AsyncClient, Client
from model_bakery import baker

from config.api.csv import CHUNK_SIZE
from contracts.models import Counterparty
from tenancy.auth import issue_tokens
from tests.stream.conftest import run

pytestmark = pytest.mark.django_db(transaction=True)

EXPORTS = [
    "/api/v1/counterparties?format=csv&sort=id",
    "/api/v1/reports/sla_compliance?format=csv&from=2026-01-01&to=2026-12-31",
]


@pytest.fixture
def auth(make_member, org):
    return f"Bearer {issue_tokens(make_member('manager', org))['access']}"


@pytest.mark.parametrize("url", EXPORTS)
def test_an_export_under_asgi_is_an_async_stream_of_the_same_bytes(org, auth, url):
    baker.make(Counterparty, organization=org, kind="customer", _quantity=CHUNK_SIZE * 2 + 7, _bulk_create=True)

    async def scenario():
        response = await AsyncClient().get(url, headers={"Authorization": auth})
        assert response.status_code == 200 and response.is_async  # not buffered whole by Django
        return b"".join([chunk async for chunk in response.streaming_content])

    served = run(scenario)
    wsgi = Client().get(url, headers={"Authorization": auth})
    assert not wsgi.is_async  # WSGI streams the sync iterator as it is
    assert served == b"".join(wsgi.streaming_content)
    if "counterparties" in url:
        assert served.count(b"\r\n") == CHUNK_SIZE * 2 + 7 + 1  # every row and the header

