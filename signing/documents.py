"""The terms a counterparty is asked to accept, as one canonical document, and its SHA-256.

The document is what the approval page shows: the contract's summary and every term (generic
over `TERM_FIELDS`, so terms other features add are covered), its line items, its SLA targets
(the open versions of its active rules, with the business hours each counts in) and money. Its
hash is taken over the canonical JSON (sorted keys, no spaces), so the same terms always give the
same hash and any change gives another: a link whose hash no longer matches is void.
"""

from __future__ import annotations

import hashlib
import json

from contracts import terms
from contracts.models import Contract
from events.services import jsonable
from slas.models import SlaRule
from tenancy.currencies import quantize


def terms_document(contract: Contract) -> dict:
    snapshot = terms.read_terms(contract)
    line_items = snapshot.pop("line_items")
    rules = SlaRule.objects.filter(contract=contract, active=True, effective_to__isnull=True).select_related("calendar")
    document = {
        "contract": {
            "id": contract.pk,
            "reference": contract.reference,
            "name": contract.name,
            "description": contract.description,
            "counterparty": contract.counterparty.name,
            "approval_round": contract.approval_round,
        },
        "terms": {
            **snapshot,
            "contract_value": (
                None if contract.contract_value is None else str(quantize(contract.contract_value, contract.currency))
            ),
        },
        "line_items": line_items,
        "sla_rules": [
            {
                "name": rule.name,
                "metric": rule.metric,
                "priorities": rule.priorities,
                "target_minutes": rule.target_minutes,
                "calendar": rule.calendar.name if rule.calendar_id else "24x7",
                # What a business minute is: a target's meaning. Only the name was signed, so the
                # calendar's hours could change after the counterparty accepted (eleventh round).
                "business_hours": business_hours(rule.calendar) if rule.calendar_id else None,
                "pause_on_hold": rule.pause_on_hold,
                "penalty": rule.penalty,
                "monthly_penalty_cap": jsonable(rule.monthly_penalty_cap),
            }
            for rule in sorted(rules, key=lambda r: (r.metric, r.name, r.pk))
        ],
    }
    if contract.billing_calendar_id:
        # The hours outside which `out_of_hours_multiplier` prices the work: money the counterparty
        # signs, so the calendar's hours are signed as a rule's are (only its id was; regression sweep).
        # Only when there is one, so the documents (and hashes) of contracts without one are unchanged.
        calendar = contract.billing_calendar
        document["billing_calendar"] = {"name": calendar.name, "business_hours": business_hours(calendar)}
    return document


def business_hours(calendar) -> dict:
    """A calendar as the counterparty reads and signs it: zone, weekly hours, holidays."""
    return {
        "time_zone": calendar.time_zone,
        "hours": calendar.hours,
        "holidays": calendar.holidays,
        "holiday_country": calendar.holiday_country,
        "holiday_subdivision": calendar.holiday_subdivision,
        "working_days": calendar.working_days,
    }


def document_hash(document: dict) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def terms_hash(contract: Contract) -> str:
    return document_hash(terms_document(contract))
