"""The reports as GraphQL queries (issue 11): SLA compliance and the clocks at risk.

Each runs the REST view's own parameter checks and computation, so both faces give the same rows
and the same 400 messages (field paths in GraphQL's names).
"""

from __future__ import annotations

import datetime as dt
import enum
from types import SimpleNamespace
from typing import Annotated

import strawberry
from django.http import QueryDict
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from strawberry import UNSET
from strawberry_django.pagination import OffsetPaginationInfo, OffsetPaginationInput

from config.errors import BadRequest
from config.graphql.base import (
    MAX_PAGE_SIZE,
    Json,
    at_most_list_values,
    camel,
    filter_input,
    order_input,
    page_window,
    require_role,
    rest_filter,
)
from config.graphql.enums import enum_of
from config.graphql.scalars import BigInt, instant_text
from slas.models import SlaRule
from workorders.graphql import SlaClock
from workorders.models import WorkOrder

from . import at_risk, compliance
from .api import AtRiskFilterSet, AtRiskViewSet, ComplianceView

Metric = enum_of(SlaRule, "metric")
Priority = enum_of(WorkOrder, "priority")
ComplianceGroup = strawberry.enum(
    enum.Enum("ComplianceGroup", {key: key for key in compliance.GROUPS}), description="A key to group by."
)


@strawberry.type(description="An object named in a report row.")
class Reference:
    id: strawberry.ID
    name: str | None


@strawberry.type(description="Minutes from start to decision of the decided clocks.")
class ComplianceMinutes:
    mean: float | None
    p50: float | None
    p90: float | None
    max: float | None


@strawberry.type(description="One group of the SLA compliance report: its keys (those grouped by) and figures.")
class ComplianceRow:
    contract: Reference | None = None
    counterparty: Reference | None = None
    sla_rule: Reference | None = None
    metric: Metric | None = None
    priority: Priority | None = None
    month: str | None = None
    week: str | None = None
    decided: int
    met: int
    breached: int
    achieved_percent: float | None
    minutes: ComplianceMinutes
    overage_minutes: BigInt = strawberry.field(description="Whole minutes, as REST writes them.")
    penalties: Json = strawberry.field(
        description='Per currency: {"EUR": "120.00"}. The breaches settled in the period, less those waived in it '
        "that an earlier period counted (so it may be negative)."
    )
    waived: int = strawberry.field(description="The waivers made in the period.")
    open_at_end: int


def _reference(value):
    return Reference(id=value["id"], name=value.get("name")) if isinstance(value, dict) else None


def _rest_errors(exc: BadRequest, names: dict[str, str]) -> BadRequest:
    errors = {names.get(k, camel(k)): v for k, v in (exc.errors or {}).items()}
    return BadRequest(exc.message, errors or None)


