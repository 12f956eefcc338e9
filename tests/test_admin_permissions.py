"""The admin asks Django's permissions before it shows, changes, deletes or acts (found by an
outside sweep: a staff user without any permission could delete any organization's draft
contract, approve amendments, waive breaches and read a webhook's new secret).

Every registered screen and every action is checked for a staff user with no permission, one
who may only view, and a superuser; then the screens the sweep used, through real requests."""

import io

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client, RequestFactory
from django.utils import timezone

from breaches.models import Breach
from contracts.models import Amendment, Contract
from notifications.models import WebhookEndpoint

User = get_user_model()


@pytest.fixture
def demo(db):
    call_command("seed_demo", stdout=io.StringIO())


def staff(username: str, *codenames: str, view_all: bool = False):
    user = User.objects.create_user(username=username, password=username, is_staff=True)
    permissions = Permission.objects.filter(codename__startswith="view_") if view_all else Permission.objects.none()
    user.user_permissions.set([*permissions, *Permission.objects.filter(codename__in=codenames)])
    return User.objects.get(pk=user.pk)  # the permission cache starts empty


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def request_of(user):
    request = RequestFactory().post("/admin/")
    request.user = user
    return request


def declared_actions(model_admin) -> dict:
    return {name: func for func, name, _ in model_admin._get_base_actions() if name != "delete_selected"}


@pytest.mark.django_db
def test_a_staff_user_without_permissions_is_refused_every_screen(demo):
    client = client_of(staff("staff-nop"))
    superuser = User.objects.get(username="demo-admin")
    for model, model_admin in admin.site._registry.items():
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        assert client.get(base).status_code == 403, base
        obj = model_admin.get_queryset(request_of(superuser)).first()
        if obj is not None:
            for page in ("change", "delete"):
                assert client.get(f"{base}{obj.pk}/{page}/").status_code == 403, (base, page)


@pytest.mark.django_db
def test_every_action_needs_more_than_the_permission_to_view(demo):
    viewer = staff("staff-viewer", view_all=True)
    superuser = User.objects.get(username="demo-admin")
    declared = 0
    for model, model_admin in admin.site._registry.items():
        actions = declared_actions(model_admin)
        for name, func in actions.items():
            allowed = getattr(func, "allowed_permissions", ())
            assert allowed and "view" not in allowed, (model._meta.label, name, allowed)
        declared += len(actions)
        assert not set(model_admin.get_actions(request_of(viewer))) & set(actions), model._meta.label
        assert set(actions) <= set(model_admin.get_actions(request_of(superuser))), model._meta.label
    assert declared >= 13


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("model", "codename", "action"),
    [
        (Breach, "change_breach", "waive"),
        (Breach, "change_breach", "acknowledge"),
        (WebhookEndpoint, "change_webhookendpoint", "rotate_secrets"),
        (Amendment, "change_amendment", "approve"),
        (Contract, "change_contract", "give_notice"),
    ],
)
def test_an_action_is_offered_with_its_permission(demo, model, codename, action):
    user = staff(f"staff-{codename}", codename, view_all=True)
    assert action in admin.site._registry[model].get_actions(request_of(user))


@pytest.mark.django_db
def test_redelivering_and_instantiating_take_the_permission_they_change_through(demo):
    from billing.models import ContractTemplate
    from notifications.models import WebhookDelivery

    deliveries, templates = admin.site._registry[WebhookDelivery], admin.site._registry[ContractTemplate]
    viewer = staff("staff-viewer", view_all=True)
    assert "redeliver" not in deliveries.get_actions(request_of(viewer))
    assert "instantiate" not in templates.get_actions(request_of(viewer))
    allowed = staff("staff-allowed", "change_webhookdelivery", "add_contract", view_all=True)
    assert "redeliver" in deliveries.get_actions(request_of(allowed))
    assert "instantiate" in templates.get_actions(request_of(allowed))


@pytest.mark.django_db
def test_the_sweeps_requests_change_nothing(demo):
    """The sweep's own requests, as a staff user without permissions and one who may only view."""
    from breaches.services import scan_breaches

    scan_breaches(now=timezone.now())
    draft = Contract.objects.filter(status=Contract.Status.DRAFT).first()
    breach = Breach.objects.filter(state="open").first()
    endpoint = WebhookEndpoint.objects.create(
        organization=draft.organization, url="https://hooks.example.com/sla", event_types=["*"], secret="whsec_kept"
    )
    for client in (client_of(staff("staff-nop")), client_of(staff("staff-viewer", view_all=True))):
        assert client.post(f"/admin/contracts/contract/{draft.pk}/delete/", {"post": "yes"}).status_code == 403
        waive = {"action": "waive", "_selected_action": [breach.pk], "apply": "1", "reason": "mine"}
        client.post("/admin/breaches/breach/", waive)
        client.post("/admin/breaches/breach/", {**waive, "action": "acknowledge"})
        rotated = client.post(
            "/admin/notifications/webhookendpoint/",
            {"action": "rotate_secrets", "_selected_action": [endpoint.pk]},
            follow=True,
        )
        assert endpoint.secret not in rotated.content.decode()
    assert Contract.objects.filter(pk=draft.pk).exists()
    breach.refresh_from_db()
    assert breach.state == "open"
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == endpoint.secret


@pytest.mark.django_db
@pytest.mark.parametrize(("transition", "status", "form"), [
    ("approve", "pending_approval", {"comment": "x"}),
    ("reject", "pending_approval", {"reason": "x"}),
    ("suspend", "active", {"reason": "x"}),
    ("terminate", "active", {"reason": "x"}),
])  # fmt: skip
def test_a_transition_page_takes_the_permission_to_change(demo, transition, status, form):
    """django-fsm's own page for a transition with a form checked only that the user was staff
    (found by a second outside sweep)."""
    contract = Contract.objects.filter(status=status).first()
    page = f"/admin/contracts/contract/{contract.pk}/transition/{transition}/"
    for client in (client_of(staff("staff-nop")), client_of(staff("staff-viewer", view_all=True))):
        assert client.get(page).status_code == 403
        assert client.post(page, form).status_code == 403
    assert Contract.objects.get(pk=contract.pk).status == status
    allowed = client_of(staff("staff-changer", "change_contract", "view_contract"))
    assert allowed.get(page).status_code == 200


@pytest.mark.django_db
def test_staff_with_the_permission_can_still_delete_a_draft_but_not_an_active_contract(demo):
    client = client_of(staff("staff-deleter", "delete_contract", "view_contract"))
    active = Contract.objects.filter(status=Contract.Status.ACTIVE).first()
    draft = Contract.objects.filter(status=Contract.Status.DRAFT).first()
    assert client.get(f"/admin/contracts/contract/{active.pk}/delete/").status_code == 403
    assert client.post(f"/admin/contracts/contract/{draft.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Contract.objects.filter(pk=draft.pk).exists()
