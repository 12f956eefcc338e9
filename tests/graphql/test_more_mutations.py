"""The second round's mutations, through the real view with real JWTs: each runs its REST endpoint
(same roles, validation messages with GraphQL field paths, idempotency), and answers with the
object or an OperationError."""

from __future__ import annotations

import datetime as dt

import pytest

from billing.models import ExportBatch
from contracts.models import Amendment, Asset
from tests.contracts.factories import make_contract
from workorders.models import ContractRule, VisitPlan

pytestmark = pytest.mark.django_db

ERROR = "... on OperationError { kind message fields { path messages } }"


def fields_of(data) -> dict:
    assert data["__typename"] == "OperationError", data
    return {f["path"]: f["messages"] for f in data["fields"]}


def test_asset_create_update_delete(gql, org):
    client = gql("manager")
    contract = make_contract(org)
    created = client(
        f'mutation {{ createAsset(input: {{name: "Pump", counterpartyId: {contract.counterparty_id}}}) '
        f"{{ ... on Asset {{ id name counterparty {{ id }} }} {ERROR} }} }}"
    )["createAsset"]
    assert created["name"] == "Pump" and int(created["counterparty"]["id"]) == contract.counterparty_id
    pk = created["id"]
    updated = client(f'mutation {{ updateAsset(id: {pk}, input: {{site: "Hall 2"}}) {{ ... on Asset {{ site }} }} }}')
    assert updated["updateAsset"]["site"] == "Hall 2"
    invalid = client(f'mutation {{ updateAsset(id: {pk}, input: {{name: ""}}) {{ __typename {ERROR} }} }}')
    assert "name" in fields_of(invalid["updateAsset"])
    assert client(f"mutation {{ deleteAsset(id: {pk}) {{ __typename }} }}")["deleteAsset"]["__typename"] == "Deleted"
    assert not Asset.objects.filter(pk=pk).exists()
    refused = gql("operator")(f'mutation {{ createAsset(input: {{name: "X"}}) {{ __typename {ERROR} }} }}')
    assert refused["createAsset"]["kind"] == "FORBIDDEN"


def test_amendment_create_submit_and_its_errors(gql, org):
    from tests.ledger.helpers import active_contract

    client = gql("manager")
    contract = active_contract(org)
    created = client(
        f'mutation {{ createAmendment(contractId: {contract.pk}, input: {{effectiveDate: "2026-12-15", '
        f'reason: "More hours", changes: {{hours_budget: "500"}}}}) '
        f"{{ __typename ... on Amendment {{ id status number contract {{ id }} }} {ERROR} }} }}"
    )["createAmendment"]
    assert created["__typename"] == "Amendment", created
    assert created["status"] == "draft" and int(created["contract"]["id"]) == contract.pk
    submitted = client(
        f"mutation {{ submitAmendment(id: {created['id']}) {{ __typename ... on Amendment {{ status }} {ERROR} }} }}"
    )["submitAmendment"]
    assert submitted == {"__typename": "Amendment", "status": "pending_approval"}
    again = client(f"mutation {{ submitAmendment(id: {created['id']}) {{ __typename {ERROR} }} }}")["submitAmendment"]
    assert again["kind"] == "CONFLICT"
    invalid = client(
        f'mutation {{ createAmendment(contractId: {contract.pk}, input: {{reason: ""}}) {{ __typename {ERROR} }} }}'
    )["createAmendment"]
    assert {"reason", "effectiveDate"} <= set(fields_of(invalid))
    assert Amendment.objects.filter(contract=contract).count() == 1


def test_contract_rule_and_its_field_error(gql, org):
    client = gql("manager")
    contract = make_contract(org, status="active")
    created = client(
        f'mutation {{ createContractRule(input: {{name: "Pumps", sequence: 1, outcome: "contract", '
        f"contractId: {contract.pk}}}) {{ __typename ... on ContractRule {{ id outcome contract {{ id }} }} }} }}"
    )["createContractRule"]
    assert created["outcome"] == "contract" and int(created["contract"]["id"]) == contract.pk
    invalid = client(
        f'mutation {{ createContractRule(input: {{name: "X", sequence: 2, outcome: "contract"}}) '
        f"{{ __typename {ERROR} }} }}"
    )["createContractRule"]
    assert fields_of(invalid) == {"contractId": ["Required with outcome contract."]}
    assert ContractRule.objects.filter(organization=org).count() == 1


