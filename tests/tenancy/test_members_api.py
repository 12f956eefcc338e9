"""GET /api/v1/members: the organization's memberships, for admins only."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenancy.models import Membership
from tests.api_base import ResourceAPITests
from tests.conftest import client_for

URL = "/api/v1/members"
_usernames = itertools.count(1)


def make_membership(org, role: str = "viewer", username: str | None = None, created_at: dt.datetime | None = None):
    user = get_user_model().objects.create_user(username=username or f"member{next(_usernames):04d}")
    membership = Membership.objects.create(user=user, organization=org, role=role)
    if created_at is not None:
        Membership.objects.filter(pk=membership.pk).update(created_at=created_at)
        membership.refresh_from_db()
    return membership


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


class TestMembersAPI(ResourceAPITests):
    url = URL
    read_role = "admin"
    write_role = "admin"
    default_fields = ["id", "user", "role", "created_at", "updated_at"]
    sort_keys = ["username", "role", "created_at"]
    default_sort = "username"
    # 1 count, 2 the page's ids (issue 15), 3 the page (memberships joined with their users).
    list_queries = 3
    # The caller is an admin created now: every case leaves it out (by role or by date).
    filter_cases = [
        ("role", "viewer", ["alpha"]),
        ("role", "operator,manager", ["beta", "gamma"]),
        ("role", "!admin", ["alpha", "beta", "gamma"]),
        ("role", "", []),
        ("created_at", "<2021-01-01", ["alpha"]),
        ("created_at", ">=2021-06-15T00:00:00Z<2023-01-01", ["beta"]),
        ("created_at", ">2022-01-01<=2023-12-31", ["gamma"]),
        ("created_at", "<2000-01-01", []),
        ("ids", "alpha,gamma", ["alpha", "gamma"]),
    ]
    malformed_filters = [("role", "boss"), ("role", ">admin"), ("created_at", ">not-a-date")]

    @pytest.fixture
    def api(self, org, make_member):
        """The caller is itself one of the memberships listed: one member per role and
        organization, the read role's made before the test makes any, so that the base's counts
        (taken before it asks for a client) include it."""
        clients = {}

        def make(role: str = "manager", org=org):
            if (role, org.pk) not in clients:
                clients[role, org.pk] = client_for(make_member(role, org))
            return clients[role, org.pk]

        make(self.read_role)
        return make

    def factory(self, org, **overrides):
        return make_membership(org, **overrides)

    def filter_objects(self, org):
        return {
            "alpha": make_membership(org, "viewer", created_at=utc(2020, 3, 1, 12)),
            "beta": make_membership(org, "operator", created_at=utc(2021, 6, 15, 12)),
            "gamma": make_membership(org, "manager", created_at=utc(2023, 9, 30, 12)),
        }

    def sort_value(self, key, item):
        # `username` orders by the nested user reference's name.
        return item["user"]["name"] if key == "username" else item[key]

    def test_default_sort_is_username(self, api, org):
        for username in ("mike", "anna", "zoe"):
            make_membership(org, username=username)
        body = self.get_list(api(self.read_role)).json()
        usernames = [o["user"]["name"] for o in body]
        assert usernames == sorted(usernames) and usernames[0] == "anna"
        assert body == self.get_list(api(self.read_role), sort="username").json()


@pytest.mark.django_db
class TestMembersRules:
    def test_admin_only(self, api, org):
        membership = make_membership(org)
        for role in ("viewer", "operator", "manager"):
            client = api(role)
            response = client.get(URL)
            assert response.status_code == 403, role
            assert response.json() == {"message": f"This needs the admin role or higher; your role is {role}."}
            assert client.get(f"{URL}/{membership.pk}").status_code == 403
        assert api("admin").get(URL).status_code == 200

    def test_lists_exactly_the_organizations_memberships(self, api, org, other_org):
        mine = [make_membership(org, role) for role in ("viewer", "operator", "manager")]
        theirs = [make_membership(other_org, role) for role in ("viewer", "admin")]
        client = api("admin")
        body = client.get(f"{URL}?per_page=100").json()
        assert {o["id"] for o in body} == {m.pk for m in mine} | {client.membership.pk}
        assert all(client.get(f"{URL}/{m.pk}").status_code == 404 for m in theirs)
        their_admin = api("admin", org=other_org)
        assert response_ids(their_admin) == {m.pk for m in theirs} | {their_admin.membership.pk}

    def test_a_user_in_two_organizations_shows_only_the_membership_here(self, api, org, other_org):
        here = make_membership(org, "operator", username="dual")
        Membership.objects.create(user=here.user, organization=other_org, role="admin")
        body = api("admin").get(f"{URL}?sort=username").json()
        dual = [o for o in body if o["user"]["name"] == "dual"]
        assert dual == [
            {
                "id": here.pk,
                "user": {"id": here.user_id, "name": "dual"},
                "role": "operator",
                "created_at": dual[0]["created_at"],
                "updated_at": dual[0]["updated_at"],
            }
        ]
        assert dual[0]["created_at"].endswith("Z")

    def test_members_are_read_only(self, api, org):
        membership = make_membership(org)
        admin = api("admin")
        assert admin.post(URL, {"role": "admin"}, format="json").status_code == 405
        assert admin.patch(f"{URL}/{membership.pk}", {"role": "admin"}, format="json").status_code == 405
        assert admin.delete(f"{URL}/{membership.pk}").status_code == 405
        # A manager is not even told which methods exist: writing memberships needs an admin.
        manager = api("manager")
        assert manager.post(URL, {"role": "admin"}, format="json").status_code == 403
        assert manager.patch(f"{URL}/{membership.pk}", {"role": "admin"}, format="json").status_code == 403
        assert Membership.objects.get(pk=membership.pk).role == "viewer"


def response_ids(client) -> set[int]:
    return {o["id"] for o in client.get(f"{URL}?per_page=100").json()}


@pytest.mark.django_db
class TestUsernameCopy:
    """Issue 15: the member list sorts by the membership's copy of its user's username, on the
    index `membership_org_username`, in the same order as by the user's own username."""

    def test_a_renamed_user_moves_in_the_list(self, api, org, other_org):
        anna, mike = make_membership(org, username="anna"), make_membership(org, username="mike")
        elsewhere = Membership.objects.create(user=anna.user, organization=other_org, role="viewer")
        anna.user.username = "zoe"
        anna.user.save()
        assert Membership.objects.get(pk=anna.pk).username == Membership.objects.get(pk=elsewhere.pk).username == "zoe"
        body = api("admin").get(f"{URL}?per_page=100&role=viewer").json()
        assert [o["user"]["name"] for o in body] == ["mike", "zoe"]
        assert [o["id"] for o in body] == [mike.pk, anna.pk]

    def test_every_save_copies_the_username(self, org):
        membership = make_membership(org, username="before")
        assert membership.username == "before"
        get_user_model().objects.filter(pk=membership.user_id).update(username="after")  # no signal
        membership.refresh_from_db()
        membership.user.refresh_from_db()
        membership.role = "operator"
        membership.save(update_fields=["role"])
        assert Membership.objects.get(pk=membership.pk).username == "after"

    def test_the_pages_ids_come_from_the_membership_table_alone(self, api, org):
        for username in ("carol", "bob", "alice"):
            make_membership(org, username=username)
        client = api("admin")
        assert client.get(URL).status_code == 200  # caches the membership behind the token
        with CaptureQueriesContext(connection) as queries:
            body = client.get(URL, {"per_page": 2, "page": 2}).json()
        ids_sql = queries.captured_queries[1]["sql"]
        assert "JOIN" not in ids_sql and '"tenancy_membership"."username"' in ids_sql
        everyone = sorted(Membership.objects.filter(organization=org), key=lambda m: (m.user.username, m.pk))
        assert [o["id"] for o in body] == [m.pk for m in everyone[2:4]]

    def test_the_migration_copies_every_username(self, org, other_org):
        from importlib import import_module

        from django.apps import apps

        migration = import_module("tenancy.migrations.0003_membership_username")
        members = [make_membership(org), make_membership(other_org)]
        Membership.objects.update(username="")
        migration.copy_usernames(apps, None)
        assert [Membership.objects.get(pk=m.pk).username for m in members] == [m.user.username for m in members]