@strawberry.type
class Query:
    @strawberry.field(
        description="REST GET /api/v1/reports/sla_compliance: per group, decided clocks, met, breached, "
        "minutes to stop, overage and penalties, from `from` to `to` (local dates, inclusive)."
    )
    def sla_compliance(
        self,
        info: strawberry.Info,
        from_: Annotated[dt.date, strawberry.argument(name="from")],
        to: dt.date,
        group_by: list[ComplianceGroup] | None = None,
        contract_ids: list[strawberry.ID] | None = None,
        counterparty_ids: list[strawberry.ID] | None = None,
        metrics: list[Metric] | None = None,
        priorities: list[Priority] | None = None,
        time_zone: str | None = None,
    ) -> list[ComplianceRow]:
        context = require_role(info, ComplianceView.read_role)
        at_most_list_values(
            contractIds=contract_ids, counterpartyIds=counterparty_ids, metrics=metrics, priorities=priorities
        )
        params = {
            "from": from_.isoformat(),
            "to": to.isoformat(),
            "group_by": group_by and ",".join(g.value for g in group_by),
            "time_zone": time_zone,
        }
        # A list given empty goes as an empty value, which REST reads as "selects nothing" (as
        # `in: []` does); left out, it selects everything. `[]` read as left out.
        selections = {
            "contract_id": contract_ids and list(map(str, contract_ids)),
            "counterparty_id": counterparty_ids and list(map(str, counterparty_ids)),
            "metric": metrics and [m.value for m in metrics],
            "priority": priorities and [p.value for p in priorities],
        }
        names = {"contract_id": "contractIds", "counterparty_id": "counterpartyIds", "metric": "metrics",
                 "priority": "priorities", "group_by": "groupBy", "time_zone": "timeZone"}  # fmt: skip
        query = QueryDict(mutable=True)
        query.update({k: v for k, v in params.items() if v})
        query.update({k: ",".join(v) for k, v in selections.items() if v is not None})
        view = ComplianceView()
        view.request = SimpleNamespace(query_params=query, auth=context, accepted_renderer=JSONRenderer())
        try:
            rows = view.get(view.request).data  # the REST view's checks and computation
        except BadRequest as exc:
            raise _rest_errors(exc, names) from None
        return [
            ComplianceRow(
                contract=_reference(row.get("contract")),
                counterparty=_reference(row.get("counterparty")),
                sla_rule=_reference(row.get("sla_rule")),
                metric=row.get("metric"),
                priority=row.get("priority"),
                month=row.get("month"),
                week=row.get("week"),
                decided=row["decided"],
                met=row["met"],
                breached=row["breached"],
                achieved_percent=row["achieved_percent"],
                minutes=ComplianceMinutes(**row["minutes"]),
                overage_minutes=row["overage_minutes"],
                penalties={k: str(v) for k, v in row["penalties"].items()},
                waived=row["waived"],
                open_at_end=row["open_at_end"],
            )
            for row in rows
        ]

    @strawberry.field(
        description="REST GET /api/v1/reports/at_risk: clocks still running whose due time falls within "
        "`withinMinutes` (default 120) from now, past due first (`order` on REST's sort keys); a page of "
        "`pagination` (default 20, at most 100), as every root list."
    )
    def sla_at_risk(
        self,
        info: strawberry.Info,
        within_minutes: int = 120,
        filters: AtRiskFilter | None = None,
        order: Annotated[
            list[AtRiskClockOrder] | None,
            strawberry.argument(description="Sort keys, first first (REST `?sort=`); default: `due_at`."),
        ] = None,
        pagination: OffsetPaginationInput | None = None,
        limit: Annotated[
            int | None, strawberry.argument(deprecation_reason="Use pagination: {limit}, as every root list.")
        ] = None,
        offset: Annotated[
            int | None, strawberry.argument(deprecation_reason="Use pagination: {offset}, as every root list.")
        ] = None,
    ) -> AtRiskPage:
        context = require_role(info, AtRiskViewSet.read_role)
        if not 0 <= within_minutes <= 525600:
            raise BadRequest(
                "within_minutes must be a whole number from 0 to 525600.", {"withinMinutes": ["Out of range."]}
            )
        offset, limit = _at_risk_window(pagination, limit, offset)
        now = timezone.now()
        clocks = at_risk.at_risk_clocks(organization=context.organization, now=now, within_minutes=within_minutes)
        clocks = rest_filter(AtRiskViewSet, clocks, info, filters, order)  # REST's sort, ties by id
        page = list(clocks[offset : offset + limit])
        items = []
        for row in page:
            figures = at_risk.risk_figures(row, now)
            items.append(
                AtRiskClock(
                    clock=row,
                    remaining_minutes=figures["remaining_minutes"],
                    percent_used=figures["percent_used"],
                    next_escalation=figures["next_escalation"]
                    and {
                        **figures["next_escalation"],
                        "at": figures["next_escalation"]["at"] and instant_text(figures["next_escalation"]["at"]),
                    },
                )
            )
        return AtRiskPage(
            total_count=clocks.count(), page_info=OffsetPaginationInfo(offset=offset, limit=limit), results=items
        )


def _at_risk_window(pagination, limit, offset) -> tuple[int, int]:
    """(offset, limit) of an at-risk page: `pagination` as every root list (checked up front by
    `limits.PageSizeLimiter`), or the deprecated `limit`/`offset` (0 to 100, at least 0), not both."""
    if pagination is not None and (limit is not None or offset is not None):
        given = [name for name, value in (("limit", limit), ("offset", offset)) if value is not None]
        raise BadRequest(
            f"Give pagination or {' and '.join(given)}, not both ({' and '.join(given)}: deprecated).",
            {name: ["Not with pagination."] for name in given},
        )
    if pagination is None:
        if limit is not None and not 0 <= limit <= MAX_PAGE_SIZE or offset is not None and offset < 0:
            # Keyed by the argument that is wrong (a bad offset was reported under `limit`).
            wrong = {"limit": ["Out of range."]} if limit is not None and not 0 <= limit <= MAX_PAGE_SIZE else {}
            wrong |= {"offset": ["Out of range."]} if offset is not None and offset < 0 else {}
            raise BadRequest(f"limit must be between 0 and {MAX_PAGE_SIZE}, offset at least 0.", wrong)
        pagination = OffsetPaginationInput(offset=offset or 0, limit=UNSET if limit is None else limit)
    return page_window(pagination)


AtRiskFilter = filter_input("AtRiskFilter", AtRiskFilterSet)


@strawberry.type(description="A clock at risk and its figures at the request's instant.")
class AtRiskClock:
    clock: SlaClock
    remaining_minutes: int
    percent_used: float
    next_escalation: Json | None = strawberry.field(description="{name, at_percent, at} of the next escalation.")


AtRiskClockOrder = order_input("AtRiskClockOrder", list(AtRiskViewSet.sort_fields))


@strawberry.type(description="A page of the clocks at risk, as every root list pages (REST's `page`/`per_page`).")
class AtRiskPage:
    total_count: int = strawberry.field(description="Clocks at risk matching the filters, on every page.")
    page_info: OffsetPaginationInfo
    results: list[AtRiskClock]

    @strawberry.field(deprecation_reason="Use results, as every root list.")
    def items(self) -> list[AtRiskClock]:
        return self.results
