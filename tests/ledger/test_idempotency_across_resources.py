"""An `Idempotency-Key` is the organization's across the resources that take one (ledger entries,
billing exports): reused on another resource it is a 422 that names no object of that resource,
which the caller may not be allowed to read (found by an attacker's sweep: an operator posting
work with the key a manager had used for a billing export was told "Already used for
billing_exports 7"; billing exports are closed to operators)."""

from __future__ import annotations

import pytest

from billing.models import ExportBatch
from ledger.models import IdempotencyKey, LedgerEntry

from .helpers import active_contract, credit
from .test_ledger_api import body as _work  # a work entry's body

KEY = "nightly-2026-03-01"

pytestmark = pytest.mark.django_db


def _export(api, contract) -> int:
    response = api("manager").post(
        "/api/v1/billing_exports", {"contract_id": contract.pk}, format="json", HTTP_IDEMPOTENCY_KEY=KEY
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_an_operator_reusing_a_managers_export_key_is_told_nothing_of_the_export(api, org):
    contract = active_contract(org)
    credit(contract, 10)
    export = _export(api, contract)
    response = api("operator").post("/api/v1/ledger_entries", _work(contract), format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    assert response.status_code == 422, response.content
    assert response.json() == {
        "message": "This Idempotency-Key was used for another request.",
        "errors": {"Idempotency-Key": ["Already used for another resource; send a new key."]},
    }
    assert "billing_exports" not in response.content.decode() and str(export) not in response.content.decode()
    assert not LedgerEntry.objects.filter(entry_type="work").exists()
    assert IdempotencyKey.objects.get().resource == "billing_exports"


def test_graphql_says_the_same_under_its_argument(api, org):
    contract = active_contract(org)
    credit(contract, 10)
    export = _export(api, contract)
    work = _work(contract)
    query = (
        f'mutation {{ postLedgerEntry(idempotencyKey: "{KEY}", input: {{contractId: {contract.pk}, '
        f'entryType: "work", hours: "1.50", workOrderId: {work["work_order_id"]}, '
        f'occurredAt: "2026-03-03T10:00:00Z"}}) {{ __typename ... on OperationError {{ kind message '
        f"fields {{ path messages }} }} }} }}"
    )
    answer = api("operator").post("/api/graphql", {"query": query}, format="json").json()["data"]["postLedgerEntry"]
    assert answer == {
        "__typename": "OperationError",
        "kind": "INVALID",
        "message": "This Idempotency-Key was used for another request.",
        "fields": [{"path": "idempotencyKey", "messages": ["Already used for another resource; send a new key."]}],
    }
    assert str(export) not in str(answer)


def test_on_its_own_resource_the_key_still_names_what_it_made(api, org):
    contract = active_contract(org)
    export = _export(api, contract)
    response = api("manager").post(
        "/api/v1/billing_exports", {"date_to": "2026-01-01"}, format="json", HTTP_IDEMPOTENCY_KEY=KEY
    )
    assert response.status_code == 422, response.content
    assert response.json()["errors"]["Idempotency-Key"] == [f"Already used for billing_exports {export}."]
    assert ExportBatch.objects.count() == 1
