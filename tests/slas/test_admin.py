"""The SLA rule admin checks what the API checks, before anything is saved, and every admin form
keeps an object's references inside its organization (found by an outside sweep of the admin)."""

import pytest
from django.contrib.admin.models import LogEntry

from contracts.models import Contract, Counterparty
from events.models import Event
from slas.models import SlaRule
from tenancy.models import Organization


def rule_form(contract, **fields) -> dict:
    return {
        "organization": contract.organization_id,
        "contract": contract.pk,
        "name": "Critical response",
        "metric": "response",
        "priorities": '["critical"]',
        "target_minutes": "60",
        "calendar": "",
        "escalation": "[]",
        "penalty": "null",
        "monthly_penalty_cap": "",
        "active": "on",
        "effective_from_0": "2026-01-01",
        "effective_from_1": "00:00:00",
        "effective_to_0": "",
        "effective_to_1": "",
        **fields,
    }


def refused(response, text: str) -> None:
    assert response.status_code == 200, response.status_code  # the form again, with its errors
    page = response.content.decode()
    assert "errornote" in page and text in page, page[page.find("errornote") - 200 : page.find("errornote") + 2000]


@pytest.mark.parametrize(
    "fields, text",
    [
        ({"escalation": '[{"at_percent": "abc", "name": 5, "notify": "x"}]'}, "escalation"),
        ({"penalty": '{"fixed_amount": "-50"}'}, "penalty"),
        ({"priorities": '["bogus"]'}, "priorities"),
        ({"target_minutes": "0"}, "target_minutes"),
    ],
)
def test_a_rule_the_api_refuses_is_refused_on_the_form(demo_staff, fields, text):
    draft = Contract.objects.get(reference="DEMO-PS-001")
    before = SlaRule.objects.count()
    refused(demo_staff.post("/admin/slas/slarule/add/", rule_form(draft, **fields)), text)
    assert SlaRule.objects.count() == before


def test_a_good_rule_is_created_through_the_service(demo_staff):
    draft = Contract.objects.get(reference="DEMO-PS-001")
    response = demo_staff.post("/admin/slas/slarule/add/", rule_form(draft))
    assert response.status_code == 302, response.content.decode()[:3000]
    rule = SlaRule.objects.get(contract=draft, name="Critical response")
    assert (
        Event.objects.filter(type="sla_rule.created", object_id=rule.pk).count() == 1
    )  # once: the dry run rolled back


def test_a_blank_effective_from_is_the_apis_default_and_the_page_says_the_time_zone(demo_staff):
    # Found by an outside sweep: the admin required a typed effective_from, read as UTC, so a rule
    # typed as the start date at 00:00 missed a contract's first local hours (Amsterdam: one).
    from slas.services import default_effective_from

    draft = Contract.objects.get(reference="DEMO-PS-001")
    draft.time_zone = "Asia/Tokyo"  # far from UTC: local midnight is 15:00 the day before
    draft.save(update_fields=["time_zone"])
    page = demo_staff.get("/admin/slas/slarule/add/").content.decode()
    assert "Blank: from the start of the contract's start date in its time zone" in page
    assert "Times are in UTC." in page
    response = demo_staff.post("/admin/slas/slarule/add/", rule_form(draft, effective_from_0="", effective_from_1=""))
    assert response.status_code == 302, response.content.decode()[:3000]
    rule = SlaRule.objects.get(contract=draft, name="Critical response")
    assert rule.effective_from == default_effective_from(draft) == draft.start_of_day(draft.start_date)
    assert rule.effective_from.hour == 15
    # An existing rule keeps a required start: blanking it is no way to "default" it again.
    change = demo_staff.get(f"/admin/slas/slarule/{rule.pk}/change/").content.decode()
    assert "Times are in UTC." in change and "Blank:" not in change


def test_a_change_the_service_refuses_is_an_error_on_the_form_not_a_success(demo_staff):
    rule = SlaRule.objects.filter(contract__status="active").first()
    target = rule.target_minutes
    data = rule_form(
        rule.contract,
        name=rule.name,
        metric=rule.metric,
        priorities=str(rule.priorities).replace("'", '"'),
        target_minutes=str(target + 5),
        calendar=rule.calendar_id or "",
        escalation=str(rule.escalation or []).replace("'", '"').replace("True", "true").replace("False", "false"),
        effective_from_0=rule.effective_from.date().isoformat(),
        effective_from_1=rule.effective_from.time().isoformat(),
    )
    if rule.pause_on_hold:
        data["pause_on_hold"] = "on"
    logged = LogEntry.objects.count()
    refused(demo_staff.post(f"/admin/slas/slarule/{rule.pk}/change/", data), "amend")
    rule.refresh_from_db()
    assert rule.target_minutes == target and LogEntry.objects.count() == logged  # no "changed" in its history


