"""manage.py issue_token USERNAME [--org SLUG] [--refresh]."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from tenancy.models import Membership

from .jwt_helpers import bearer, decode_local


def issue(*args, **options) -> list[str]:
    out = StringIO()
    call_command("issue_token", *args, stdout=out, **options)
    return out.getvalue().splitlines()


@pytest.mark.django_db
class TestIssueToken:
    def test_prints_an_access_token_that_works(self, org, make_member):
        make_member("operator", org, username="alice")
        lines = issue("alice")
        assert len(lines) == 1
        claims = decode_local(lines[0])
        assert (claims["token_type"], claims["org"], claims["role"]) == ("access", "acme", "operator")
        response = bearer(lines[0]).get("/api/v1/me")
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["user"]["username"] == "alice" and body["organization"]["slug"] == "acme"
        assert body["role"] == "operator"

    def test_org_picks_the_membership(self, org, other_org, make_member):
        alice = make_member("viewer", org, username="alice").user
        Membership.objects.create(user=alice, organization=other_org, role="admin")
        for args, options in ((("alice", "--org", "globex"), {}), (("alice",), {"org": "globex"})):
            (token,) = issue(*args, **options)
            me = bearer(token).get("/api/v1/me").json()
            assert (me["organization"]["slug"], me["role"]) == ("globex", "admin")
        (token,) = issue("alice", "--org=acme")
        assert bearer(token).get("/api/v1/me").json()["role"] == "viewer"

    def test_several_memberships_without_org_is_an_error(self, org, other_org, make_member):
        alice = make_member("viewer", org, username="alice").user
        Membership.objects.create(user=alice, organization=other_org, role="admin")
        with pytest.raises(CommandError, match="several organizations") as error:
            issue("alice")
        assert "acme, globex" in str(error.value) and "--org" in str(error.value)

    def test_unknown_user_is_an_error(self, org, make_member):
        make_member("admin", org, username="alice")
        with pytest.raises(CommandError, match="No user named 'mallory'"):
            issue("mallory")

    def test_user_without_membership_is_an_error(self, db):
        get_user_model().objects.create_user(username="loner")
        with pytest.raises(CommandError, match="no membership"):
            issue("loner")

    def test_org_the_user_is_not_a_member_of_is_an_error(self, org, other_org, make_member):
        make_member("admin", org, username="alice")
        with pytest.raises(CommandError, match="no membership of globex"):
            issue("alice", "--org", "globex")

    def test_inactive_user_is_an_error(self, org, make_member):
        member = make_member("admin", org, username="alice")
        get_user_model().objects.filter(pk=member.user_id).update(is_active=False)
        with pytest.raises(CommandError, match="not active"):
            issue("alice")

    def test_refresh_prints_a_working_refresh_token_too(self, org, make_member, anon):
        make_member("manager", org, username="alice")
        access, refresh = issue("alice", "--refresh")
        assert decode_local(access)["token_type"] == "access"
        assert decode_local(refresh)["token_type"] == "refresh"
        response = anon.post("/api/v1/token/refresh", {"refresh": refresh}, format="json")
        assert response.status_code == 200, response.content
        assert bearer(response.json()["access"]).get("/api/v1/me").json()["role"] == "manager"
