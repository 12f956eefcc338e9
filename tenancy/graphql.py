"""GraphQL types of tenancy: the caller (`me`) and the organization's memberships (admins only)."""

from __future__ import annotations

import strawberry
import strawberry_django
from strawberry import auto

from config.graphql.base import (
    OffsetPaginated,
    TenantType,
    UserRef,
    resource_get,
    resource_list,
    tenant,
)

from . import models
from .api import MembershipViewSet


@strawberry_django.type(models.Membership, name="Membership")
class Membership(TenantType):
    rest_view = MembershipViewSet
    read_role = "admin"

    id: strawberry.ID
    user: UserRef
    role: auto
    created_at: auto
    updated_at: auto


@strawberry.type(description="The caller's organization.")
class Organization:
    slug: str
    name: str
    default_currency: str
    default_time_zone: str


@strawberry.type(description="Who is calling, in which organization, with which role (REST GET /me).")
class Me:
    user: UserRef
    organization: Organization
    role: str


@strawberry.type
class Query:
    membership: Membership = resource_get()
    memberships: OffsetPaginated[Membership] = resource_list()

    @strawberry.field
    def me(self, info: strawberry.Info) -> Me:
        context = tenant(info)
        org = context.organization
        return Me(
            user=context.membership.user,
            organization=Organization(
                slug=org.slug,
                name=org.name,
                default_currency=org.default_currency,
                default_time_zone=org.default_time_zone,
            ),
            role=context.role,
        )