def test_a_rule_on_another_organizations_contract_is_refused(demo_staff):
    other = Organization.objects.get(slug="other")
    demo_contract = Contract.objects.get(reference="DEMO-PS-001")
    data = rule_form(demo_contract, organization=other.pk)
    response = demo_staff.post("/admin/slas/slarule/add/", data)
    refused(response, f"contract_id: Contract {demo_contract.pk} does not exist")
    assert not SlaRule.objects.filter(organization=other, contract=demo_contract).exists()


def test_a_contract_with_another_organizations_counterparty_is_refused(demo_staff):
    theirs = Counterparty.objects.exclude(organization__slug="demo").first()
    mine = Contract.objects.get(reference="DEMO-PS-001")
    page = demo_staff.get(f"/admin/contracts/contract/{mine.pk}/change/")
    assert page.status_code == 200
    response = demo_staff.post(
        "/admin/contracts/contract/add/",
        {
            "organization": mine.organization_id, "reference": "X-1", "name": "Crossed",
            "contract_type": "service_contract",
            "counterparty": theirs.pk, "counterparty_role": "customer", "time_zone": "Europe/Amsterdam",
            "currency": "EUR", "notice_period_days": "0", "invoice_timing": "in_arrears", "billing_period": "none",
            "coverage_areas": "null", "source": "", "source_id": "", "description": "", "remarks": "",
            "service_territory_id": "", "dispatch_agreement_id": "", "rollover_percent": "0",
            "rounding_minutes": "0", "minimum_charge_minutes": "0",
            "line_items-TOTAL_FORMS": "0", "line_items-INITIAL_FORMS": "0",
            "approvals-TOTAL_FORMS": "0", "approvals-INITIAL_FORMS": "0",
            "term_versions-TOTAL_FORMS": "0", "term_versions-INITIAL_FORMS": "0",
            "visit_plans-TOTAL_FORMS": "0", "visit_plans-INITIAL_FORMS": "0",
        },
    )  # fmt: skip
    # The REST serializer's check, as the contract form runs it (config.admin_forms), answers first.
    refused(response, f"counterparty_id: Counterparty {theirs.pk} does not exist")
    assert not Contract.objects.filter(reference="X-1").exists()


def test_the_bulk_delete_goes_through_the_services_and_rules_are_not_deleted(demo_staff):
    # Found by an outside sweep: "delete selected" deleted the rows in one statement, without the
    # services' events; and the SLA rule admin deleted rules, which the API keeps as history.
    demo = Organization.objects.get(slug="demo")
    spare = [Counterparty.objects.create(organization=demo, name=f"Spare {n}", kind="customer") for n in range(2)]
    response = demo_staff.post(
        "/admin/contracts/counterparty/",
        {"action": "delete_selected", "_selected_action": [c.pk for c in spare], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Counterparty.objects.filter(pk__in=[c.pk for c in spare]).exists()
    deleted = Event.objects.filter(type="counterparty.deleted", object_id__in=[c.pk for c in spare])
    assert deleted.count() == 2
    rule = SlaRule.objects.filter(contract__status="active").first()
    assert demo_staff.get(f"/admin/slas/slarule/{rule.pk}/delete/").status_code == 403
    assert SlaRule.objects.filter(pk=rule.pk).exists()


def test_a_drafts_rules_are_deleted_with_it_or_alone(demo_staff):
    # Found by an outside sweep: with rules undeletable, a draft with rules (a renewal, a contract
    # made from a template) could no longer be deleted in the admin.
    from slas.services import create_rule

    draft = Contract.objects.get(reference="DEMO-PS-001")
    data = {"contract": draft, "metric": "response", "target_minutes": 60}
    one, two = (
        create_rule(organization=draft.organization, actor=None, data={**data, "name": p, "priorities": [p]})
        for p in ("high", "low")
    )
    response = demo_staff.post(f"/admin/slas/slarule/{one.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not SlaRule.objects.filter(pk=one.pk).exists()
    assert Event.objects.filter(type="sla_rule.deleted", object_id=one.pk).count() == 1
    response = demo_staff.post(f"/admin/contracts/contract/{draft.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not Contract.objects.filter(pk=draft.pk).exists() and not SlaRule.objects.filter(pk=two.pk).exists()
