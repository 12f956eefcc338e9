"""Bearer authentication of the service's own HS256 tokens: what is refused (401 with a JSON
message and a Bearer challenge) and how the membership, not the token, decides the role."""

from __future__ import annotations

import time

import jwt
import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tenancy.auth import issue_tokens
from tenancy.models import Membership

from .jwt_helpers import ME, MEMBERS, assert_401, bearer, craft, external_token, local_claims, public_pem, sign_local


@pytest.fixture
def member(org, make_member) -> Membership:
    return make_member("admin", org, username="alice")


@pytest.mark.django_db
class TestAccepted:
    def test_a_token_issued_by_the_service_works(self, member):
        assert bearer(issue_tokens(member)["access"]).get(ME).status_code == 200

    def test_the_keyword_is_case_insensitive(self, member):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"bearer {issue_tokens(member)['access']}")
        assert client.get(ME).status_code == 200

    def test_a_token_resigned_with_the_service_key_works(self, member):
        # The control for the forgeries below: the same claims, properly signed, are accepted.
        assert bearer(sign_local(local_claims(member))).get(ME).status_code == 200


@pytest.mark.django_db
class TestRejected:
    def test_no_token(self, anon, member):
        assert "credentials" in assert_401(anon.get(ME))

    def test_another_scheme_is_no_token(self, anon, member):
        anon.credentials(HTTP_AUTHORIZATION="Basic YWxpY2U6c2VjcmV0LXBhc3N3b3Jk")
        assert_401(anon.get(ME))

    @pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer  "])
    def test_malformed_authorization_header(self, anon, member, header):
        anon.credentials(HTTP_AUTHORIZATION=header)
        assert_401(anon.get(ME))

    @pytest.mark.parametrize(
        "token",
        ["not-a-jwt", "a.b.c", "eyJhbGciOiJIUzI1NiJ9", "e30.e30.", "W10.e30.c2ln", "%%%.%%%.%%%"],
        ids=["words", "abc", "header-only", "empty-header", "header-not-an-object", "not-base64"],
    )
    def test_malformed_token(self, member, token):
        assert_401(bearer(token).get(ME))

    def test_bad_signature(self, member):
        forged = sign_local(local_claims(member), key="not-the-service-key-not-the-service-key")
        assert "invalid" in assert_401(bearer(forged).get(ME))

    def test_tampered_payload(self, member):
        # A viewer's real token with the payload swapped for an admin's: the signature no longer fits.
        viewer = Membership.objects.create(
            user=get_user_model().objects.create_user("victor"), organization=member.organization, role="viewer"
        )
        header, _, signature = issue_tokens(viewer)["access"].split(".")
        _, admin_payload, _ = issue_tokens(member)["access"].split(".")
        assert_401(bearer(f"{header}.{admin_payload}.{signature}").get(MEMBERS))

    @pytest.mark.parametrize("alg", ["none", "None", "NONE"])
    def test_alg_none(self, member, alg):
        token = craft({"alg": alg, "typ": "JWT"}, local_claims(member))
        assert "not accepted" in assert_401(bearer(token).get(ME))

    def test_alg_none_via_pyjwt(self, member):
        token = jwt.encode(local_claims(member), None, algorithm="none")
        assert_401(bearer(token).get(ME))

    def test_only_hs256_is_accepted_even_with_the_right_key(self, member):
        assert "HS384" in assert_401(bearer(sign_local(local_claims(member), algorithm="HS384")).get(ME))

    def test_an_rs256_token_without_an_external_issuer(self, member, rsa_key):
        # No PUBLIC_KEY nor JWKS_URL configured: asymmetric tokens are not accepted at all.
        token = external_token(rsa_key, claims={"org": "acme", "role": "admin"})
        assert "not accepted" in assert_401(bearer(token).get(ME))

    def test_hs256_signed_with_the_public_key_pem(self, member, rsa_key, external_issuer):
        # The classic algorithm confusion: the issuer's public key used as an HMAC secret.
        pem = public_pem(rsa_key)
        external_issuer(PUBLIC_KEY=pem)
        for claims in (local_claims(member), {**local_claims(member), "iss": "https://login.example.com/"}):
            token = craft({"alg": "HS256", "typ": "JWT"}, claims, secret=pem.encode())
            assert_401(bearer(token).get(ME))

    def test_expired(self, member):
        claims = {**local_claims(member), "exp": int(time.time()) - 10}
        assert "expired" in assert_401(bearer(sign_local(claims)).get(ME))

    def test_without_exp(self, member):
        claims = local_claims(member)
        del claims["exp"]
        assert_401(bearer(sign_local(claims)).get(ME))

    def test_not_yet_valid(self, member):
        claims = {**local_claims(member), "nbf": int(time.time()) + 600}
        assert_401(bearer(sign_local(claims)).get(ME))

    def test_refresh_token_used_as_access(self, member):
        assert "type" in assert_401(bearer(issue_tokens(member)["refresh"]).get(ME))

    def test_token_without_type(self, member):
        claims = local_claims(member)
        del claims["token_type"]
        assert_401(bearer(sign_local(claims)).get(ME))

    def test_org_claim_without_membership(self, member, other_org):
        # Properly signed, but alice is not a member of globex.
        claims = {**local_claims(member), "org": "globex", "role": "admin"}
        assert "globex" in assert_401(bearer(sign_local(claims)).get(ME))

    def test_org_claim_of_no_organization(self, member):
        assert_401(bearer(sign_local({**local_claims(member), "org": "nowhere"})).get(ME))

    @pytest.mark.parametrize("claim", ["org", "user_id"])
    def test_missing_org_or_user_claim(self, member, claim):
        claims = local_claims(member)
        del claims[claim]
        assert_401(bearer(sign_local(claims)).get(ME))

    def test_user_claim_of_someone_not_in_the_org(self, member, other_org, make_member):
        outsider = make_member("admin", other_org)
        claims = {**local_claims(member), "user_id": outsider.user_id}
        assert_401(bearer(sign_local(claims)).get(ME))

    def test_inactive_user(self, member):
        token = issue_tokens(member)["access"]
        get_user_model().objects.filter(pk=member.user_id).update(is_active=False)
        assert "No active membership" in assert_401(bearer(token).get(ME))

    def test_deleted_membership(self, member):
        token = issue_tokens(member)["access"]
        member.delete()
        assert_401(bearer(token).get(ME))

    def test_deleted_user(self, member):
        token = issue_tokens(member)["access"]
        member.user.delete()
        assert_401(bearer(token).get(ME))

    def test_rejected_everywhere_under_the_api(self, member, org):
        forged = bearer(sign_local(local_claims(member), key="not-the-service-key-not-the-service-key"))
        for url in (ME, MEMBERS, f"{MEMBERS}/{member.pk}", "/api/v1/counterparties"):
            assert_401(forged.get(url))


@pytest.mark.django_db
class TestRoleComesFromTheMembership:
    def test_a_demoted_member_loses_the_rights_at_once(self, member):
        client = bearer(issue_tokens(member)["access"])
        assert client.get(MEMBERS).status_code == 200
        Membership.objects.filter(pk=member.pk).update(role="manager")
        response = client.get(MEMBERS)
        assert response.status_code == 403
        assert response.json() == {"message": "This needs the admin role or higher; your role is manager."}
        assert client.get(ME).json()["role"] == "manager"

    def test_a_promoted_member_gains_the_rights_at_once(self, org, make_member):
        viewer = make_member("viewer", org)
        client = bearer(issue_tokens(viewer)["access"])
        assert client.get(MEMBERS).status_code == 403
        Membership.objects.filter(pk=viewer.pk).update(role="admin")
        assert client.get(MEMBERS).status_code == 200

    def test_the_role_claim_is_not_trusted(self, org, make_member):
        # Even a validly signed token claiming admin gives only the membership's role.
        viewer = make_member("viewer", org)
        token = sign_local({**local_claims(viewer), "role": "admin"})
        assert bearer(token).get(MEMBERS).status_code == 403
        assert bearer(token).get(ME).json()["role"] == "viewer"
