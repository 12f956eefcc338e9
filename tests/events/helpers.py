"""Writing events through `record_event` (order lock, handlers, poke) about a stand-in object."""

from __future__ import annotations

from events.services import record_event


class Thing:
    """What `record_event` needs of a tenant-owned object: organization_id, pk, _meta.model_name."""

    class _meta:
        model_name = "thing"

    def __init__(self, organization, pk: int = 1):
        self.organization_id = organization.pk
        self.pk = pk


def emit(organization, type: str = "thing.happened", **payload):
    return record_event(type=type, obj=Thing(organization), payload=payload)
