"""The admin every day, as staff (thirteenth round): every screen for a superuser and for a staff
user who is not one, the odd input a list takes, and what a staff user without the superuser's
powers may change. Each case was a 500 or a wrong write before its fix."""

import html
import io
import re

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client

User = get_user_model()


@pytest.fixture
def demo(db):
    call_command("seed_demo", stdout=io.StringIO())


def staff(username: str, *codenames: str, view_all: bool = False) -> User:
    user = User.objects.create_user(username=username, password=username, is_staff=True)
    permissions = Permission.objects.filter(codename__startswith="view_") if view_all else Permission.objects.none()
    user.user_permissions.set([*permissions, *Permission.objects.filter(codename__in=codenames)])
    return User.objects.get(pk=user.pk)  # the permission cache starts empty


def client_of(user) -> Client:
    client = Client(raise_request_exception=False)  # a 500 is a defect to see, not an exception
    client.force_login(user)
    return client


def _list_links(page: str) -> set[str]:
    """The list's own links: each filter's choices, each column's sorting, the pages."""
    return {html.unescape(link) for link in re.findall(r'href="(\?[^"]*)"', page)}


def test_every_screen_answers_a_superuser_and_a_staff_user_who_may_only_view(demo):
    # Found walking every screen as a staff user who may view everything and change nothing: the
    # contract rule's page was a 500 (its form relaxed a field the view-only form does not have).
    viewer = client_of(staff("staff-viewer", view_all=True))
    superuser = client_of(User.objects.get(username="demo-admin"))
    walked = []
    for model in admin.site._registry:
        opts = model._meta
        base = f"/admin/{opts.app_label}/{opts.model_name}/"
        obj = model._default_manager.order_by("pk").first()
        for who, client in (("viewer", viewer), ("superuser", superuser)):
            listed = client.get(base)
            assert listed.status_code == 200, (who, base, listed.status_code)
            for link in sorted(_list_links(listed.content.decode())) if who == "viewer" else ():
                response = client.get(base + link)
                assert response.status_code == 200, (who, base + link, response.status_code)
            if obj is None:
                continue
            for page in ("change", "history"):
                response = client.get(f"{base}{obj.pk}/{page}/")
                assert response.status_code == 200, (who, base, page, response.status_code)
            if who == "viewer":
                change = viewer.get(f"{base}{obj.pk}/change/").content.decode()
                assert 'name="_save"' not in change, base  # nothing to save: the page only shows
                logged = LogEntry.objects.count()
                assert viewer.post(f"{base}{obj.pk}/change/", {}).status_code in (200, 403), base
                assert LogEntry.objects.count() == logged, base
        walked.append(opts.label)
    assert {"workorders.ContractRule", "contracts.Contract", "tenancy.Membership", "auth.User"} <= set(walked)


def test_a_staff_user_who_may_change_users_does_not_give_powers(demo):
    # Found as a staff user with the permission to change users (to help a tenant's people): ticking
    # "Superuser status" on their own page made them a superuser; they could also give themselves
    # any permission, directly or through a group, and set a superuser's password.
    from django.contrib.auth.models import Group

    from tests.admin_forms import form_values

    me = staff("staff-users", "view_user", "change_user", "delete_user", "view_group", "change_group")
    client = client_of(me)
    every = [str(pk) for pk in Permission.objects.values_list("pk", flat=True)]
    own = f"/admin/auth/user/{me.pk}/change/"
    powers = {"is_superuser": "on", "user_permissions": every}
    response = client.post(own, {**form_values(client, own), **powers, "email": "me@example.com"})
    assert response.status_code == 302, response.content.decode()[:2000]
    me = User.objects.get(pk=me.pk)
    assert me.email == "me@example.com"  # their own details are theirs to change
    assert not me.is_superuser and me.user_permissions.count() == 5
    assert not {"is_superuser", "is_staff", "user_permissions", "groups"} & set(form_values(client, own))

    group = Group.objects.create(name="Operators")
    me.groups.add(group)
    url = f"/admin/auth/group/{group.pk}/change/"
    assert client.post(url, {**form_values(client, url), "permissions": every}).status_code == 302
    assert not group.permissions.exists()

    superuser = User.objects.get(username="demo-admin")
    for page in ("change", "password", "delete"):
        assert client.post(f"/admin/auth/user/{superuser.pk}/{page}/", {"post": "yes"}).status_code == 403, page
    assert client.get(f"/admin/auth/user/{superuser.pk}/change/").status_code == 200  # shown, not changed
    assert User.objects.get(pk=superuser.pk).password == superuser.password

    tenant = User.objects.get(username="demo-viewer")  # a tenant's person, not staff
    url = f"/admin/auth/user/{tenant.pk}/change/"
    response = client.post(url, {**form_values(client, url), "email": "viewer@example.com", "is_staff": "on"})
    assert response.status_code == 302
    tenant = User.objects.get(pk=tenant.pk)
    assert tenant.email == "viewer@example.com" and not tenant.is_staff


