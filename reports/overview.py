"""What the staff dashboard shows for one organization (each piece through a selector)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from breaches.models import Breach
from contracts.models import Contract
from ledger.admin import burn_down_svg
from ledger.models import LedgerEntry

from . import at_risk, charts, compliance

AT_RISK_MINUTES = 4 * 60
EXPIRING_DAYS = 90
LISTED = 20
BURN_DOWNS = 3


def overview(organization, now: dt.datetime) -> dict:
    zone = organization.default_time_zone
    local_today = now.astimezone(ZoneInfo(zone)).date()
    first_month = (local_today.replace(day=1) - dt.timedelta(days=330)).replace(day=1)
    query = compliance.ComplianceQuery(date_from=first_month, date_to=local_today, time_zone=zone, group_by=("month",))
    found = {row["month"]: row for row in compliance.compliance_report(organization=organization, query=query, now=now)}
    # Every month of the twelve gets its slot, an empty one when nothing was decided then.
    months = [
        found.get(label) or {"month": label, "decided": 0, "achieved_percent": None}
        for label, _, _ in compliance.period_buckets(query, "month")
    ]
    risky = list(
        at_risk.at_risk_clocks(organization=organization, now=now, within_minutes=AT_RISK_MINUTES).order_by(
            "due_at", "pk"
        )[:LISTED]
    )
    contracts_low = list(
        Contract.objects.filter(organization=organization, status=Contract.Status.ACTIVE)
        .filter(pk__in=LedgerEntry.objects.filter(organization=organization).values("contract_id"))
        .order_by("remaining_hours", "pk")[:BURN_DOWNS]
    )
    return {
        "organization": organization,
        "now": now,
        "months": months,
        "compliance_chart": charts.compliance_bars_svg(months),
        "open_breaches": list(
            Breach.objects.filter(organization=organization, state=Breach.State.OPEN)
            .select_related("contract", "work_order", "sla_rule")
            .order_by("-detected_at", "-pk")[:LISTED]
        ),
        "open_breach_count": Breach.objects.filter(organization=organization, state=Breach.State.OPEN).count(),
        "at_risk": [(clock_row, at_risk.risk_figures(clock_row, now)) for clock_row in risky],
        "expiring": list(
            Contract.objects.filter(
                organization=organization,
                status=Contract.Status.ACTIVE,
                expiry_date__gte=local_today,
                expiry_date__lte=local_today + dt.timedelta(days=EXPIRING_DAYS),
            )
            .select_related("counterparty")
            .order_by("expiry_date", "pk")[:LISTED]
        ),
        "burn_downs": [(contract, burn_down_svg(contract, now=now)) for contract in contracts_low],
    }
