"""Tokens of an external OAuth2 issuer (settings.EXTERNAL_JWT): RS256 and ES256 with keys made
here, a public key in the settings or a JWKS served over real HTTP; a local user and
membership provisioned for the token's subject."""

from __future__ import annotations

import socket
import time

import pytest
from django.contrib.auth import get_user_model

from tenancy.auth import _jwks_client, issue_tokens
from tenancy.models import ExternalIdentity, Membership

from .jwt_helpers import ISSUER, ME, MEMBERS, assert_401, bearer, craft, external_claims, external_token, public_pem


def nothing_provisioned() -> bool:
    return (
        not ExternalIdentity.objects.exists()
        and not get_user_model().objects.filter(username__startswith="ext:").exists()
    )


@pytest.fixture
def rsa_issuer(external_issuer, rsa_key, org):
    external_issuer(PUBLIC_KEY=public_pem(rsa_key))
    return rsa_key


@pytest.mark.django_db
class TestPublicKey:
    def test_an_rs256_token_works_and_provisions_a_user(self, rsa_issuer):
        response = bearer(external_token(rsa_issuer)).get(ME)
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["organization"]["slug"] == "acme" and body["role"] == "operator"
        identity = ExternalIdentity.objects.get()
        assert (identity.issuer, identity.subject) == (ISSUER, "auth0|alice")
        assert body["user"] == {"id": identity.user_id, "username": identity.user.username}
        assert identity.user.username.startswith("ext:") and identity.user.username.endswith(":auth0|alice")
        assert not identity.user.has_usable_password()
        membership = Membership.objects.get(user=identity.user)
        assert (membership.organization.slug, membership.role) == ("acme", "operator")

    def test_the_user_is_reused_on_later_use(self, rsa_issuer):
        first = bearer(external_token(rsa_issuer)).get(ME).json()
        second = bearer(external_token(rsa_issuer, claims={"jti": "another"})).get(ME).json()
        assert first["user"] == second["user"]
        assert ExternalIdentity.objects.count() == 1
        assert get_user_model().objects.filter(username__startswith="ext:").count() == 1
        assert Membership.objects.filter(user_id=first["user"]["id"]).count() == 1

    def test_each_subject_gets_its_own_user(self, rsa_issuer):
        alice = bearer(external_token(rsa_issuer)).get(ME).json()["user"]
        bob = bearer(external_token(rsa_issuer, claims={"sub": "auth0|bob"})).get(ME).json()["user"]
        assert alice["id"] != bob["id"]
        assert set(ExternalIdentity.objects.values_list("subject", flat=True)) == {"auth0|alice", "auth0|bob"}

    def test_long_subjects_with_a_common_prefix_are_different_users(self, rsa_issuer):
        prefix = "x" * 200
        first = bearer(external_token(rsa_issuer, claims={"sub": f"{prefix}-1"})).get(ME)
        second = bearer(external_token(rsa_issuer, claims={"sub": f"{prefix}-2"})).get(ME)
        assert first.status_code == second.status_code == 200, (first.content, second.content)
        assert first.json()["user"]["id"] != second.json()["user"]["id"]
        assert all(len(name) <= 150 for name in get_user_model().objects.values_list("username", flat=True))
        # ... and each is found again.
        again = bearer(external_token(rsa_issuer, claims={"sub": f"{prefix}-1"})).get(ME)
        assert again.json()["user"] == first.json()["user"]

    def test_a_subject_longer_than_the_identity_column_is_refused(self, rsa_issuer):
        assert "subject" in assert_401(bearer(external_token(rsa_issuer, claims={"sub": "s" * 256})).get(ME))
        assert nothing_provisioned()

    def test_the_membership_role_follows_the_role_claim(self, rsa_issuer):
        assert bearer(external_token(rsa_issuer)).get(MEMBERS).status_code == 403
        admin = bearer(external_token(rsa_issuer, claims={"role": "admin"}))
        assert admin.get(MEMBERS).status_code == 200
        assert Membership.objects.get(user__external_identity__subject="auth0|alice").role == "admin"
        viewer = bearer(external_token(rsa_issuer, claims={"role": "viewer"}))
        assert viewer.get(ME).json()["role"] == "viewer"
        assert Membership.objects.get(user__external_identity__subject="auth0|alice").role == "viewer"
        # The admin token still verifies, and it puts the role back: the token is the truth.
        assert admin.get(MEMBERS).status_code == 200

    def test_one_subject_in_two_organizations(self, rsa_issuer, other_org):
        bearer(external_token(rsa_issuer)).get(ME)
        body = bearer(external_token(rsa_issuer, claims={"org": "globex", "role": "manager"})).get(ME).json()
        assert body["organization"]["slug"] == "globex" and body["role"] == "manager"
        roles = dict(Membership.objects.filter(user_id=body["user"]["id"]).values_list("organization__slug", "role"))
        assert roles == {"acme": "operator", "globex": "manager"}

    def test_the_token_only_sees_its_organization(self, rsa_issuer, org, other_org, make_member):
        ours = make_member("viewer", org)
        theirs = make_member("viewer", other_org)
        client = bearer(external_token(rsa_issuer, claims={"role": "admin"}))
        listed = {m["id"] for m in client.get(f"{MEMBERS}?per_page=100").json()}
        assert ours.pk in listed and theirs.pk not in listed
        assert client.get(f"{MEMBERS}/{theirs.pk}").status_code == 404

    def test_es256_with_an_ec_p256_key(self, external_issuer, ec_key, org):
        external_issuer(PUBLIC_KEY=public_pem(ec_key))
        response = bearer(external_token(ec_key, "ES256", claims={"role": "manager"})).get(ME)
        assert response.status_code == 200, response.content
        assert response.json()["role"] == "manager"

    def test_custom_claim_names(self, external_issuer, rsa_key, org):
        external_issuer(
            PUBLIC_KEY=public_pem(rsa_key), ORG_CLAIM="https://sla.example/org", ROLE_CLAIM="https://sla.example/role"
        )
        custom = {"https://sla.example/org": "acme", "https://sla.example/role": "admin"}
        response = bearer(external_token(rsa_key, claims={**custom, "org": "globex", "role": "viewer"})).get(MEMBERS)
        assert response.status_code == 200, response.content
        # The default names alone no longer count.
        assert_401(bearer(external_token(rsa_key, claims={"sub": "auth0|bob"})).get(ME))

    def test_external_token_cannot_refresh(self, rsa_issuer, anon):
        response = anon.post("/api/v1/token/refresh", {"refresh": external_token(rsa_issuer)}, format="json")
        assert_401(response)


