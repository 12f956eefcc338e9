"""Pages written from rows (config.api.rows, issue 15) are byte for byte the pages written from
instances: every collection of the API, on the demo data, with its default fields, with every
field, and with its last field alone, sorted by each of its sort keys. Generic: a collection added
later is compared as soon as the URLconf routes it."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework import serializers

from config.api import rows, viewsets
from config.api.viewsets import ResourceViewSet

# Collections written from instances, and why (a field that reads the instance its own way).
INSTANCE_ONLY: dict[str, str] = {}


@pytest.fixture
def demo_username() -> str:
    return "demo-admin"  # every collection, the members' too


def list_routes(patterns=None, prefix=""):
    """(route, viewset class) of every ResourceViewSet's list route."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from list_routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            cls = getattr(pattern.callback, "cls", None)
            actions = getattr(pattern.callback, "actions", {}) or {}
            if cls and issubclass(cls, ResourceViewSet) and actions.get("get") == "list":
                yield route, cls


def concrete_urls(client, route: str) -> list[str]:
    """The list's URLs on the demo data: one per parent for a nested collection."""
    path = "/" + route.replace("^", "").replace("$", "").replace("\\.(?P<format>[a-z0-9]+)/?", "")
    if "(?P<" not in path:
        return [path.rstrip("/")]
    parent, rest = path.split("/(?P<", 1)
    rest = rest.split(")", 1)[1]
    ids = [row["id"] for row in client.get(parent, {"per_page": 100, "fields": "id"}).json()]
    return [f"{parent}/{pk}{rest}".rstrip("/") for pk in ids]


def _body(client, url, params, from_rows: bool, monkeypatch) -> bytes:
    monkeypatch.setattr(viewsets, "row_plan", rows.row_plan if from_rows else lambda serializer: None)
    response = client.get(url, params)
    assert response.status_code == 200, (url, params, response.content[:300])
    return response.content


def test_every_list_the_same_from_rows_as_from_instances(demo, monkeypatch):
    # One instant for both ways of writing a page (the clocks' minutes, a link's expiry).
    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now)
    compared, from_rows = {}, set()
    for route, cls in list_routes():
        serializer = cls.serializer_class
        readable = serializer.readable_field_names()
        variants = [{}, {"fields": ",".join(readable)}, {"fields": readable[-1]}]
        variants += [{"sort": key} for key in getattr(cls, "sort_fields", {})]
        variants += [{"sort": f"-{key}", "fields": ",".join(readable)} for key in getattr(cls, "sort_fields", {})]
        for url in concrete_urls(demo, route):
            for params in variants:
                params = {**params, "per_page": 100}
                instances = _body(demo, url, params, False, monkeypatch)
                written = _body(demo, url, params, True, monkeypatch)
                assert written == instances, (url, params)
                compared[url] = len(written)
        default = list(getattr(serializer.Meta, "default_fields", [])) or None
        if rows.row_plan(serializer(fields=default, context={})) is not None:
            from_rows.add(route)
    # The demo data fills the collections, so the comparisons compare something.
    assert sum(1 for size in compared.values() if size > 2) >= 20, compared
    instance_only = {route for route, _ in list_routes()} - from_rows
    assert {name for name in INSTANCE_ONLY if any(name in route for route in instance_only)} == set(INSTANCE_ONLY)
    unexpected = sorted(route for route in instance_only if not any(name in route for name in INSTANCE_ONLY))
    assert not unexpected, "\n".join(unexpected)


@pytest.mark.parametrize("zone", [dt.UTC, ZoneInfo("UTC"), ZoneInfo("Europe/Amsterdam")], ids=str)
def test_instants_written_as_drf_writes_them(zone):
    # `utc_text` formats UTC instants itself (faster than isoformat): the same text as DRF's
    # DateTimeField for instants in any zone, with and without microseconds, early years included.
    field = serializers.DateTimeField(default_timezone=zone)
    offsets = [dt.UTC, ZoneInfo("UTC"), ZoneInfo("America/St_Johns"), dt.timezone(dt.timedelta(hours=-11))]
    moments = [
        dt.datetime(2026, 3, 29, 0, 59, 59, 999999),
        dt.datetime(2026, 3, 29, 1, 0, 0),
        dt.datetime(2026, 10, 25, 1, 30, 0, 1),
        dt.datetime(1970, 1, 1),
        dt.datetime(999, 12, 31, 23, 59, 59, 500000),
        dt.datetime(2, 1, 1, 12),
        dt.datetime(9998, 12, 31, 0, 0, 0, 10),
    ]
    values = [moment.replace(tzinfo=offset) for moment in moments for offset in offsets]
    for value in values:
        assert rows.instant_text(value, zone) == field.to_representation(value), value
    assert rows.instant_text(None, zone) is None


def test_readable_field_names_are_the_fields_an_instance_shows():
    """`readable_field_names` reads the fields built once per class (issue 15); it must name what a
    serializer instance shows, in the same order, for every collection's serializer."""
    checked = 0
    for _, cls in list_routes():
        serializer_class = cls.serializer_class
        if not hasattr(serializer_class, "readable_field_names"):
            continue
        shown = [name for name, field in serializer_class().fields.items() if not field.write_only]
        assert serializer_class.readable_field_names() == shown, serializer_class.__name__
        checked += 1
    assert checked >= 20
