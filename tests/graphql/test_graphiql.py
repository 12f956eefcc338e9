"""GraphiQL at `GET /api/graphql` for a browser, with its assets served by the service: the page
names no external host, and every asset it names is served (no CDN, works offline)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from tests.graphql.conftest import URL

pytestmark = pytest.mark.django_db


class Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def page(anon):
    response = anon.get(URL, HTTP_ACCEPT="text/html,application/xhtml+xml")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    return response.content.decode()


def test_the_page_names_no_external_host(anon):
    html = page(anon)
    assert "GraphiQL" in html
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.IGNORECASE), "an external host"
    parser = Assets()
    parser.feed(html)
    assert parser.urls, "the page loads its assets"
    for url in parser.urls:
        assert url.startswith(("/static/graphiql/", "data:")), url


def test_every_asset_it_names_is_served_by_the_service(anon):
    parser = Assets()
    parser.feed(page(anon))
    kinds = set()
    for url in [u for u in parser.urls if not u.startswith("data:")]:
        response = anon.get(url)
        assert response.status_code == 200, url
        body = b"".join(response.streaming_content)
        assert len(body) > 1000, url
        kinds.add(url.rsplit(".", 1)[-1])
    assert kinds == {"js", "css"}
    assert any("graphiql.min.js" in url for url in parser.urls)


def test_the_page_needs_no_token_but_the_api_does(anon):
    page(anon)
    response = anon.get(URL, HTTP_ACCEPT="application/json")
    assert response.status_code == 401