@pytest.mark.django_db
class TestPublicKeyRejections:
    def test_unknown_org(self, rsa_issuer):
        assert "nowhere" in assert_401(bearer(external_token(rsa_issuer, claims={"org": "nowhere"})).get(ME))
        assert nothing_provisioned()

    @pytest.mark.parametrize("org_claim", [None, ["acme"], 42, ""])
    def test_missing_or_malformed_org_claim(self, rsa_issuer, org_claim):
        if org_claim is None:
            token = external_token(rsa_issuer, drop=("org",))
        else:
            token = external_token(rsa_issuer, claims={"org": org_claim})
        assert_401(bearer(token).get(ME))
        assert nothing_provisioned()

    @pytest.mark.parametrize("role", ["superuser", "Admin", "", ["admin"], None])
    def test_invalid_or_missing_role_claim(self, rsa_issuer, role):
        if role is None:
            token = external_token(rsa_issuer, drop=("role",))
        else:
            token = external_token(rsa_issuer, claims={"role": role})
        assert "role" in assert_401(bearer(token).get(ME))
        assert nothing_provisioned()

    @pytest.mark.parametrize("claim", ["exp", "sub", "iss", "aud"])
    def test_a_missing_required_claim(self, rsa_issuer, claim):
        assert claim in assert_401(bearer(external_token(rsa_issuer, drop=(claim,))).get(ME))
        assert nothing_provisioned()

    def test_expired(self, rsa_issuer):
        token = external_token(rsa_issuer, claims={"exp": int(time.time()) - 10})
        assert "expired" in assert_401(bearer(token).get(ME))

    def test_wrong_issuer(self, rsa_issuer):
        token = external_token(rsa_issuer, claims={"iss": "https://evil.example.com/"})
        assert "issuer" in assert_401(bearer(token).get(ME)).lower()
        assert nothing_provisioned()

    @pytest.mark.parametrize("audience", ["another-api", ["another-api", "other"]])
    def test_wrong_audience(self, rsa_issuer, audience):
        token = external_token(rsa_issuer, claims={"aud": audience})
        assert "audience" in assert_401(bearer(token).get(ME)).lower()

    def test_audience_list_including_ours_is_fine(self, rsa_issuer):
        token = external_token(rsa_issuer, claims={"aud": ["another-api", "sla-api"]})
        assert bearer(token).get(ME).status_code == 200

    def test_signed_by_another_key(self, rsa_issuer, other_rsa_key):
        assert_401(bearer(external_token(other_rsa_key)).get(ME))
        assert nothing_provisioned()

    def test_es256_against_an_rsa_public_key(self, rsa_issuer, ec_key):
        assert_401(bearer(external_token(ec_key, "ES256")).get(ME))

    def test_hs256_signed_with_the_public_key_pem(self, rsa_issuer):
        pem = public_pem(rsa_issuer)
        for secret in (pem.encode(), pem.strip().encode()):
            token = craft({"alg": "HS256", "typ": "JWT"}, external_claims(role="admin"), secret=secret)
            assert_401(bearer(token).get(ME))
        assert nothing_provisioned()

    @pytest.mark.parametrize("alg", ["none", "RS512", "PS256", "EdDSA"])
    def test_other_algorithms(self, rsa_issuer, alg):
        token = craft({"alg": alg, "typ": "JWT"}, external_claims(), signature=b"sig")
        assert "not accepted" in assert_401(bearer(token).get(ME))

    def test_tampered_signature(self, rsa_issuer):
        header, payload, _ = external_token(rsa_issuer).split(".")
        _, _, other_signature = external_token(rsa_issuer, claims={"role": "viewer"}).split(".")
        assert_401(bearer(f"{header}.{payload}.{other_signature}").get(ME))

    @pytest.mark.parametrize("missing", ["ISSUER", "AUDIENCE"])
    def test_no_token_is_accepted_without_issuer_and_audience_configured(self, external_issuer, rsa_key, org, missing):
        external_issuer(PUBLIC_KEY=public_pem(rsa_key), **{missing: ""})
        for claims in ({}, {"iss": "https://anyone.example/"}):
            assert_401(bearer(external_token(rsa_key, claims=claims)).get(ME))
        assert nothing_provisioned()

    def test_a_deactivated_provisioned_user(self, rsa_issuer, other_org):
        user_id = bearer(external_token(rsa_issuer)).get(ME).json()["user"]["id"]
        get_user_model().objects.filter(pk=user_id).update(is_active=False)
        assert "not active" in assert_401(bearer(external_token(rsa_issuer)).get(ME))
        # ... and no new membership is made for it elsewhere.
        assert_401(bearer(external_token(rsa_issuer, claims={"org": "globex"})).get(ME))
        assert list(Membership.objects.filter(user_id=user_id).values_list("organization__slug", flat=True)) == ["acme"]

    def test_local_tokens_still_work_with_an_external_issuer(self, rsa_issuer, org, make_member):
        member = make_member("viewer", org)
        assert bearer(issue_tokens(member)["access"]).get(ME).status_code == 200


