"""GraphQL types of visit plans and their occurrences (visits) (issue 13; operators and up, as REST)."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import zoneinfo
from typing import Annotated

import strawberry
import strawberry_django
from django.utils import timezone
from strawberry import auto
from strawberry_django.pagination import OffsetPaginationInfo, OffsetPaginationInput

from config.api.filters import MAX_DB_ID
from config.errors import BadRequest
from config.graphql.base import (
    ContractChildType,
    Direction,
    OffsetPaginated,
    at_most_list_values,
    object_id,
    page_window,
    reference_id,
    require_role,
    resource_get,
    resource_list,
)
from config.graphql.errors import OperationError  # noqa: F401  (a member of the result unions)
from config.graphql.mutations import (
    API,
    Deleted,
    DeleteResult,
    answer,
    body_of,
    call_rest,
    child_path,
    input_from_serializer,
    operation_error,
    pk_of,
    result_union,
)
from config.graphql.scalars import DateOrInstant
from contracts.graphql import Asset, Contract
from contracts.services import contract_for_line_items as contract_of_route
from slas.graphql import Calendar
from workorders import models
from workorders.graphql import WorkOrder
from workorders.visits import next_occurrences

from .api import MAX_SPAN, VISIT_SORTS, VisitPlanSerializer, VisitPlanViewSet, day_or_instant, sorted_visits
from .selectors import STATES, contract_visits


@strawberry_django.type(models.VisitPlan, name="VisitPlan")
class VisitPlan(ContractChildType):
    rest_view = VisitPlanViewSet

    id: strawberry.ID
    contract: Contract
    summary: auto
    recurrence: auto
    duration_minutes: auto
    hours_allocated: auto
    priority: auto
    asset: Asset | None
    site: auto
    generate_days_in_advance: auto
    tolerance_minutes: auto
    on_holiday: auto
    calendar: Calendar | None
    active_from: auto
    active_to: auto
    generated_until: auto
    created_at: auto
    updated_at: auto

    @strawberry_django.field(
        only=[
            "recurrence",
            "active_from",
            "active_to",
            "generated_until",
            "on_holiday",
            "calendar",
            "asset",  # none on a date its asset has left the contract's coverage (workorders.visits)
            "contract__status",  # a closed contract plans none
            "contract__time_zone",
            "contract__start_date",
            "contract__expiry_date",
        ],
        select_related=["contract", "calendar"],
        prefetch_related=["contract__term_versions"],  # where the term ends as agreed, read once a page
        description="The next five visits not generated yet (by the plan's current rule, where onHoliday puts "
        "them); none once the contract is expired, terminated or renewed.",
    )
    def next_occurrences(self) -> list[dt.datetime]:
        return next_occurrences(self, after=timezone.now())


VisitState = strawberry.enum(enum.Enum("VisitState", {s: s for s in STATES}), description="A visit's state.")


@strawberry.type(description="One occurrence of a visit plan, with its job and the hours logged on it.")
class Visit:
    visit_plan: VisitPlan
    occurrence: dt.datetime
    ends_at: dt.datetime
    state: VisitState
    work_order: WorkOrder | None
    hours_allocated: decimal.Decimal | None
    hours_logged: decimal.Decimal


VisitOrderField = strawberry.enum(
    enum.Enum("VisitOrderField", {key.upper(): key for key in VISIT_SORTS}), description="A REST sort key of visits."
)


@strawberry.input(description="One sort key of visits.")
class VisitOrder:
    field: VisitOrderField
    direction: Direction = Direction.ASC


@strawberry.type(
    name="VisitOffsetPaginated",
    description="A page of a contract's visits, as every root list pages (REST's `page`/`per_page` and "
    "`X-Pagination-Total-Entries`).",
)
class VisitPage:
    page_info: OffsetPaginationInfo
    total_count: int = strawberry.field(description="Visits in the window matching the filters, on every page.")
    results: list[Visit]


@strawberry.type
class Query:
    visit_plan: VisitPlan = resource_get()
    visit_plans: OffsetPaginated[VisitPlan] = resource_list()

    @strawberry.field(
        description="REST GET /api/v1/contracts/{contractId}/visits: the occurrences of the contract's visit "
        "plans in [from, to) (default: the last 30 days and the next 90; at most 366 days), in time order; "
        "a page of `pagination` (default 20, at most 100), as every root list."
    )
    def contract_visits(
        self,
        info: strawberry.Info,
        contract_id: strawberry.ID,
        from_: Annotated[DateOrInstant | None, strawberry.argument(name="from")] = None,
        to: DateOrInstant | None = None,
        visit_plan_ids: list[strawberry.ID] | None = None,
        states: list[VisitState] | None = None,
        pagination: OffsetPaginationInput | None = None,
        order: Annotated[
            list[VisitOrder] | None,
            strawberry.argument(description="Sort keys, first first (REST `?sort=`); default: `occurrence`."),
        ] = None,
    ) -> VisitPage:
        context = require_role(info, VisitPlanViewSet.read_role)
        contract = contract_of_route(organization=context.organization, contract_id=object_id(contract_id) or 0)
        at_most_list_values(visitPlanIds=visit_plan_ids, states=states)
        now = timezone.now()
        tz = zoneinfo.ZoneInfo(contract.time_zone)  # a bare date is that day in the contract's zone, as REST
        start = now - dt.timedelta(days=30) if from_ is None else day_or_instant(from_, "from", tz)
        end = now + dt.timedelta(days=90) if to is None else day_or_instant(to, "to", tz)
        if not start < end or end - start > MAX_SPAN:
            raise BadRequest("to must be after from, at most 366 days later.", {"to": ["Out of range."]})
        plan_ids = None
        if visit_plan_ids is not None:
            plan_ids = [reference_id(p) for p in visit_plan_ids]  # ` 1` as REST's `?visit_plan_id=`
            if None in plan_ids:  # REST's words for `?visit_plan_id=` (visits.api._list_param)
                wrong = visit_plan_ids[plan_ids.index(None)]
                raise BadRequest(
                    f"visitPlanIds takes ids from 1 to {MAX_DB_ID}.", {"visitPlanIds": [f"'{wrong}' is not an id."]}
                )
        chosen = [s.value for s in states] if states is not None else None
        visits = contract_visits(contract, start=start, end=end, now=now, plan_ids=plan_ids, states=chosen)
        if order:
            visits = sorted_visits(visits, [(o.field.value, o.direction == Direction.DESC) for o in order])
        offset, limit = page_window(pagination)
        shown = [
            Visit(
                visit_plan=v.plan,
                occurrence=v.occurrence,
                ends_at=v.ends_at,
                state=VisitState(v.state),
                work_order=v.work_order,
                hours_allocated=v.plan.hours_allocated,
                hours_logged=v.hours_logged,
            )
            for v in visits[offset : offset + limit]
        ]
        return VisitPage(
            page_info=OffsetPaginationInfo(offset=offset, limit=limit), total_count=len(visits), results=shown
        )


VisitPlanInput = input_from_serializer("VisitPlanInput", VisitPlanSerializer)
VisitPlanResult = result_union(VisitPlan)


def _plan_path(info, pk) -> str:
    return child_path(info, models.VisitPlan, pk, "visit_plans")


@strawberry.type
class Mutation:
    @strawberry.mutation(description="REST POST /api/v1/contracts/{contractId}/visit_plans.")
    def create_visit_plan(
        self, info: strawberry.Info, contract_id: strawberry.ID, input: VisitPlanInput
    ) -> VisitPlanResult:
        path = f"{API}/contracts/{pk_of(contract_id)}/visit_plans"
        return answer(models.VisitPlan, *call_rest(info, "POST", path, body_of(input)))

    @strawberry.mutation(description="REST PATCH /api/v1/contracts/{contractId}/visit_plans/{id}.")
    def update_visit_plan(self, info: strawberry.Info, id: strawberry.ID, input: VisitPlanInput) -> VisitPlanResult:
        return answer(models.VisitPlan, *call_rest(info, "PATCH", _plan_path(info, id), body_of(input)))

    @strawberry.mutation(description="REST DELETE /api/v1/contracts/{contractId}/visit_plans/{id}.")
    def delete_visit_plan(self, info: strawberry.Info, id: strawberry.ID) -> DeleteResult:
        status, data = call_rest(info, "DELETE", _plan_path(info, id))
        return operation_error(status, data) if status >= 400 else Deleted(id=id)
