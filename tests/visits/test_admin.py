"""The demo_staff screens of issue 13 on the demo data: assets, contract rules, visit plans (inline on
the contract with their next five occurrences) and how a work order's contract was matched."""

from contracts.models import Asset, Contract, Counterparty
from events.models import Event
from workorders.models import ContractRule, VisitPlan, WorkOrder


def test_the_contract_page_lists_its_visit_plans_with_the_next_five_occurrences(demo_staff):
    from workorders import rules

    warranty = Contract.objects.get(reference="DEMO-WA-002")  # runs for almost two years
    rules.create_visit_plan(
        contract=warranty, actor=None, data={"summary": "Pump run test", "recurrence": "FREQ=MONTHLY;BYHOUR=7"}
    )
    page = demo_staff.get(f"/admin/contracts/contract/{warranty.pk}/change/").content.decode()
    assert "Pump run test" in page and "Next five occurrences" in page
    cell = page.split("Pump run test", 1)[1].split("</tr>", 1)[0]
    assert cell.count(" 07:00") == 5  # five monthly mornings, in the contract's time zone
    # Occurrences stop at the contract's expiry: the quarterly inspection of a contract that
    # expires within weeks has fewer than five left.
    plan = VisitPlan.objects.get(summary="Quarterly pump inspection")
    page = demo_staff.get(f"/admin/contracts/contract/{plan.contract_id}/change/").content.decode()
    assert page.split("Quarterly pump inspection", 1)[1].split("</tr>", 1)[0].count(" 08:00") < 5


def test_the_work_order_page_says_how_its_contract_was_matched(demo_staff):
    job = WorkOrder.objects.get(source_id="DSP-2001")
    page = demo_staff.get(f"/admin/workorders/workorder/{job.pk}/change/").content.decode()
    assert "How the contract was matched" in page and "entitlement" in page and "covers asset" in page
    drill = WorkOrder.objects.get(source_id="DSP-2002")
    page = demo_staff.get(f"/admin/workorders/workorder/{drill.pk}/change/").content.decode()
    assert "Drills are not covered" in page


def test_assets_and_rules_are_written_through_the_services(demo_staff):
    party = Counterparty.objects.get(source_id="CUST-002")
    response = demo_staff.post(
        "/admin/contracts/asset/add/",
        {"organization": party.organization_id, "name": "Pump P-9", "kind": "pump", "counterparty": party.pk,
         "location": '{"type": "Point", "coordinates": [4.9, 52.4]}', "serial_number": "", "site": "", "remarks": "",
         "source": "", "source_id": ""},
    )  # fmt: skip
    assert response.status_code == 302, response.content
    asset = Asset.objects.get(name="Pump P-9")
    assert Event.objects.filter(type="asset.created", object_id=asset.pk).exists()
    bad = demo_staff.post(
        "/admin/contracts/asset/add/",
        {"organization": party.organization_id, "name": "Nowhere", "counterparty": party.pk,
         "location": '{"type": "Point", "coordinates": [400, 0]}'},
    )  # fmt: skip
    assert bad.status_code == 200 and b"Longitude 400" in bad.content
    rule = {"organization": party.organization_id, "name": "Kinds", "sequence": 5, "enabled": "on",
            "outcome": "not_covered", "contract": ""}  # fmt: skip
    bad = demo_staff.post(
        "/admin/workorders/contractrule/add/",
        {**rule, "criteria": '[{"field": "colour", "operator": "equals", "value": "red"}]'},
    )
    assert bad.status_code == 200 and b"colour" in bad.content and not ContractRule.objects.filter(name="Kinds")
    good = demo_staff.post(
        "/admin/workorders/contractrule/add/",
        {**rule, "criteria": '[{"field": "asset_kind", "operator": "equals", "value": "pump"}]'},
    )
    assert good.status_code == 302
    created = ContractRule.objects.get(name="Kinds")
    assert Event.objects.filter(type="contract_rule.created", object_id=created.pk).exists()
    # no criteria: a catch-all, as the API takes it, saved unchanged too (found by an outside sweep)
    catch_all = demo_staff.post("/admin/workorders/contractrule/add/", {**rule, "name": "Catch-all", "criteria": "[]"})
    assert catch_all.status_code == 302, catch_all.content
    saved = ContractRule.objects.get(name="Catch-all")
    assert saved.criteria == []
    again = demo_staff.post(
        f"/admin/workorders/contractrule/{saved.pk}/change/", {**rule, "name": "Catch-all", "criteria": "[]"}
    )
    assert again.status_code == 302, again.content


def test_a_visit_plan_with_a_bad_rule_is_refused_on_the_form(demo_staff):
    contract = Contract.objects.get(reference="DEMO-SC-001")
    form = {"contract": contract.pk, "summary": "Weekly", "duration_minutes": 60, "priority": "planned",
            "generate_days_in_advance": 7, "tolerance_minutes": 0, "active_from": contract.start_date.isoformat(),
            "site": "", "hours_allocated": ""}  # fmt: skip
    bad = demo_staff.post("/admin/workorders/visitplan/add/", {**form, "recurrence": "FREQ=SECONDLY"})
    assert bad.status_code == 200 and b"FREQ must be" in bad.content
    good = demo_staff.post("/admin/workorders/visitplan/add/", {**form, "recurrence": "FREQ=WEEKLY;BYDAY=FR;BYHOUR=7"})
    assert good.status_code == 302
    plan = VisitPlan.objects.get(summary="Weekly")
    assert Event.objects.filter(type="visit_plan.created", object_id=plan.pk).exists()


def test_a_blank_active_from_is_the_apis_default(demo_staff):
    # Found by an outside sweep: the admin required it; the API (and the README) default it to today.
    from django.utils import timezone

    contract = Contract.objects.get(reference="DEMO-SC-001")
    page = demo_staff.get("/admin/workorders/visitplan/add/").content.decode()
    assert "Blank: today in the contract's time zone, or its start date if later." in page
    form = {"contract": contract.pk, "summary": "Monthly", "duration_minutes": 60, "priority": "planned",
            "generate_days_in_advance": 7, "tolerance_minutes": 0, "active_from": "", "site": "",
            "hours_allocated": "", "recurrence": "FREQ=MONTHLY;BYHOUR=7"}  # fmt: skip
    response = demo_staff.post("/admin/workorders/visitplan/add/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    plan = VisitPlan.objects.get(summary="Monthly")
    assert plan.active_from == max(contract.local_today(timezone.now()), contract.start_date)
