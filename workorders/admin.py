import zoneinfo
from types import SimpleNamespace

from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from config.admin_forms import (
    ApiCheckedForm,
    OrganizationFixedOnChange,
    ServiceDeletesAndActions,
    TypedKeys,
    default_when_blank,
)
from config.errors import DomainError
from contracts.admin import ContractAdmin
from events.admin import ReadOnlyAdminMixin

from . import rules, visits
from .models import ContractRule, Hold, SlaClock, VisitPlan, WorkOrder
from .rules_api import CriterionSerializer


class HoldInline(admin.TabularInline):
    model = Hold
    extra = 0
    fields = ["kind", "start", "end", "reason"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class ClockInline(admin.TabularInline):
    model = SlaClock
    extra = 0
    fields = ["rule", "metric", "target_minutes", "started_at", "due_at", "stopped_at", "state", "elapsed_seconds"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("rule")  # each row shows its rule: one query


@admin.register(WorkOrder)
class WorkOrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Work orders come from dispatch systems through the API; here staff look, not edit, so
    that every change goes through the service that keeps the clocks true."""

    list_display = [
        "__str__",
        "summary",
        "contract",
        "priority",
        "status",
        "reported_at",
        "resolved_at",
        "organization",
    ]
    list_filter = ["status", "priority", "organization"]
    search_fields = ["reference", "summary", "source_id", "contract__reference"]
    list_select_related = ["contract", "organization"]
    inlines = [HoldInline, ClockInline]
    readonly_fields = ["how_the_contract_was_matched"]

    @admin.display(description="How the contract was matched")
    def how_the_contract_was_matched(self, obj):
        match = obj.contract_match
        if not match:
            return "not recorded (the job predates contract matching)"
        rule = match.get("rule") or {}
        return format_html(
            "<strong>{}</strong>{}{}<br>{}",
            match.get("method"),
            f" by rule {rule.get('name')!r} (id {rule.get('id')})" if rule else "",
            f", score {match['score']}" if match.get("score") is not None else "",
            match.get("explanation", ""),
        )


# --- issue 13: contract rules and visit plans ---------------------------------------------------


class ServiceAdminMixin(ServiceDeletesAndActions):
    """Add, change and delete through the services (events, rules), as the API does: the form's
    `write` (`config.admin_forms.ApiCheckedForm`), which the form dry-ran when it was cleaned."""

    def save_model(self, request, obj, form, change):
        obj.pk = form.write(actor=request.user, data=form.written_data()).pk

    def delete_model(self, request, obj):
        self.delete(instance=obj, actor=request.user)


def _add_api_errors(form, errors: dict) -> None:
    """The services' and serializers' field errors on the admin form (else on the form itself)."""
    for name, messages_ in errors.items():
        form.add_error(name if name in form.fields else None, [f"{name}: {m}" for m in messages_])


class ContractRuleForm(ApiCheckedForm):
    api_serializer = "workorders.rules_api.ContractRuleSerializer"

    class Meta:
        model = ContractRule
        fields = ["organization", "name", "sequence", "enabled", "criteria", "outcome", "contract"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # No criteria (`[]`): a rule that holds for every job, as the API takes it (found by an
        # outside sweep: the form called an empty list missing, so such a rule could not be saved).
        # A staff user who may only view the rule gets a form without fields: nothing to relax.
        if "criteria" in self.fields:
            self.fields["criteria"].required = False

    def clean(self):
        data = super().clean()
        if data.get("criteria") is None:
            data["criteria"] = []
        organization = data.get("organization") or getattr(self.instance, "organization", None)
        if (data.get("outcome") == ContractRule.Outcome.CONTRACT) != (data.get("contract") is not None):
            self.add_error("contract", "Outcome contract needs a contract; not_covered takes none.")
        # The API's checks of criteria (fields, operators, ids of this organization).
        context = {"request": SimpleNamespace(auth=SimpleNamespace(organization=organization))}
        check = CriterionSerializer(data=data.get("criteria") or [], many=True, context=context)
        if not check.is_valid():
            _add_api_errors(self, {"criteria": [str(check.errors)]})
        return data

    def write(self, *, actor, data):
        if self.instance.pk is None:
            return rules.create_contract_rule(organization=self.api_organization(), actor=actor, data=data)
        return rules.update_contract_rule(instance=self.instance, actor=actor, data=data)


@admin.register(ContractRule)
class ContractRuleAdmin(TypedKeys, OrganizationFixedOnChange, ServiceAdminMixin, admin.ModelAdmin):
    """Which contract covers a job: the enabled rule with the lowest sequence whose criteria all hold."""

    form = ContractRuleForm
    list_display = ["name", "sequence", "enabled", "outcome", "contract", "organization"]
    list_filter = ["enabled", "outcome", "organization"]
    search_fields = ["name", "contract__reference"]
    list_select_related = ["contract", "organization"]
    ordering = ["organization", "sequence", "id"]
    autocomplete_fields = ["contract"]
    readonly_fields = ["created_at", "updated_at"]

    delete = staticmethod(rules.delete_contract_rule)


def next_five(plan: VisitPlan) -> str:
    if plan.pk is None:
        return "-"
    try:
        upcoming = visits.next_occurrences(plan, after=timezone.now())
    except ValueError as exc:
        return str(exc)
    local = [o.astimezone(zoneinfo.ZoneInfo(plan.contract.time_zone)) for o in upcoming]
    return format_html_join(", ", "{}", ((o.strftime("%a %Y-%m-%d %H:%M"),) for o in local)) or "none"


class VisitPlanForm(ApiCheckedForm):
    """A plan as the API checks it (found by an outside sweep: a negative number of hours, dates
    before 2000, a lead time of 9999 days were stored), then the service's rules."""

    api_serializer = "visits.api.VisitPlanSerializer"

    class Meta:
        model = VisitPlan
        fields = [
            "contract", "summary", "recurrence", "duration_minutes", "hours_allocated", "priority", "asset", "site",
            "generate_days_in_advance", "tolerance_minutes", "on_holiday", "calendar", "active_from", "active_to",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # rules.create_visit_plan's default, as the API's plan without one.
        default_when_blank(self, "active_from", "today in the contract's time zone, or its start date if later")
        default_when_blank(self, "on_holiday", "keep (visits on holidays too), as the API's plan without one")

    def clean_on_holiday(self):
        return self.cleaned_data.get("on_holiday") or VisitPlan.OnHoliday.KEEP

    def _contract(self):
        return self.cleaned_data.get("contract") or (self.instance.contract if self.instance.contract_id else None)

    def api_organization(self):
        contract = self._contract()
        return contract.organization if contract is not None else None

    def api_context(self, organization) -> dict:
        return {**super().api_context(organization), "contract": self._contract()}

    def written_data(self) -> dict:
        return {name: value for name, value in super().written_data().items() if name != "contract"}

    def write(self, *, actor, data):
        if self.instance.pk is None:
            return rules.create_visit_plan(contract=self._contract(), actor=actor, data=data)
        return rules.update_visit_plan(instance=self.instance, actor=actor, data=data)

    def clean(self):
        data = super().clean()
        contract = data.get("contract") or getattr(self.instance, "contract", None)
        if self.errors or contract is None or not data.get("active_from"):
            return data
        kept = {f: getattr(self.instance, f) for f in ("asset", "calendar")}
        plan = VisitPlan(**{**kept, **data, "contract": contract})
        try:
            rules.check_plan(plan, contract)
        except DomainError as exc:
            _add_api_errors(self, exc.errors or {"__all__": [exc.message]})
        return data


@admin.register(VisitPlan)
class VisitPlanAdmin(TypedKeys, ServiceAdminMixin, admin.ModelAdmin):
    """Planned visits: each occurrence becomes a work order ahead of time (run_lifecycle)."""

    form = VisitPlanForm

    list_display = [
        "summary", "contract", "recurrence", "priority", "on_holiday", "calendar", "active_from", "active_to",
        "organization",
    ]  # fmt: skip
    list_filter = ["priority", "on_holiday", "organization"]
    search_fields = ["summary", "contract__reference", "recurrence", "calendar__name"]
    list_select_related = ["contract", "calendar", "organization"]
    autocomplete_fields = ["contract", "asset", "calendar"]
    readonly_fields = ["organization", "generated_until", "next_occurrences", "created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "contract"] if obj else self.readonly_fields

    @admin.display(description="Next five occurrences (contract time)")
    def next_occurrences(self, obj):
        return next_five(obj)

    delete = staticmethod(rules.delete_visit_plan)


class VisitPlanInline(admin.TabularInline):
    """A contract's visit plans with their next five occurrences; edited on their own page."""

    model = VisitPlan
    extra = 0
    fields = ["plan", "recurrence", "priority", "active_from", "active_to", "next_occurrences"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("contract", "calendar")  # next_five reads both

    @admin.display(description="Plan")
    def plan(self, obj):
        url = reverse("admin:workorders_visitplan_change", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.summary)

    @admin.display(description="Next five occurrences")
    def next_occurrences(self, obj):
        return next_five(obj)


# The contract's page lists its visit plans; contracts (a lower app) do not know about them.
ContractAdmin.inlines = [*ContractAdmin.inlines, VisitPlanInline]
