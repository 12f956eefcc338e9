"""One organization's worth of every kind of object, built through the services where they exist.

The BOLA sweep builds this for another organization and checks that nothing of it can be reached;
a type in the schema whose model has no object here fails the sweep (add it here)."""

from __future__ import annotations

import datetime as dt

from django.apps import apps
from model_bakery import baker

from contracts.models import Asset, ContractApproval, LineItem
from notifications.models import WebhookEndpoint
from slas.models import Calendar
from tests.ledger.helpers import T0, credit, final_breach, job, penalty_rule
from tests.ledger.helpers import active_contract as ledger_contract
from workorders.models import Hold


def build_world(org, member) -> dict[str, list[int]]:
    """Objects of `org` by model label -> ids."""
    contract = ledger_contract(org)
    calendar = baker.make(Calendar, organization=org, name="Office", time_zone="Europe/Amsterdam", hours=[])
    rule = penalty_rule(contract)
    breach = final_breach(contract)
    rule.calendar = calendar  # after the breach: a calendar with no hours would never fall due
    rule.save(update_fields=["calendar"])
    entry = credit(contract, 10)
    open_job = job(contract, reported_at=T0 + dt.timedelta(hours=2), priority="high")
    baker.make(Hold, organization=org, work_order=open_job, start=T0, end=T0 + dt.timedelta(minutes=5))
    baker.make(LineItem, organization=org, contract=contract, description="Inspection", quantity=1)
    baker.make(WebhookEndpoint, organization=org, url="https://hooks.example.com/x", event_types=["*"], secret="s")
    baker.make(Asset, organization=org, counterparty=contract.counterparty, name="Pump 1")
    baker.make(ContractApproval, organization=org, contract=contract, approver=member.user, decision="approved")
    assert breach.pk and entry.pk
    world: dict[str, list[int]] = {}
    for model in apps.get_models():
        if any(f.name == "organization" for f in model._meta.fields):
            ids = list(model.objects.filter(organization=org).values_list("pk", flat=True))
            if ids:
                world[model._meta.label] = ids
    return world
