"""Checks for lists that load their references slimmed (`list_references`, issue 15): a list
shows byte for byte what reading each resource alone shows (whole rows), and its number of
queries does not grow with its rows (a column read but deferred costs one query per row)."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import resolve


def all_fields(url: str) -> str:
    """Every readable field of the collection at `url`, for `?fields=`."""
    return ",".join(resolve(url).func.cls.serializer_class.readable_field_names())


def default_fields(url: str) -> str:
    return ",".join(resolve(url).func.cls.serializer_class.Meta.default_fields)


def assert_list_is_each_alone(client, url: str, made: dict) -> dict:
    """With every field and with the default fields, the list's body is the bodies of each of its
    resources read alone, joined as an array, and it lists exactly `made` ({label: instance}).
    Returns the rows (every field) under the same labels."""
    for fields in (default_fields(url), all_fields(url)):
        listed = client.get(url, {"fields": fields, "per_page": 100})
        assert listed.status_code == 200, listed.content
        by_id = {row["id"]: row for row in listed.json()}
        assert sorted(by_id) == sorted(instance.pk for instance in made.values())
        alone = [client.get(f"{url}/{pk}", {"fields": fields}) for pk in by_id]
        assert all(response.status_code == 200 for response in alone)
        assert listed.content == b"[" + b",".join(response.content for response in alone) + b"]"
    return {label: by_id[instance.pk] for label, instance in made.items()}


def list_queries(client, url: str, fields: str, count: int) -> list[str]:
    """The SQL of one list request (`count` rows expected), the membership already cached."""
    client.get(url, {"per_page": 1})
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, {"fields": fields, "per_page": 100})
    assert response.status_code == 200, response.content
    assert len(response.json()) == count
    return [query["sql"] for query in queries.captured_queries]
