"""JWT authentication that puts every request inside one organization (DESIGN §4).

Two kinds of bearer token are accepted:

- HS256 tokens this service issues (`POST /api/v1/token`, `manage.py issue_token`), carrying
  `user_id`, `org` (slug) and `role`. The role that counts is the membership's current one, so
  a demotion takes effect at once; a token whose org the user is no longer a member of is a 401.
  Each also carries `credentials`, a stamp of the user's password (Django's session auth hash):
  setting a new password revokes every token issued before it, as it ends the user's sessions.
- RS256/ES256 tokens from an external OAuth2 issuer, when `JWT_PUBLIC_KEY` or `JWT_JWKS_URL`
  is set. Issuer and audience are required and checked; the organization and role come from
  the configured claims, and a local user (plus its membership) is provisioned for the token's
  `sub` on first use and kept in step with the token's role.

The algorithm is chosen from the token header, but each algorithm is bound to its own key:
an HS256 token is only ever checked with the service's secret, so a token "signed" with the
public key as an HMAC secret fails, and `alg: none` is refused.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from dataclasses import dataclass

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils.crypto import constant_time_compare
from rest_framework import authentication, exceptions
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from config.cache import CACHE_ERRORS, warn

from .models import ExternalIdentity, Membership, Organization, Role, role_at_least

LOCAL_ALGORITHM = "HS256"
# The claim that binds a token to the password its user had when it was issued.
CREDENTIALS_CLAIM = "credentials"
SUBJECT_MAX_LENGTH = ExternalIdentity._meta.get_field("subject").max_length


@dataclass(frozen=True)
class TenantContext:
    """`request.auth`: who is calling, in which organization, with which role."""

    membership: Membership
    claims: dict
    token: str = ""  # as presented: a live stream checks it again before each read (stream.reader)

    @property
    def organization(self) -> Organization:
        return self.membership.organization

    @property
    def role(self) -> str:
        return self.membership.role

    def has_role(self, required: str) -> bool:
        return role_at_least(self.role, required)


def credentials_stamp(user) -> str:
    """The `credentials` claim of a token for `user`: Django's session auth hash (an HMAC of the
    password hash with SECRET_KEY), so a new password revokes older tokens; a SECRET_KEY moved to
    SECRET_KEY_FALLBACKS keeps them, as it keeps sessions."""
    return user.get_session_auth_hash()


def issue_tokens(membership: Membership) -> dict[str, str]:
    """A refresh and an access token for one membership (user in one organization)."""
    refresh = RefreshToken.for_user(membership.user)
    refresh["org"] = membership.organization.slug
    refresh["role"] = membership.role
    refresh[CREDENTIALS_CLAIM] = credentials_stamp(membership.user)  # copied into the access token
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def _verified(token_class, raw: str, what: str):
    """A simplejwt token, signature and claims checked; any defect is a 401, never a 500.

    A correctly signed token may still carry claims of the wrong type (`exp` as a string or
    beyond any date, `user_id` not an integer, `org` not a string): those are rejected as well.
    """
    try:
        token = token_class(raw)
    except TokenError as exc:
        raise exceptions.AuthenticationFailed(f"{what} rejected: {exc}") from None
    except (TypeError, ValueError, OverflowError):
        # simplejwt reads exp/iat as epoch seconds: a string or an astronomic number fails there.
        raise exceptions.AuthenticationFailed(f"{what} rejected: malformed claims.") from None
    problems = _claim_problems(token.payload)
    if problems:
        raise exceptions.AuthenticationFailed(f"{what} rejected: malformed claims ({'; '.join(problems)}).")
    return token


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _claim_problems(claims: dict) -> list[str]:
    user_claim = settings.SIMPLE_JWT.get("USER_ID_CLAIM", "user_id")
    problems = []
    for name in ("exp", "iat"):
        if name in claims and not (_is_int(claims[name]) and 0 <= claims[name] < 2**53):
            problems.append(f"{name} must be a number of seconds")
    user_id = claims.get(user_claim)
    if isinstance(user_id, str) and user_id.isascii() and user_id.isdigit() and len(user_id) < 19:
        user_id = int(user_id)  # simplejwt issues the id as a string of digits
    if not (_is_int(user_id) and 0 < user_id < 2**63):
        problems.append(f"{user_claim} must be a positive integer")
    for name in ("org", "role", "jti", "token_type", CREDENTIALS_CLAIM):
        if name in claims and not isinstance(claims[name], str):
            problems.append(f"{name} must be a string")
    return problems


def refresh_access(raw_refresh: str) -> str:
    """A new access token from a refresh token, with the membership's current role."""
    refresh = _verified(RefreshToken, raw_refresh, "Refresh token")
    membership = _check_credentials(refresh.payload, _local_membership(refresh.payload))
    refresh["role"] = membership.role
    return str(refresh.access_token)


