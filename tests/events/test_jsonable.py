"""`events.services.jsonable`: plain values by exact type first, everything else as before."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.db import models

from events.services import jsonable
from slas.models import SlaRule
from tenancy.models import Organization


class Colour(models.TextChoices):
    RED = "red"


def test_payload_values_come_out_as_json_types():
    when = dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC)
    key = uuid.UUID(int=5)
    value = {
        "s": "x", "i": 3, "b": True, "f": 1.5, "n": None, "d": Decimal("17.50"), "t": when, "day": when.date(),
        "u": key, "list": [Decimal("1"), (when, {"x": {1, 2} - {1}})], "nested": {"deep": {"deeper": Decimal("0.1")}},
        Colour.RED: Colour.RED, 7: "int key", False: "bool key",
    }  # fmt: skip
    assert jsonable(value) == {
        "s": "x", "i": 3, "b": True, "f": 1.5, "n": None, "d": "17.50", "t": "2026-03-29T01:30:00Z",
        "day": "2026-03-29", "u": str(key), "list": ["1", ["2026-03-29T01:30:00Z", {"x": [2]}]],
        "nested": {"deep": {"deeper": "0.1"}}, "red": Colour.RED, "7": "int key", "False": "bool key",
    }  # fmt: skip
    # an instant in any zone comes out in UTC with a Z, as the API writes it (found by an outside sweep)
    kiritimati = dt.timezone(dt.timedelta(hours=14))
    assert jsonable(dt.datetime(2000, 1, 1, tzinfo=kiritimati)) == "1999-12-31T10:00:00Z"
    out = jsonable(value)
    assert type(next(k for k in out if k == "red")) is str  # a TextChoices key becomes its plain value


@pytest.mark.django_db
def test_a_model_instance_becomes_its_primary_key():
    org = Organization.objects.create(name="J", slug="j")
    assert jsonable({"organization": org, "rules": [org]}) == {"organization": org.pk, "rules": [org.pk]}
    assert jsonable(SlaRule.Metric.RESPONSE) == "response"