@pytest.mark.django_db
class TestJWKS:
    def test_rs256_and_es256_keys_from_the_jwks(self, external_issuer, jwks_server, rsa_key, ec_key, org):
        external_issuer(JWKS_URL=jwks_server.url)
        rs = bearer(external_token(rsa_key, kid="rsa-1")).get(ME)
        assert rs.status_code == 200, rs.content
        es = bearer(external_token(ec_key, "ES256", kid="ec-1", claims={"sub": "auth0|bob"})).get(ME)
        assert es.status_code == 200, es.content
        assert ExternalIdentity.objects.count() == 2
        # The key set is fetched once and cached.
        assert jwks_server.hits == ["/jwks.json"]

    def test_public_key_setting_is_not_used_when_a_jwks_url_is_set(
        self, external_issuer, jwks_server, rsa_key, other_rsa_key, org
    ):
        external_issuer(JWKS_URL=jwks_server.url, PUBLIC_KEY=public_pem(other_rsa_key))
        assert bearer(external_token(rsa_key, kid="rsa-1")).get(ME).status_code == 200
        assert_401(bearer(external_token(other_rsa_key, kid="rsa-1")).get(ME))

    def test_unknown_or_missing_kid(self, external_issuer, jwks_server, rsa_key, org):
        external_issuer(JWKS_URL=jwks_server.url)
        assert_401(bearer(external_token(rsa_key, kid="rotated-away")).get(ME))
        assert_401(bearer(external_token(rsa_key)).get(ME))
        assert nothing_provisioned()

    def test_a_key_used_with_the_other_algorithm(self, external_issuer, jwks_server, rsa_key, ec_key, org):
        external_issuer(JWKS_URL=jwks_server.url)
        # An EC-signed token naming the RSA key's kid.
        assert_401(bearer(external_token(ec_key, "ES256", kid="rsa-1")).get(ME))

    def test_wrong_issuer_via_jwks(self, external_issuer, jwks_server, rsa_key, org):
        external_issuer(JWKS_URL=jwks_server.url)
        token = external_token(rsa_key, kid="rsa-1", claims={"iss": "https://evil.example.com/"})
        assert_401(bearer(token).get(ME))

    def test_jwks_unreachable_is_401(self, external_issuer, rsa_key, org):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        _jwks_client.cache_clear()
        try:
            external_issuer(JWKS_URL=f"http://127.0.0.1:{port}/jwks.json")
            assert_401(bearer(external_token(rsa_key, kid="rsa-1")).get(ME))
        finally:
            _jwks_client.cache_clear()

    def test_jwks_endpoint_answering_html_is_401_not_500(self, external_issuer, jwks_server, rsa_key, org):
        external_issuer(JWKS_URL=jwks_server.broken_url)
        assert_401(bearer(external_token(rsa_key, kid="rsa-1")).get(ME))
        assert jwks_server.hits == ["/broken"]
