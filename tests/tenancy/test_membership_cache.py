"""The membership behind an access token is cached (issue 15), and every change to it, its user
or its organization takes effect on the next request. Real JWTs through the test client."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenancy.auth import CREDENTIALS_CLAIM, credentials_stamp
from tenancy.models import Membership, Role
from tests.conftest import client_for


def membership_queries(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "tenancy_membership" in q["sql"]]


@pytest.fixture
def admin(db, make_member, org):
    member = make_member("admin", org)
    return member, client_for(member)


@pytest.mark.django_db
class TestMembershipCache:
    def test_the_second_request_reads_no_membership(self, admin):
        _member, client = admin
        with CaptureQueriesContext(connection) as first:
            assert client.get("/api/v1/calendars").status_code == 200
        with CaptureQueriesContext(connection) as second:
            assert client.get("/api/v1/calendars").status_code == 200
        assert len(membership_queries(first)) == 1
        assert membership_queries(second) == []

    def test_a_demotion_takes_effect_at_once(self, admin):
        member, client = admin
        assert client.get("/api/v1/members").status_code == 200  # admins only; now cached
        member.role = Role.VIEWER
        member.save()
        response = client.get("/api/v1/members")
        assert response.status_code == 403, response.content
        assert "your role is viewer" in response.json()["message"]
        assert client.get("/api/v1/me").json()["role"] == "viewer"

    def test_a_promotion_takes_effect_at_once(self, make_member, org):
        member = make_member("viewer", org)
        client = client_for(member)
        assert client.get("/api/v1/members").status_code == 403
        fresh = Membership.objects.get(pk=member.pk)
        fresh.role = Role.ADMIN
        fresh.save(update_fields=["role", "updated_at"])
        assert client.get("/api/v1/members").status_code == 200

    def test_a_removed_member_is_refused_at_once(self, admin):
        member, client = admin
        assert client.get("/api/v1/calendars").status_code == 200
        member.delete()
        response = client.get("/api/v1/calendars")
        assert response.status_code == 401, response.content

    def test_a_deactivated_user_is_refused_at_once(self, admin):
        member, client = admin
        assert client.get("/api/v1/calendars").status_code == 200
        member.user.is_active = False
        member.user.save()
        assert client.get("/api/v1/calendars").status_code == 401

    def test_a_renamed_organization_refuses_tokens_of_the_old_slug(self, admin, org):
        _member, client = admin
        assert client.get("/api/v1/calendars").status_code == 200
        org.slug = "acme-renamed"
        org.save()
        assert client.get("/api/v1/calendars").status_code == 401

    def test_organization_settings_are_read_fresh(self, admin, org):
        _member, client = admin
        assert client.get("/api/v1/me").json()["organization"]["default_currency"] == "EUR"
        org.default_currency = "GBP"
        org.save()
        assert client.get("/api/v1/me").json()["organization"]["default_currency"] == "GBP"

    def test_a_change_in_another_organization_leaves_this_one_cached(self, admin, make_member, other_org):
        _member, client = admin
        elsewhere = make_member("admin", other_org)
        assert client.get("/api/v1/calendars").status_code == 200
        elsewhere.role = Role.VIEWER
        elsewhere.save()
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/api/v1/calendars").status_code == 200
        assert membership_queries(queries) == []

    def test_each_organization_of_a_user_has_its_own_entry(self, admin, other_org):
        member, client = admin
        second = Membership.objects.create(user=member.user, organization=other_org, role=Role.VIEWER)
        other_client = client_for(second)
        assert client.get("/api/v1/me").json()["role"] == "admin"
        assert other_client.get("/api/v1/me").json()["role"] == "viewer"
        assert client.get("/api/v1/me").json()["organization"]["slug"] == "acme"
        assert other_client.get("/api/v1/me").json()["organization"]["slug"] == "globex"

    def test_an_expired_token_is_refused_even_with_the_membership_cached(self, admin, settings):
        import datetime as dt

        from rest_framework_simplejwt.tokens import AccessToken

        member, client = admin
        assert client.get("/api/v1/calendars").status_code == 200
        token = AccessToken.for_user(member.user)
        token["org"], token[CREDENTIALS_CLAIM] = member.organization.slug, credentials_stamp(member.user)
        token.set_exp(lifetime=-dt.timedelta(seconds=1))
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        assert client.get("/api/v1/calendars").status_code == 401

    def test_the_entry_lives_no_longer_than_the_token(self, admin, monkeypatch):
        from django.core.cache import cache

        from tenancy import auth

        member, client = admin
        timeouts = []
        real_set = cache.set
        monkeypatch.setattr(
            auth.cache, "set", lambda key, value, timeout: timeouts.append(timeout) or real_set(key, value, timeout)
        )
        assert client.get("/api/v1/calendars").status_code == 200
        lifetime = auth.settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()
        assert len(timeouts) == 1 and 0 < timeouts[0] <= lifetime


@pytest.mark.django_db
class TestWithoutASharedCache:
    """Without REDIS_URL each process has its own cache, and a change made by another process
    (another gunicorn worker, `manage.py shell`) reaches this one by no signal: the membership is
    then read on every request (found by an outside sweep: a removal made in a shell went unnoticed
    by the server until the token expired)."""

    def test_it_is_on_only_with_redis(self):
        import os
        import subprocess
        import sys

        def setting(**environment):
            code = "from django.conf import settings; print(settings.MEMBERSHIP_CACHE)"
            env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **environment}
            command = [sys.executable, "-c", f"import django; django.setup(); {code}"]
            return subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout.strip()

        assert setting(REDIS_URL="") == "False"
        assert setting(REDIS_URL="redis://127.0.0.1:6379/15") == "True"
        assert setting(REDIS_URL="", MEMBERSHIP_CACHE="true") == "True"

    def test_a_change_no_signal_announces_takes_effect_at_once(self, admin, settings):
        settings.MEMBERSHIP_CACHE = False
        member, client = admin
        assert client.get("/api/v1/members").status_code == 200
        Membership.objects.filter(pk=member.pk).update(role=Role.VIEWER)  # as another process's write looks here
        assert client.get("/api/v1/members").status_code == 403
        Membership.objects.filter(pk=member.pk).delete()
        assert client.get("/api/v1/calendars").status_code == 401
