"""POST /api/v1/token, POST /api/v1/token/refresh and GET /api/v1/me (DESIGN §4)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import path
from drf_spectacular.generators import SchemaGenerator
from rest_framework_simplejwt.tokens import RefreshToken

from tenancy.api import TokenRefreshView, TokenView
from tenancy.auth import CREDENTIALS_CLAIM, credentials_stamp, issue_tokens
from tenancy.models import Membership

from .jwt_helpers import bearer, decode_local, local_claims, sign_local

TOKEN = "/api/v1/token"
REFRESH = "/api/v1/token/refresh"
ME = "/api/v1/me"
PASSWORD = "secret-password"  # what tests/conftest.py's make_member sets


def assert_rejected(response, status: int = 401) -> str:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"message"} and body["message"], body
    if status == 401:
        assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    return body["message"]


def login(anon, username: str, password: str = PASSWORD, **extra):
    return anon.post(TOKEN, {"username": username, "password": password, **extra}, format="json")


@pytest.mark.django_db
class TestToken:
    def test_login_gives_an_access_and_a_refresh_token_for_the_membership(self, anon, org, make_member):
        member = make_member("operator", org, username="alice")
        response = login(anon, "alice")
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"access", "refresh"}
        access, refresh = decode_local(body["access"]), decode_local(body["refresh"])
        assert access["org"] == refresh["org"] == "acme"
        assert access["role"] == refresh["role"] == "operator"
        assert access["token_type"] == "access" and refresh["token_type"] == "refresh"
        assert str(access["user_id"]) == str(member.user_id)
        assert access["exp"] < refresh["exp"]
        me = bearer(body["access"]).get(ME)
        assert me.status_code == 200
        assert me.json()["user"]["username"] == "alice"

    def test_wrong_password_is_401_json(self, anon, org, make_member):
        make_member("admin", org, username="alice")
        message = assert_rejected(login(anon, "alice", "not-the-password"))
        assert message == "Invalid username or password."

    def test_unknown_user_is_the_same_401(self, anon, org, make_member):
        make_member("admin", org, username="alice")
        assert assert_rejected(login(anon, "mallory")) == assert_rejected(login(anon, "alice", "wrong"))

    def test_inactive_user_cannot_log_in(self, anon, org, make_member):
        member = make_member("admin", org, username="alice")
        get_user_model().objects.filter(pk=member.user_id).update(is_active=False)
        assert_rejected(login(anon, "alice"))

    def test_user_without_membership_is_401(self, anon, db):
        get_user_model().objects.create_user(username="loner", password=PASSWORD)
        assert "not a member" in assert_rejected(login(anon, "loner"))

    def test_several_memberships_need_org(self, anon, org, other_org, make_member):
        make_member("viewer", org, username="alice")
        make_member("admin", other_org, username="bob")
        alice_in_globex = Membership.objects.create(
            user=get_user_model().objects.get(username="alice"), organization=other_org, role="manager"
        )
        response = login(anon, "alice")
        assert response.status_code == 422, response.content
        body = response.json()
        assert "org" in body["message"]
        assert set(body["errors"]) == {"org"}
        assert "acme" in body["errors"]["org"][0] and "globex" in body["errors"]["org"][0]

        response = login(anon, "alice", org="globex")
        assert response.status_code == 200, response.content
        claims = decode_local(response.json()["access"])
        assert (claims["org"], claims["role"]) == ("globex", "manager")
        me = bearer(response.json()["access"]).get(ME).json()
        assert me["organization"]["slug"] == "globex" and me["role"] == "manager"
        assert me["user"]["id"] == alice_in_globex.user_id

        claims = decode_local(login(anon, "alice", org="acme").json()["access"])
        assert (claims["org"], claims["role"]) == ("acme", "viewer")

    def test_org_the_user_is_not_a_member_of_is_401(self, anon, org, other_org, make_member):
        make_member("admin", org, username="alice")
        assert "globex" in assert_rejected(login(anon, "alice", org="globex"))
        assert_rejected(login(anon, "alice", org="no-such-org"))

    def test_org_must_be_a_slug(self, anon, org, make_member):
        make_member("admin", org, username="alice")
        response = login(anon, "alice", org="not a slug!")
        assert response.status_code == 422
        assert set(response.json()["errors"]) == {"org"}

    @pytest.mark.parametrize(
        "data, missing",
        [
            ({}, {"username", "password"}),
            ({"username": "alice"}, {"password"}),
            ({"password": PASSWORD}, {"username"}),
            ({"username": "", "password": ""}, {"username", "password"}),
        ],
    )
    def test_missing_fields_are_422(self, anon, org, make_member, data, missing):
        make_member("admin", org, username="alice")
        response = anon.post(TOKEN, data, format="json")
        assert response.status_code == 422, response.content
        assert set(response.json()["errors"]) == missing

    def test_malformed_json_is_400_and_get_is_405(self, anon, db):
        response = anon.post(TOKEN, '{"username": ', content_type="application/json")
        assert response.status_code == 400
        assert "Malformed" in response.json()["message"]
        response = anon.get(TOKEN)
        assert response.status_code == 405
        assert response.json()["message"]

    def test_a_bad_bearer_header_does_not_block_login(self, anon, org, make_member):
        make_member("admin", org, username="alice")
        anon.credentials(HTTP_AUTHORIZATION="Bearer garbage")
        assert login(anon, "alice").status_code == 200


@pytest.mark.django_db
class TestRefresh:
    def test_refresh_gives_a_new_working_access_token(self, anon, org, make_member):
        make_member("manager", org, username="alice")
        tokens = login(anon, "alice").json()
        response = anon.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
        assert response.status_code == 200, response.content
        assert set(response.json()) == {"access"}
        access = response.json()["access"]
        claims = decode_local(access)
        assert (claims["token_type"], claims["org"], claims["role"]) == ("access", "acme", "manager")
        assert claims["jti"] != decode_local(tokens["access"])["jti"]
        assert bearer(access).get(ME).status_code == 200

    def test_refresh_carries_the_current_role(self, anon, org, make_member):
        member = make_member("admin", org)
        refresh = issue_tokens(member)["refresh"]
        Membership.objects.filter(pk=member.pk).update(role="viewer")
        access = anon.post(REFRESH, {"refresh": refresh}, format="json").json()["access"]
        assert decode_local(access)["role"] == "viewer"
        assert bearer(access).get(ME).json()["role"] == "viewer"

    @pytest.mark.parametrize("garbage", ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.x"])
    def test_garbage_refresh_is_401(self, anon, db, garbage):
        assert_rejected(anon.post(REFRESH, {"refresh": garbage}, format="json"))

    def test_access_token_as_refresh_is_401(self, anon, org, make_member):
        tokens = issue_tokens(make_member("admin", org))
        assert "type" in assert_rejected(anon.post(REFRESH, {"refresh": tokens["access"]}, format="json"))

    def test_refresh_signed_with_another_key_is_401(self, anon, org, make_member):
        claims = local_claims(make_member("admin", org), "refresh")
        forged = sign_local(claims, key="another-secret-another-secret-another-secret")
        assert_rejected(anon.post(REFRESH, {"refresh": forged}, format="json"))

    def test_expired_refresh_is_401(self, anon, org, make_member):
        user = make_member("admin", org).user
        refresh = RefreshToken.for_user(user)
        refresh["org"], refresh[CREDENTIALS_CLAIM] = "acme", credentials_stamp(user)
        refresh.set_exp(lifetime=timedelta(seconds=-5))
        assert "expired" in assert_rejected(anon.post(REFRESH, {"refresh": str(refresh)}, format="json"))

    def test_refresh_after_the_membership_was_deleted_is_401(self, anon, org, make_member):
        member = make_member("admin", org)
        refresh = issue_tokens(member)["refresh"]
        member.delete()
        assert "acme" in assert_rejected(anon.post(REFRESH, {"refresh": refresh}, format="json"))

    def test_refresh_of_an_inactive_user_is_401(self, anon, org, make_member):
        member = make_member("admin", org)
        refresh = issue_tokens(member)["refresh"]
        get_user_model().objects.filter(pk=member.user_id).update(is_active=False)
        assert_rejected(anon.post(REFRESH, {"refresh": refresh}, format="json"))

    def test_missing_refresh_is_422(self, anon, db):
        response = anon.post(REFRESH, {}, format="json")
        assert response.status_code == 422
        assert set(response.json()["errors"]) == {"refresh"}


@pytest.mark.django_db
class TestMe:
    def test_me_describes_user_organization_and_role(self, org, make_member):
        member = make_member("operator", org, username="alice")
        response = bearer(issue_tokens(member)["access"]).get(ME)
        assert response.status_code == 200, response.content
        assert response.json() == {
            "user": {"id": member.user_id, "username": "alice"},
            "organization": {
                "slug": "acme",
                "name": "Acme Field Services",
                "default_currency": "EUR",
                "default_time_zone": "Europe/Amsterdam",
            },
            "role": "operator",
        }

    def test_me_is_the_tokens_organization(self, org, other_org, make_member):
        member = make_member("viewer", other_org)
        body = bearer(issue_tokens(member)["access"]).get(ME).json()
        assert body["organization"]["slug"] == "globex" and body["organization"]["default_currency"] == "USD"

    def test_me_without_token_is_401(self, anon, db):
        assert_rejected(anon.get(ME))


def test_schema_documents_401_for_the_token_endpoints():
    # The schema of the token endpoints alone (the whole schema is other resources' business).
    patterns = [path("api/v1/token", TokenView.as_view()), path("api/v1/token/refresh", TokenRefreshView.as_view())]
    schema = SchemaGenerator(patterns=patterns).get_schema(request=None, public=True)
    for url in ("/api/v1/token", "/api/v1/token/refresh"):
        operation = schema["paths"][url]["post"]
        assert {"200", "401", "422"} <= set(operation["responses"]), (url, sorted(operation["responses"]))
        body = operation["responses"]["401"]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/Error"}
        assert "security" not in operation  # public: no bearer token needed
