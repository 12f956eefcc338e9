"""One organization's worth of every kind of object, built through the services where they exist.

The BOLA sweep builds this for another organization and checks that nothing of it can be reached;
a type in the schema whose model has no object here fails the sweep (add it here)."""

from __future__ import annotations

import datetime as dt

from django.apps import apps
from model_bakery import baker

from billing.models import BillingLine, ContractTemplate, ExportBatch
from contracts.models import Amendment, Asset, ContractApproval, LineItem, TermVersion
from events.models import Event
from notifications.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from signing.models import SignatureRequest
from slas.models import Calendar
from tests.ledger.helpers import T0, credit, final_breach, job, penalty_rule
from tests.ledger.helpers import active_contract as ledger_contract
from workorders.models import ContractRule, Hold, VisitPlan


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
    endpoint = baker.make(
        WebhookEndpoint, organization=org, url="https://hooks.example.com/x", event_types=["*"], secret="s"
    )
    asset = baker.make(Asset, organization=org, counterparty=contract.counterparty, name="Pump 1")
    # The resources of GraphQL's second round (amendments .. webhook deliveries).
    amendment = baker.make(Amendment, organization=org, contract=contract, number=1, effective_date=T0.date())
    if not TermVersion.objects.filter(contract=contract).exists():
        baker.make(TermVersion, organization=org, contract=contract, effective_from=T0.date(), terms={})
    baker.make(TermVersion, organization=org, contract=contract, effective_from=T0.date() + dt.timedelta(days=1),
               terms={}, origin="amendment", amendment=amendment)  # fmt: skip
    baker.make(SignatureRequest, organization=org, contract=contract, approval_round=1, email="s@example.com",
               expires_at=T0 + dt.timedelta(days=7))  # fmt: skip
    baker.make(ContractRule, organization=org, contract=contract, name="Pumps", sequence=1, criteria=[])
    baker.make(VisitPlan, organization=org, contract=contract, asset=asset, summary="Monthly check",
               recurrence="FREQ=MONTHLY", active_from=T0.date(), generated_until=T0)  # fmt: skip
    batch = baker.make(ExportBatch, organization=org, contract=contract, date_from=T0.date(), date_to=T0.date(),
                       totals={})  # fmt: skip
    line = baker.make(BillingLine, organization=org, contract=contract, period__organization=org,
                      period__contract=contract, batch=batch, date=T0.date(), currency="EUR")  # fmt: skip
    line.entries.add(entry)
    baker.make(ContractTemplate, organization=org, name="Standard", currency="EUR", line_items=[], sla_rules=[])
    event = Event.objects.filter(organization=org).order_by("id").first() or baker.make(
        Event, organization=org, type="thing.happened", object_type="thing", object_id=1, occurred_at=T0
    )
    delivery = baker.make(WebhookDelivery, organization=org, endpoint=endpoint, event=event)
    baker.make(WebhookAttempt, organization=org, delivery=delivery, number=1, attempted_at=T0)
    baker.make(ContractApproval, organization=org, contract=contract, approver=member.user, decision="approved")
    assert breach.pk and entry.pk
    world: dict[str, list[int]] = {}
    for model in apps.get_models():
        if any(f.name == "organization" for f in model._meta.fields):
            ids = list(model.objects.filter(organization=org).values_list("pk", flat=True))
            if ids:
                world[model._meta.label] = ids
    return world