def _local_membership(claims: dict) -> Membership:
    user_id, org = claims.get(settings.SIMPLE_JWT.get("USER_ID_CLAIM", "user_id")), claims.get("org")
    if user_id is None or not org:
        raise exceptions.AuthenticationFailed("Token has no user or organization claim.")
    membership = (
        Membership.objects.select_related("user", "organization")
        .filter(user_id=user_id, organization__slug=org)
        .first()
    )
    if membership is None or not membership.user.is_active:
        raise exceptions.AuthenticationFailed(f"No active membership of organization {org!r} for this token.")
    return membership


def _check_credentials(claims: dict, membership: Membership) -> Membership:
    """The membership, when the token was issued under its user's current password; else a 401.
    A token issued before the password was last set (or before tokens carried the stamp) is
    revoked by it, as Django's sessions are: a stolen token dies with the password."""
    stamp, user = claims.get(CREDENTIALS_CLAIM), membership.user
    if stamp is None:
        # Not a password change: the token predates the stamp (README: log in again once after the
        # upgrade). Saying "password changed" sent users hunting for a break-in that never happened.
        raise exceptions.AuthenticationFailed(
            "Token revoked: it was issued before tokens carried a credentials stamp (a service upgrade). Log in again."
        )
    # As Django's sessions: a stamp made with a key of SECRET_KEY_FALLBACKS still holds while it is listed.
    valid = (credentials_stamp(user), *user.get_session_auth_fallback_hash())
    if not isinstance(stamp, str) or not any(constant_time_compare(stamp, known) for known in valid):
        raise exceptions.AuthenticationFailed(
            "Token revoked: the user's password changed after it was issued. Log in again."
        )
    return membership


# --- The membership behind an access token, cached (issue 15) ------------------------------------
# The joined membership query was about 14% of a list request. The membership (with its user
# and organization) is kept in the cache for at most the token's remaining lifetime, and the
# receivers in tenancy/signals.py delete it whenever the membership, its user or its
# organization is saved or deleted, so a demotion or a removal takes effect on the next request.
# Several processes share one cache only with REDIS_URL (as the throttle counters do), so the cache
# is used only then (settings.MEMBERSHIP_CACHE; found by an outside sweep).
# While Redis fails, the membership is read from the database (never a 500, never a stale one); a
# delete that failed leaves an entry Redis may serve once back, so entries live at most
# MEMBERSHIP_CACHE_SECONDS (ninth round).

MEMBERSHIP_CACHE_PREFIX = "tenancy:membership"
logger = logging.getLogger("tenancy")


def membership_cache_key(user_id, org_slug: str) -> str:
    # The slug is hashed: it may hold characters a cache key must not (memcached's rules).
    digest = hashlib.sha256(str(org_slug).encode()).hexdigest()[:32]
    return f"{MEMBERSHIP_CACHE_PREFIX}:{int(user_id)}:{digest}"


def forget_memberships(pairs) -> None:
    """Drop the cached memberships of these (user_id, org slug) pairs."""
    keys = [membership_cache_key(user_id, slug) for user_id, slug in pairs]
    if keys:
        _delete(keys)
        # Again once the change is committed: a request between the write and the commit still
        # read the old row and may have cached it.
        transaction.on_commit(lambda: _delete(keys))


def _delete(keys) -> None:
    try:
        cache.delete_many(keys)
    except CACHE_ERRORS as exc:
        # The change is made; the old entry lapses within MEMBERSHIP_CACHE_SECONDS.
        logger.error("membership cache: could not forget %d memberships (%s: %s)", len(keys), type(exc).__name__, exc)


def cached_local_membership(claims: dict) -> Membership:
    """`_local_membership`, served from the cache while the access token lives (when
    `settings.MEMBERSHIP_CACHE`: a cache every process shares)."""
    if not settings.MEMBERSHIP_CACHE:
        return _check_credentials(claims, _local_membership(claims))
    user_id, org = claims.get(settings.SIMPLE_JWT.get("USER_ID_CLAIM", "user_id")), claims.get("org")
    if user_id is None or not org:
        raise exceptions.AuthenticationFailed("Token has no user or organization claim.")
    key = membership_cache_key(user_id, org)
    try:
        membership = cache.get(key)
    except CACHE_ERRORS as exc:
        warn("membership read from the database", exc)
        return _check_credentials(claims, _local_membership(claims))
    if membership is None:
        membership = _local_membership(claims)
        seconds = int(claims["exp"] - time.time()) if "exp" in claims else 0
        seconds = min(seconds, settings.MEMBERSHIP_CACHE_SECONDS)
        if seconds > 0:
            try:
                cache.set(key, membership, timeout=seconds)
            except CACHE_ERRORS as exc:
                warn("membership read from the database", exc)
    return _check_credentials(claims, membership)


