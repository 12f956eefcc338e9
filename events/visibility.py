"""Which events a role reads: an event's payload is a copy of its resource, so a role reads the
events of the resources it may read (found by an outside sweep: a viewer read assets' serial
numbers and webhook URLs through `/api/v1/events` and the streams, though both resources are
closed to viewers).

The app that owns a resource registers the role its events need, from its `AppConfig.ready()` as
reactions are registered (`events.handlers`), so this lower app names none of them:

    restrict("asset.", AssetViewSet.read_role)
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from tenancy.models import role_at_least

_read_roles: dict[str, str] = {}


def restrict(type_prefix: str, role: str) -> None:
    """Events whose type starts with `type_prefix` are read from `role` up."""
    _read_roles[type_prefix] = role


def readable_by(queryset: QuerySet, role: str) -> QuerySet:
    """The events of `queryset` a member with `role` may read."""
    hidden = Q()
    for prefix, required in _read_roles.items():
        if not role_at_least(role, required):
            hidden |= Q(type__startswith=prefix)
    return queryset.exclude(hidden) if hidden else queryset
