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