def test_a_calendar_name_used_twice_is_a_field_error(gql, org):
    from tests.slas.factories import make_calendar

    existing = make_calendar(org, name="UK office hours")
    invalid = gql("manager")(
        'mutation { createCalendar(input: {name: "UK office hours", timeZone: "Europe/London", '
        f'hours: [{{weekday: 1, start: "08:00", end: "17:00"}}]}}) {{ __typename {ERROR} }} }}'
    )["createCalendar"]
    assert fields_of(invalid) == {"name": [f"Already used by calendar {existing.pk}."]}


def test_visit_plan_create_update_delete(gql, org):
    client = gql("manager")
    # The plan starts on the first of next month, inside the contract's term, whatever today is.
    today = dt.date.today()
    first_of_next_month = (today.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    contract = make_contract(
        org, status="active", start_date=today.replace(day=1), expiry_date=today.replace(day=1) + dt.timedelta(days=400)
    )
    created = client(
        f'mutation {{ createVisitPlan(contractId: {contract.pk}, input: {{summary: "Check", '
        f'recurrence: "FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=9", activeFrom: "{first_of_next_month}"}}) '
        f"{{ __typename ... on VisitPlan {{ id summary nextOccurrences }} {ERROR} }} }}"
    )["createVisitPlan"]
    assert created["__typename"] == "VisitPlan", created
    assert created["nextOccurrences"][0].startswith(str(first_of_next_month))
    bad = client(
        f'mutation {{ updateVisitPlan(id: {created["id"]}, input: {{recurrence: "NOT A RULE"}}) '
        f"{{ __typename {ERROR} }} }}"
    )["updateVisitPlan"]
    assert "recurrence" in fields_of(bad)
    deleted = client(f"mutation {{ deleteVisitPlan(id: {created['id']}) {{ __typename }} }}")["deleteVisitPlan"]
    assert deleted["__typename"] == "Deleted" and not VisitPlan.objects.filter(pk=created["id"]).exists()


def test_contract_template_and_billing_export_with_an_idempotency_key(gql, org):
    client = gql("manager")
    template = client(
        'mutation { createContractTemplate(input: {name: "Gold", contractType: "service_contract", termMonths: 12, '
        'currency: "EUR"}) { __typename ... on ContractTemplate { id name contractType } ' + ERROR + " } }"
    )["createContractTemplate"]
    assert template["__typename"] == "ContractTemplate" and template["contractType"] == "service_contract", template
    invalid = client(
        'mutation { createContractTemplate(input: {name: "Bad", termMonths: 500}) { __typename ' + ERROR + " } }"
    )["createContractTemplate"]
    assert "termMonths" in fields_of(invalid)
    export = (
        'mutation { createBillingExport(input: {}, idempotencyKey: "k-1") '
        "{ __typename ... on ExportBatch { id lineCount } } }"
    )
    first = client(export)["createBillingExport"]
    second = client(export)["createBillingExport"]
    assert first["__typename"] == "ExportBatch" and first == second
    assert ExportBatch.objects.filter(organization=org).count() == 1


def test_signature_request_is_created_for_a_contract_awaiting_approval(gql, org):
    client = gql("manager")
    contract = make_contract(org, status="draft")
    refused = client(
        f"mutation {{ createSignatureRequest(contractId: {contract.pk}, "
        f'input: {{name: "Ann", email: "ann@example.com"}}) '
        f"{{ __typename {ERROR} }} }}"
    )["createSignatureRequest"]
    assert refused["__typename"] == "OperationError" and refused["kind"] in ("CONFLICT", "INVALID")
    invalid = client(
        f'mutation {{ createSignatureRequest(contractId: {contract.pk}, input: {{name: "Ann", email: "nope"}}) '
        f"{{ __typename {ERROR} }} }}"
    )["createSignatureRequest"]
    assert "email" in fields_of(invalid)


def test_notification_settings_are_written_by_admins(gql, org):
    mutation = 'mutation { updateNotificationSettings(input: {notificationEmails: [%s]}) { __typename ' \
        "... on NotificationSettings { notificationEmails } " + ERROR + " } }"  # fmt: skip
    done = gql("admin")(mutation % '"ops@example.com"')["updateNotificationSettings"]
    assert done == {"__typename": "NotificationSettings", "notificationEmails": ["ops@example.com"]}
    org.refresh_from_db()
    assert org.notification_emails == ["ops@example.com"]
    invalid = gql("admin")(mutation % '"not-an-address"')["updateNotificationSettings"]
    assert "notificationEmails[0]" in fields_of(invalid) or "notificationEmails" in fields_of(invalid)
    refused = gql("manager")(mutation % '"x@example.com"')["updateNotificationSettings"]
    assert refused["kind"] == "FORBIDDEN"


def test_a_work_order_answered_after_its_resolution_is_refused(gql, org):
    """REST's timestamp rule (responded_at not after resolved_at), with the GraphQL field path."""
    refused = gql("operator")(
        'mutation { createWorkOrder(input: {priority: "high", reportedAt: "2026-11-23T09:00:00Z", '
        'resolvedAt: "2026-11-23T09:30:00Z", respondedAt: "2026-11-25T09:00:00Z", status: "resolved"}) '
        f"{{ __typename {ERROR} }} }}"
    )["createWorkOrder"]
    assert refused["kind"] == "INVALID" and fields_of(refused) == {"respondedAt": ["Must not be after resolved_at."]}


def test_money_finer_than_the_currency_is_refused_as_in_rest(gql, org):
    # Found by an outside tester (REST): a stated amount finer than its currency was rounded without
    # a word. GraphQL's inputs reach the same services, and the error names the field the same way.
    from model_bakery import baker

    from contracts.models import Contract, Counterparty
    from tests.ledger.helpers import active_contract

    client = gql("manager")
    contract = active_contract(org, currency="KWD")
    posted = client(
        f'mutation {{ postLedgerEntry(input: {{contractId: {contract.pk}, entryType: "penalty", hours: "0", '
        f'amount: "0.0004", currency: "KWD", description: "x"}}) {{ __typename {ERROR} }} }}'
    )["postLedgerEntry"]
    assert fields_of(posted) == {"amount": ["Ensure that there are no more than 3 decimal places for KWD."]}
    assert not contract.ledger_entries.exists()
    counterparty = baker.make(Counterparty, organization=org)
    created = client(
        f'mutation {{ createContract(input: {{reference: "G-1", name: "G", contractType: "service_contract", '
        f'counterpartyId: {counterparty.pk}, counterpartyRole: "customer", currency: "EUR", contractValue: "0.001"}}) '
        f"{{ __typename {ERROR} }} }}"
    )["createContract"]
    assert fields_of(created) == {"contractValue": ["Ensure that there are no more than 2 decimal places for EUR."]}
    assert not Contract.objects.filter(reference="G-1").exists()
    amended = client(
        f'mutation {{ createAmendment(contractId: {contract.pk}, input: {{effectiveDate: "2026-12-15", '
        f'reason: "r", changes: {{contract_value: "1000.1235"}}}}) {{ __typename {ERROR} }} }}'
    )["createAmendment"]
    assert fields_of(amended) == {
        "changes.contractValue": ["Ensure that there are no more than 3 decimal places for KWD."]
    }
    # A period's charge is a stated amount too (ninth round): billed as it stands, not rounded.
    charged = client(
        f'mutation {{ createContract(input: {{reference: "G-2", name: "G", contractType: "service_contract", '
        f'counterpartyId: {counterparty.pk}, counterpartyRole: "customer", currency: "JPY", '
        f'billingPeriod: "monthly", periodCharge: "1000.5"}}) {{ __typename {ERROR} }} }}'
    )["createContract"]
    assert fields_of(charged) == {"periodCharge": ["Ensure that there are no more than 0 decimal places for JPY."]}
    amended = client(
        f'mutation {{ createAmendment(contractId: {contract.pk}, input: {{effectiveDate: "2026-12-15", '
        f'reason: "r", changes: {{period_charge: "10.0005"}}}}) {{ __typename {ERROR} }} }}'
    )["createAmendment"]
    assert "changes.periodCharge" in fields_of(amended)