def test_a_superuser_still_gives_powers(demo):
    from tests.admin_forms import form_values

    client = client_of(User.objects.get(username="demo-admin"))
    tenant = User.objects.get(username="demo-viewer")
    url = f"/admin/auth/user/{tenant.pk}/change/"
    response = client.post(url, {**form_values(client, url), "is_staff": "on"})
    assert response.status_code == 302
    assert User.objects.get(pk=tenant.pk).is_staff


def test_a_membership_stays_with_its_user_and_organization(demo):
    # Found on a membership's page: its user and organization could be changed, which the
    # organization's page refuses (remove it, add another); the old user's cached membership
    # (tenancy.auth) was not dropped, so their tokens kept the role after the move.
    from tenancy.models import Membership, Organization
    from tests.admin_forms import form_values

    client = client_of(User.objects.get(username="demo-admin"))
    membership = Membership.objects.select_related("user", "organization").get(user__username="demo-viewer")
    other_user = User.objects.create_user(username="someone-else", password="x")
    other_org = Organization.objects.exclude(pk=membership.organization_id).first()
    url = f"/admin/tenancy/membership/{membership.pk}/change/"
    values = form_values(client, url)
    response = client.post(url, {**values, "user": other_user.pk, "organization": other_org.pk, "role": "operator"})
    assert response.status_code == 302, response.content.decode()[:2000]
    membership.refresh_from_db()
    assert (membership.user_id, membership.organization_id, membership.role) == (
        User.objects.get(username="demo-viewer").pk,
        Organization.objects.get(slug="demo").pk,
        "operator",
    )
    add = form_values(client, "/admin/tenancy/membership/add/")
    assert {"user", "organization"} <= set(add)  # chosen when the membership is made


def test_a_work_order_s_page_reads_its_clocks_rules_in_one_query(demo):
    # Found counting the queries of every page: each SLA clock row of a work order's page looked
    # its rule up (a job has a clock per rule, one more per rule version after an amendment).
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from slas.models import SlaRule
    from workorders.models import SlaClock, WorkOrder

    client = client_of(User.objects.get(username="demo-admin"))
    clock = SlaClock.objects.select_related("rule", "work_order").order_by("pk").first()
    url = f"/admin/workorders/workorder/{clock.work_order_id}/change/"

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    queries()  # the first request also fills caches
    before = queries()
    for n in range(4):
        rule = SlaRule.objects.get(pk=clock.rule_id)
        rule.pk, rule.name, rule.previous_version_id, rule.first_version_id = None, f"Version {n}", None, None
        rule.save()
        SlaClock.objects.create(
            organization_id=clock.organization_id, work_order=clock.work_order, rule=rule, metric=clock.metric,
            target_minutes=clock.target_minutes, started_at=clock.started_at,
        )  # fmt: skip
    assert WorkOrder.objects.get(pk=clock.work_order_id).sla_clocks.count() >= 5
    page = client.get(url).content.decode()
    assert "Version 3" in page
    assert queries() == before


def _forward_references(model, names) -> set[str]:
    fields = {f.name: f for f in model._meta.get_fields() if getattr(f, "many_to_one", False) or f.one_to_one}
    return {name for name in names if isinstance(name, str) and name in fields and not fields[name].auto_created}


