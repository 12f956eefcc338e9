"""A stolen token dies with the password (eleventh round, attacker's sweep).

The service's HS256 tokens were checked for their signature, expiry, membership and active user
only: a refresh token copied off a laptop minted access tokens for its 7 days after the owner's
password had been reset (the only way to stop it was to deactivate the user). Tokens now carry
the user's session auth hash (`credentials`); setting a password revokes every token issued
before it, through REST, the refresh endpoint and the live streams (they check the same way).
Real JWTs, real HTTP through the test client, the membership cache on and off."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from stream.reader import still_admitted
from tenancy.auth import issue_tokens
from tenancy.models import Membership
from tests.tenancy.jwt_helpers import bearer, local_claims, sign_local

ME = "/api/v1/me"
REFRESH = "/api/v1/token/refresh"


def reset_password(member, password: str = "a-new-password-1") -> None:
    user = get_user_model().objects.get(pk=member.user_id)
    user.set_password(password)
    user.save()  # as the admin's and `changepassword`'s forms do


@pytest.fixture(params=[True, False], ids=["membership-cached", "membership-uncached"])
def cache_setting(request, settings):
    settings.MEMBERSHIP_CACHE = request.param
    return request.param


@pytest.mark.django_db
class TestPasswordRevokesTokens:
    def test_an_access_token_issued_before_a_password_reset_is_401(self, org, make_member, cache_setting):
        member = make_member("manager", org)
        client = bearer(issue_tokens(member)["access"])
        assert client.get(ME).status_code == 200  # now cached, when the cache is on
        reset_password(member)
        response = client.get(ME)
        assert response.status_code == 401
        assert "password changed" in response.json()["message"]

    def test_a_refresh_token_issued_before_a_password_reset_mints_nothing(self, anon, org, make_member):
        member = make_member("manager", org)
        refresh = issue_tokens(member)["refresh"]
        assert anon.post(REFRESH, {"refresh": refresh}, format="json").status_code == 200
        reset_password(member)
        response = anon.post(REFRESH, {"refresh": refresh}, format="json")
        assert response.status_code == 401
        assert "password changed" in response.json()["message"]

    def test_a_token_issued_after_the_reset_works_and_its_refresh_too(self, anon, org, make_member, cache_setting):
        member = make_member("manager", org)
        reset_password(member)
        tokens = issue_tokens(Membership.objects.select_related("user", "organization").get(pk=member.pk))
        assert bearer(tokens["access"]).get(ME).status_code == 200
        fresh = anon.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
        assert fresh.status_code == 200
        assert bearer(fresh.json()["access"]).get(ME).status_code == 200

    def test_a_token_without_the_stamp_is_401(self, anon, org, make_member, cache_setting):
        member = make_member("manager", org)
        claims = local_claims(member)
        assert bearer(sign_local(claims)).get(ME).status_code == 200  # re-signed as is: accepted
        del claims["credentials"]
        response = bearer(sign_local(claims)).get(ME)
        assert response.status_code == 401
        # It names the cause, an upgrade, not a password change that never happened (newcomer sweep).
        assert response.json()["message"] == (
            "Token revoked: it was issued before tokens carried a credentials stamp (a service upgrade). Log in again."
        )
        refresh = local_claims(member, "refresh")
        del refresh["credentials"]
        response = anon.post(REFRESH, {"refresh": sign_local(refresh)}, format="json")
        assert response.status_code == 401 and "credentials stamp" in response.json()["message"]

    def test_a_stamp_that_is_no_string_is_401_not_500(self, org, make_member):
        member = make_member("manager", org)
        claims = {**local_claims(member), "credentials": 12}
        response = bearer(sign_local(claims)).get(ME)
        assert response.status_code == 401
        assert "credentials must be a string" in response.json()["message"]

    def test_a_live_stream_stops_at_its_next_read(self, org, make_member, cache_setting):
        from rest_framework.exceptions import AuthenticationFailed

        member = make_member("viewer", org)
        token = issue_tokens(member)["access"]
        assert still_admitted(token, "viewer").role == "viewer"
        reset_password(member)
        with pytest.raises(AuthenticationFailed, match="password changed"):
            still_admitted(token, "viewer")

    def test_the_token_endpoint_issues_stamped_tokens(self, anon, org, make_member):
        member = make_member("manager", org)
        reset_password(member, "the-password-1")
        user = get_user_model().objects.get(pk=member.user_id)
        response = anon.post("/api/v1/token", {"username": user.username, "password": "the-password-1"}, format="json")
        assert response.status_code == 200
        assert bearer(response.json()["access"]).get(ME).status_code == 200
        reset_password(member, "the-password-2")
        assert bearer(response.json()["access"]).get(ME).status_code == 401


@pytest.mark.django_db
def test_a_rotated_secret_key_in_the_fallbacks_keeps_the_tokens(org, make_member, settings):
    # As Django's sessions: SECRET_KEY moved to SECRET_KEY_FALLBACKS keeps what it stamped (the
    # tokens' signing key is JWT_SIGNING_KEY's, unchanged here); a key dropped from them revokes.
    settings.MEMBERSHIP_CACHE = False
    member = make_member("manager", org)
    token = issue_tokens(member)["access"]
    old = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-secret-key-" + "x" * 40, [old]
    assert bearer(token).get(ME).status_code == 200
    settings.SECRET_KEY_FALLBACKS = []
    assert bearer(token).get(ME).status_code == 401
