"""One-line text (a model CharField: names, references, sites, reasons) holds no control character,
in REST and GraphQL alike (`config.api.serializers.single_line`). A calendar's name with a line
break was taken and then flattened or escaped by each output (iCalendar, CSV, e-mail, PDF)."""

from __future__ import annotations

import pytest

from tests.contracts.factories import make_contract
from tests.slas.factories import OFFICE_HOURS

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    # C0, DEL, C1; the line and paragraph separators; a right-to-left override and an isolate
    "char",
    ["\n", "\r", "\t", "\x1b", "\x7f", "\x85", "\u2028", "\u2029", "\u202e", "\u2067"],
)
def test_a_name_with_a_control_character_is_a_422_naming_it(api, char):
    client = api("manager")
    response = client.post(
        "/api/v1/calendars", {"name": f"Office{char}hours", "time_zone": "UTC", "hours": OFFICE_HOURS}, format="json"
    )
    assert response.status_code == 422, response.content
    assert response.json()["errors"] == {
        "name": [f"Must be one line of text without control characters (found U+{ord(char):04X})."]
    }


def test_every_one_line_field_refuses_them_on_create_and_edit(api, org):
    client = api("manager")
    contract = make_contract(org)
    edited = client.patch(f"/api/v1/contracts/{contract.pk}", {"reference": "C-1\nC-2"}, format="json")
    assert edited.status_code == 422 and set(edited.json()["errors"]) == {"reference"}, edited.content
    created = client.post(
        "/api/v1/counterparties", {"name": "Fleet\x07Co", "kind": "customer", "phone": "1\n2"}, format="json"
    )
    assert created.status_code == 422 and set(created.json()["errors"]) >= {"phone"}, created.content


def test_multi_line_text_and_other_letters_are_kept(api):
    client = api("manager")
    # Right-to-left text with its implicit mark (RLM), and an emoji joined by ZWJ, stay as sent.
    name = "Ørsted – Zürich 東京 ✓ שלום\u200f 👩\u200d🔧"
    body = {"name": name, "kind": "customer", "address": "Street 1\nCity", "remarks": "a\r\nb\tc"}
    created = client.post("/api/v1/counterparties", body, format="json")
    assert created.status_code == 201, created.content
    assert {k: created.json()[k] for k in body} == body


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/counterparties", {"name": "Fleet", "source": "crm", "sourceID": "C-1\u202e"}, "sourceID"),
        ("/api/v1/counterparties", {"name": "Fleet", "source": "crm\x07", "sourceID": "C-1"}, "source"),
        ("/api/v1/counterparties", {"name": "Fleet", "source": "crm", "sourceID": "C\u20281"}, "sourceID"),
    ],
)
def test_source_and_source_id_refuse_them_too(api, path, body, field):
    # Declared by SourceFieldsMixin rather than built from the model, they stored a bidi override
    # or a BEL that `name` beside them refused (regression sweep, tenth round).
    response = api("manager").post(path, body, format="json")
    assert response.status_code == 422, response.content
    assert set(response.json()["errors"]) == {field}, response.content


# Codes checked against a list or parser of their own (a zone name, an ISO 4217 code, the contract's
# currency, a country or subdivision code, an RRULE: a control character is no part of any of them).
CODES = {
    "ContractSerializer.time_zone",
    "ContractSerializer.currency",
    "LedgerEntrySerializer.currency",
    "CalendarSerializer.time_zone",
    "CalendarSerializer.holiday_country",
    "CalendarSerializer.holiday_subdivision",
    "VisitPlanSerializer.recurrence",
}


def test_every_declared_char_field_of_a_one_line_column_refuses_them():
    """Generic: each writable `CharField` a resource's serializer declares itself (not built from the
    model, so without the toolkit's `single_line`) over a model `CharField` takes `single_line`."""
    from django.core.exceptions import FieldDoesNotExist
    from django.db import models
    from rest_framework import serializers

    from config.api.serializers import single_line
    from tests.config.test_rows import list_routes

    missing = []
    for route, cls in list_routes():
        serializer_class = getattr(cls, "serializer_class", None)
        if serializer_class is None or not hasattr(serializer_class, "Meta"):
            continue
        model = serializer_class.Meta.model
        for name, field in serializer_class().fields.items():
            if type(field) is not serializers.CharField or field.read_only:
                continue
            try:
                column = model._meta.get_field(field.source)
            except FieldDoesNotExist:  # not a column of the model
                continue
            if f"{serializer_class.__name__}.{name}" in CODES:
                continue
            if type(column) is models.CharField and not column.choices and single_line not in field.validators:
                missing.append(f"{serializer_class.__name__}.{name} ({route})")
    assert missing == [], missing


def test_a_hold_reason_refuses_them(api, org):
    from tests.workorders.factories import make_job

    job = make_job(org)
    response = api("operator").patch(
        f"/api/v1/work_orders/{job.pk}", {"status": "on_hold", "hold_reason": "Parts\u202e"}, format="json"
    )
    assert response.status_code == 422, response.content
    assert set(response.json()["errors"]) == {"hold_reason"}, response.content