def test_no_list_reads_a_row_s_reference_per_row(demo):
    # Every list's shown references are read with its rows (a column `list_select_related` leaves
    # out is one query per row), and no list with rows repeats a query beyond Django's two counts.
    import collections

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from reports.models import SlaOverview

    client = client_of(User.objects.get(username="demo-admin"))
    for model, model_admin in admin.site._registry.items():
        chosen = model_admin.list_select_related
        if isinstance(chosen, list | tuple):
            covered = {path.split("__")[0] for path in chosen}
            missing = _forward_references(model, model_admin.list_display) - covered
            assert not missing, (model._meta.label, missing)
        if model is SlaOverview:
            continue  # a dashboard, not a list: its three burn-downs read their ledgers (BURN_DOWNS)
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        client.get(url)  # caches filled
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        shapes = collections.Counter(re.sub(r"\b\d+\b|'[^']*'", "?", q["sql"]) for q in captured.captured_queries)
        repeated = {sql: n for sql, n in shapes.items() if n > 1 and not sql.startswith("SELECT COUNT(*)")}
        assert not repeated, (url, repeated)


def test_a_user_named_by_the_record_is_not_deleted_out_of_it(demo):
    # Found deleting a user who had left: the page listed their memberships only, and the delete
    # blanked them from every event they caused, every breach they waived and every posting they
    # made (SET_NULL): the audit trail then said "system". Deactivating the account keeps the name.
    from breaches.models import Breach
    from events.models import Event

    client = client_of(User.objects.get(username="demo-admin"))
    leaver = User.objects.create_user(username="leaver", password="x")
    event = Event.objects.order_by("pk").first()
    Event.objects.filter(pk=event.pk).update(actor=leaver)
    Breach.objects.filter(pk=Breach.objects.order_by("pk").first().pk).update(waived_by=leaver)
    url = f"/admin/auth/user/{leaver.pk}/delete/"
    page = client.get(url).content.decode()
    assert "would require deleting the following protected related objects" in page
    assert "Events naming the user as actor: 1" in page and "Breaches naming the user as waived by: 1" in page
    assert client.post(url, {"post": "yes"}).status_code == 200
    bulk = {"action": "delete_selected", "_selected_action": [leaver.pk], "post": "yes"}
    assert client.post("/admin/auth/user/", bulk).status_code == 200
    assert Event.objects.get(pk=event.pk).actor_id == leaver.pk

    newcomer = User.objects.create_user(username="newcomer", password="x")  # named by nothing yet
    assert client.post(f"/admin/auth/user/{newcomer.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not User.objects.filter(pk=newcomer.pk).exists()


@pytest.mark.parametrize(
    "app_label, model_name, field_name",
    [("contracts", "contract", "counterparty"), ("workorders", "visitplan", "contract")],
)
def test_an_autocomplete_lists_its_choices_in_order_across_its_pages(demo, app_label, model_name, field_name):
    # Found choosing a counterparty among many on a contract's page: the select's choices came in
    # the table's order (none: PostgreSQL may repeat or skip rows between the pages of 20).
    import json

    from contracts.services import create_contract, create_counterparty
    from tenancy.models import Organization

    organization = Organization.objects.get(slug="demo")
    for n in range(25):  # made in the reverse of their order
        counterparty = create_counterparty(
            organization=organization, actor=None, data={"name": f"Zz {99 - n:02d}", "kind": "customer"}
        )
        data = {"reference": f"ZZ-{99 - n:02d}", "name": "Zz", "counterparty": counterparty, "contract_type": "service"}
        create_contract(organization=organization, actor=None, data=data)
    client = client_of(User.objects.get(username="demo-admin"))
    shown = []
    for page in (1, 2):  # 20 a page
        query = {"app_label": app_label, "model_name": model_name, "field_name": field_name, "term": "zz", "page": page}
        response = client.get("/admin/autocomplete/", query)
        assert response.status_code == 200
        shown += [row["text"] for row in json.loads(response.content)["results"]]
    assert len(shown) == 25 and shown == sorted(shown)


@pytest.mark.parametrize("name", ["foo", "give_notice", "activate", "__class__"])
def test_a_transition_page_for_no_staff_transition_is_a_404(demo, name):
    # Found editing a transition page's URL: a name that is no transition (or a method that is
    # none, `give_notice`) was a 500 from django-fsm's page.
    from contracts.models import Contract

    contract = Contract.objects.filter(status="draft").order_by("pk").first()
    client = client_of(User.objects.get(username="demo-admin"))
    url = f"/admin/contracts/contract/{contract.pk}/transition/{name}/"
    assert client.get(url).status_code == 404
    assert client.post(url, {"reason": "x"}).status_code == 404
    assert Contract.objects.get(pk=contract.pk).status == "draft"
    assert client.get(f"/admin/contracts/contract/{contract.pk}/transition/reject/").status_code == 200  # a staff one
