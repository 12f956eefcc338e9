"""The admin as a staff member after the eleventh round: what changed under it (signed business
hours, passwords that revoke tokens, pruned notifications, visit plans on holidays). Each case was
wrong before its fix."""

import datetime as dt

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contracts.models import Contract
from signing import services as signing
from signing.models import SignatureRequest


def _pending_requests(count: int) -> tuple[Contract, list[SignatureRequest]]:
    contract = Contract.objects.get(reference="DEMO-MU-001")  # pending, with the demo's request
    made = [
        signing.create_request(contract=contract, actor=None, data={"name": f"S {n}", "email": f"s{n}@example.com"})
        for n in range(count)
    ]
    return contract, made


def _status_cells(page: str) -> list[str]:
    return [cell.split("<", 1)[0] for cell in page.split('class="field-status_now">')[1:]]


def test_a_signature_request_shows_the_status_the_api_gives(demo_staff):
    # Found on the signature requests' list: a request whose contract's terms changed after it
    # was sent (void for the API and the link) or past its expiry was listed as "pending".
    contract, (request,) = _pending_requests(1)
    page = demo_staff.get("/admin/signing/signaturerequest/").content.decode()
    assert set(_status_cells(page)) == {"pending"}
    Contract.objects.filter(pk=contract.pk).update(description="Changed after the link went out")
    SignatureRequest.objects.exclude(pk=request.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    page = demo_staff.get("/admin/signing/signaturerequest/").content.decode()
    assert sorted(_status_cells(page)) == ["expired", "void"]
    page = demo_staff.get(f"/admin/signing/signaturerequest/{request.pk}/change/").content.decode()
    assert "void: The terms have changed since this link was sent." in page
    assert "NOT the terms sent" in page
    request.refresh_from_db()
    assert request.status == "pending"  # the admin only reads


def test_a_signature_request_page_shows_the_terms_with_their_business_hours(demo_staff):
    # Found on a request's page: only the terms' hash was shown, so staff could not see what the
    # counterparty is asked to accept (the eleventh round added each target's business hours).
    from contracts.services import submit_contract
    from signing.documents import terms_document
    from slas.models import Calendar
    from slas.services import create_rule

    draft = Contract.objects.get(reference="DEMO-PS-001")
    calendar = Calendar.objects.get(organization=draft.organization, name="UK office hours")
    data = {"contract": draft, "metric": "response", "target_minutes": 60, "priorities": ["high"], "calendar": calendar}
    create_rule(organization=draft.organization, actor=None, data={**data, "name": "Office response"})
    contract = submit_contract(contract=draft, actor=None)
    request = signing.create_request(contract=contract, actor=None, data={"name": "Signer", "email": "s@example.com"})
    page = demo_staff.get(f"/admin/signing/signaturerequest/{request.pk}/change/").content.decode()
    assert "These are the same terms as sent" in page
    assert "&quot;business_hours&quot;: {" in page and "&quot;working_days&quot;" in page
    assert "&quot;calendar&quot;: &quot;UK office hours&quot;" in page
    rules = terms_document(contract)["sla_rules"]
    assert rules[0]["business_hours"]["time_zone"] == calendar.time_zone
    assert "Status now" in page and "pending" in page


def test_the_signature_request_list_reads_each_contract_s_terms_once(demo_staff):
    # Telling void from pending reads the contract's terms (several queries): once per contract
    # on the page, not once per request listed.
    _pending_requests(1)
    with CaptureQueriesContext(connection) as few:
        assert demo_staff.get("/admin/signing/signaturerequest/").status_code == 200
    _pending_requests(6)
    with CaptureQueriesContext(connection) as many:
        page = demo_staff.get("/admin/signing/signaturerequest/").content.decode()
    assert len(_status_cells(page)) == SignatureRequest.objects.count() >= 8
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


def test_setting_a_password_in_the_admin_says_it_revokes_the_user_s_api_tokens(demo_staff):
    # Found on the user's "Change password" page: a new password revokes every API token issued
    # before it (tenth round), and the page said only "Password changed successfully".
    from django.contrib.auth import get_user_model

    from tenancy.auth import issue_tokens
    from tenancy.models import Membership

    user = get_user_model().objects.get(username="demo-operator")
    token = issue_tokens(Membership.objects.filter(user=user).first())["access"]
    me = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert demo_staff.get("/api/v1/me", **me).status_code == 200
    url = f"/admin/auth/user/{user.pk}/password/"
    page = demo_staff.get(url).content.decode()
    assert "revokes every API token issued to this user before now" in page
    response = demo_staff.post(
        url, {"password1": "A new pass phrase 1", "password2": "A new pass phrase 1", "usable_password": "true"},
        follow=True,
    )  # fmt: skip
    assert response.status_code == 200
    assert "Every API token issued to this user before now is revoked." in response.content.decode()
    assert demo_staff.get("/api/v1/me", **me).status_code == 401  # as the page said


def test_the_outbox_lists_say_what_prunes_them(demo_staff):
    # Found on the deliveries' and e-mails' lists: staff cannot delete these rows (read-only pages)
    # and nothing said that `prune_notifications` does, nor which rows it keeps.
    for model in ("webhookdelivery", "emailnotification"):
        page = demo_staff.get(f"/admin/notifications/{model}/").content.decode()
        assert "manage.py prune_notifications" in page and "never deleted" in page, model


def test_visit_plans_are_listed_and_filtered_by_what_they_do_on_holidays(demo_staff):
    # Found on the visit plans' list: the eleventh round's on_holiday and calendar were on the form
    # only, so staff could not find the plans that skip or move holiday visits, nor their calendar.
    from slas.models import Calendar
    from workorders import rules
    from workorders.models import VisitPlan

    warranty = Contract.objects.get(reference="DEMO-WA-002")
    calendar = Calendar.objects.get(organization=warranty.organization, name="UK office hours")

    def plans(count: int, on_holiday: str) -> None:
        for n in range(count):
            data = {"summary": f"Visit {on_holiday} {n}", "recurrence": "FREQ=MONTHLY;BYHOUR=7"}
            if on_holiday != "keep":
                data.update(on_holiday=on_holiday, calendar=calendar)
            rules.create_visit_plan(contract=warranty, actor=None, data=data)

    plans(1, "skip")
    with CaptureQueriesContext(connection) as few:
        page = demo_staff.get("/admin/workorders/visitplan/?on_holiday__exact=skip").content.decode()
    assert "Visit skip 0" in page and "UK office hours" in page
    plans(5, "skip")
    plans(2, "next_business_day")
    with CaptureQueriesContext(connection) as many:
        page = demo_staff.get("/admin/workorders/visitplan/?on_holiday__exact=skip").content.decode()
    assert page.count('class="field-summary"') == VisitPlan.objects.filter(on_holiday="skip").count() == 6
    assert "next_business_day 0" not in page
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
    page = demo_staff.get("/admin/workorders/visitplan/?q=UK+office").content.decode()
    assert page.count('class="field-summary"') == 8


def test_breaches_are_found_by_their_penalty_month_with_the_waiver_s_date(demo_staff):
    # Found looking for a month's corrections: a breach waived after its month is corrected in the
    # month of the waiver (eleventh round), and the list showed neither the month nor the waiver.
    from breaches.models import Breach

    breach = Breach.objects.order_by("pk").first()
    others = Breach.objects.exclude(penalty_month=breach.penalty_month)
    Breach.objects.filter(pk__in=[b.pk for b in others[:1]]).update(penalty_month="1999-01")
    page = demo_staff.get(f"/admin/breaches/breach/?q={breach.penalty_month}").content.decode()
    shown = page.count('class="field-penalty_month"')
    assert shown == Breach.objects.filter(penalty_month=breach.penalty_month).count() >= 1
    assert "1999-01" not in page, page[page.index("1999-01") - 300 :][:400]
    assert "column-waived_at" in page


def _filter_and_autocomplete_urls():
    """A list filter's value and an autocomplete's term on every screen that has them."""
    from django.contrib import admin

    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        if "status" in {f.name for f in opts.fields} and "status" in model_admin.list_filter:
            yield f"/admin/{opts.app_label}/{opts.model_name}/?status__exact=%00"
        for name in model_admin.autocomplete_fields:
            query = f"app_label={opts.app_label}&model_name={opts.model_name}&field_name={name}"
            yield f"/admin/autocomplete/?{query}&term=%00"


def test_a_nul_in_a_list_filter_or_an_autocomplete_term_is_a_400(demo_staff):
    # Found by the sweep of odd query strings on PostgreSQL: a NUL in a list filter's value
    # (?status__exact=%00) or in an autocomplete's term was a 500 (PostgreSQL refuses NUL in text).
    demo_staff.raise_request_exception = False
    urls = list(_filter_and_autocomplete_urls())
    assert len(urls) >= 15
    for url in urls:
        response = demo_staff.get(url)
        assert response.status_code == 400, (url, response.status_code)
        assert "NUL character" in response.content.decode(), url
    assert demo_staff.get("/admin/contracts/contract/?status__exact=active").status_code == 200