@functools.lru_cache(maxsize=4)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5)


def external_issuer_enabled() -> bool:
    config = settings.EXTERNAL_JWT
    return bool(config["PUBLIC_KEY"] or config["JWKS_URL"])


class TenantJWTAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: use 'Bearer <token>'.")
        return self.authenticate_token(header[1].decode("latin-1"))

    def authenticate_token(self, raw: str):
        """(user, TenantContext) for a bearer token given on its own (the WebSocket stream's
        first message); AuthenticationFailed when it is not accepted."""
        try:
            algorithm = jwt.get_unverified_header(raw).get("alg")
        except jwt.PyJWTError:
            raise exceptions.AuthenticationFailed("Malformed token.") from None
        if algorithm == LOCAL_ALGORITHM:
            membership, claims = self._local(raw)
        elif algorithm in settings.EXTERNAL_JWT["ALGORITHMS"] and external_issuer_enabled():
            membership, claims = self._external(raw)
        else:
            raise exceptions.AuthenticationFailed(f"Token algorithm {algorithm!r} is not accepted.")
        return membership.user, TenantContext(membership=membership, claims=claims, token=raw)

    def _local(self, raw: str) -> tuple[Membership, dict]:
        token = _verified(AccessToken, raw, "Token")
        return cached_local_membership(token.payload), dict(token.payload)

    def _external(self, raw: str) -> tuple[Membership, dict]:
        config = settings.EXTERNAL_JWT
        if not (config["ISSUER"] and config["AUDIENCE"]):
            # PyJWT skips the issuer check when no issuer is given: never accept such tokens.
            raise exceptions.AuthenticationFailed("External tokens are refused: issuer or audience not configured.")
        key = config["PUBLIC_KEY"]
        if config["JWKS_URL"]:
            try:
                # The PyJWK itself, not its bare key: it binds the key to its own algorithm, so
                # an ES256 token naming an RSA key's kid is refused instead of crashing PyJWT.
                key = _jwks_client(config["JWKS_URL"]).get_signing_key_from_jwt(raw)
            except (jwt.PyJWTError, ValueError) as exc:
                # ValueError: the JWKS endpoint answered with something that is not JSON.
                raise exceptions.AuthenticationFailed(f"Token rejected: no signing key: {exc}") from None
        try:
            claims = jwt.decode(
                raw,
                key,
                algorithms=config["ALGORITHMS"],
                audience=config["AUDIENCE"],
                issuer=config["ISSUER"],
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise exceptions.AuthenticationFailed(f"Token rejected: {exc}") from None
        org_slug, role = claims.get(config["ORG_CLAIM"]), claims.get(config["ROLE_CLAIM"])
        if role not in Role.values:
            raise exceptions.AuthenticationFailed(f"Token role claim {role!r} is not one of {', '.join(Role.values)}.")
        organization = Organization.objects.filter(slug=org_slug).first() if isinstance(org_slug, str) else None
        if organization is None:
            raise exceptions.AuthenticationFailed(f"Token organization {org_slug!r} is not known here.")
        if len(claims["sub"]) > SUBJECT_MAX_LENGTH:
            raise exceptions.AuthenticationFailed(f"Token subject is longer than {SUBJECT_MAX_LENGTH} characters.")
        return provision_external_user(claims["iss"], claims["sub"], organization, role), claims


def external_username(issuer: str, subject: str) -> str:
    """The local username of an external subject: unique per (issuer, subject), at most 150 characters."""
    issuer_tag = hashlib.sha256(issuer.encode()).hexdigest()[:8]
    username = f"ext:{issuer_tag}:{subject}"
    if len(username) > 150:
        # Truncating would give two long subjects with a common prefix the same user.
        username = f"ext:{issuer_tag}:sha256:{hashlib.sha256(subject.encode()).hexdigest()}"
    return username


@transaction.atomic
def provision_external_user(issuer: str, subject: str, organization: Organization, role: str) -> Membership:
    """The local user and membership of an external subject, created on first use."""
    identities = ExternalIdentity.objects.select_related("user").filter(issuer=issuer, subject=subject)
    identity = identities.first()
    if identity is None:
        try:
            with transaction.atomic():
                user = get_user_model()(username=external_username(issuer, subject))
                user.set_unusable_password()
                user.save()
                identity = ExternalIdentity.objects.create(issuer=issuer, subject=subject, user=user)
        except IntegrityError:
            # A concurrent first request of the same subject created it: use that one.
            identity = identities.first()
            if identity is None:
                raise
    if not identity.user.is_active:
        raise exceptions.AuthenticationFailed("This user is not active.")
    membership, created = Membership.objects.select_related("user", "organization").get_or_create(
        user=identity.user, organization=organization, defaults={"role": role}
    )
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role", "updated_at"])
    return membership
