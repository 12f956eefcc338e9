"""Token, refresh, me and members endpoints."""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api.csv import JSONErrorsMixin
from config.api.exceptions import Unprocessable
from config.api.filters import PredicateFilterSet
from config.api.serializers import ActionSerializer, ReferenceField, ResourceSerializer
from config.api.throttling import AnonThrottle, LoginAddressThrottle, LoginUsernameThrottle
from config.api.viewsets import ResourceViewSet

from .auth import issue_tokens, refresh_access
from .models import Membership, Role


# Request bodies are named without `Request`: drf-spectacular adds it (`TokenRequest`).
class TokenSerializer(ActionSerializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=256, trim_whitespace=False)
    org = serializers.SlugField(required=False, max_length=64)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class RefreshSerializer(ActionSerializer):
    refresh = serializers.CharField()


REJECTED = OpenApiResponse({"$ref": "#/components/schemas/Error"}, description="The credentials were rejected.")


class PublicAuthView(JSONErrorsMixin, APIView):
    """An endpoint that takes credentials in its body instead of a bearer token.

    With no authentication classes DRF would turn every AuthenticationFailed into a 403 (it has
    no WWW-Authenticate challenge to send); rejected credentials are a 401 here too.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    taken_query_params = ()

    def get_authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class TokenView(PublicAuthView):
    """Log in: a token pair for the user in one organization. Attempts are limited per client
    address and per username (`THROTTLE_LOGIN_RATE`, default 10 a minute each)."""

    throttle_classes = [AnonThrottle, LoginAddressThrottle, LoginUsernameThrottle]

    @extend_schema(request=TokenSerializer, responses={200: TokenPairSerializer, 401: REJECTED}, auth=[])
    def post(self, request):
        form = TokenSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        user = authenticate(request, username=data["username"], password=data["password"])
        if user is None:
            raise AuthenticationFailed("Invalid username or password.")
        memberships = list(Membership.objects.select_related("organization", "user").filter(user=user))
        if data.get("org"):
            memberships = [m for m in memberships if m.organization.slug == data["org"]]
            if not memberships:
                raise AuthenticationFailed(f"You are not a member of organization {data['org']!r}.")
        if not memberships:
            raise AuthenticationFailed("You are not a member of any organization.")
        if len(memberships) > 1:
            slugs = ", ".join(sorted(m.organization.slug for m in memberships))
            raise Unprocessable(
                "You are a member of several organizations: say which with org.",
                {"org": [f"Required; one of: {slugs}."]},
            )
        return Response(issue_tokens(memberships[0]))


class TokenRefreshView(PublicAuthView):
    """A new access token (with the membership's current role) for a refresh token."""

    @extend_schema(
        request=RefreshSerializer,
        responses={200: inline_serializer("AccessToken", {"access": serializers.CharField()}), 401: REJECTED},
        auth=[],
    )
    def post(self, request):
        form = RefreshSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return Response({"access": refresh_access(form.validated_data["refresh"])})


class MeView(JSONErrorsMixin, APIView):
    taken_query_params = ()

    @extend_schema(
        responses={
            200: inline_serializer(
                "Me",
                {
                    "user": inline_serializer(
                        "MeUser", {"id": serializers.IntegerField(), "username": serializers.CharField()}
                    ),
                    "organization": inline_serializer(
                        "MeOrganization",
                        {
                            "slug": serializers.CharField(),
                            "name": serializers.CharField(),
                            "default_currency": serializers.CharField(),
                            "default_time_zone": serializers.CharField(),
                        },
                    ),
                    # The roles a membership has (`RoleEnum`, as /members says): a client decides what to offer by it.
                    "role": serializers.ChoiceField(choices=Role.choices),
                },
            )
        }
    )
    def get(self, request):
        organization = request.auth.organization
        return Response(
            {
                "user": {"id": request.user.pk, "username": request.user.get_username()},
                "organization": {
                    "slug": organization.slug,
                    "name": organization.name,
                    "default_currency": organization.default_currency,
                    "default_time_zone": organization.default_time_zone,
                },
                "role": request.auth.role,
            }
        )


class MembershipSerializer(ResourceSerializer):
    user = ReferenceField()

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at", "updated_at"]
        read_only_fields = fields
        default_fields = fields


class MembershipFilterSet(PredicateFilterSet):
    class Meta:
        model = Membership
        fields = ["role", "created_at"]


class MembershipViewSet(ResourceViewSet):
    """The organization's memberships (admins only)."""

    queryset = Membership.objects.select_related("user")
    serializer_class = MembershipSerializer
    filterset_class = MembershipFilterSet
    # `username` is the membership's copy of its user's (issue 15): the same order, and the page's
    # ids come off the index `membership_org_username` instead of a join sorted across every member.
    sort_fields = {"username": "username", "role": "role", "created_at": "created_at"}
    default_sort = "username"
    read_role = "admin"
    write_role = "admin"
