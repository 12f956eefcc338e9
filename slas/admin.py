from django.contrib import admin, messages

from config.admin_forms import (
    ApiCheckedForm,
    OrderedChoices,
    OrganizationFixedOnChange,
    ServiceDeletesAndActions,
    ViewableRawIds,
    default_when_blank,
)
from config.errors import DomainError

from . import services
from .models import Calendar, SlaRule


class CalendarForm(ApiCheckedForm):
    """A calendar as the API checks it (found by an outside sweep: malformed hours, an unknown
    holiday country and a working day that is no date were 500s, a holiday in 1800 was stored)."""

    api_serializer = "slas.api.CalendarSerializer"

    def write(self, *, actor, data):
        if self.instance.pk is None:
            return services.create_calendar(organization=self.api_organization(), actor=actor, data=data)
        return services.update_calendar(instance=Calendar.objects.get(pk=self.instance.pk), actor=actor, data=data)


@admin.register(Calendar)
class CalendarAdmin(OrderedChoices, OrganizationFixedOnChange, ServiceDeletesAndActions, admin.ModelAdmin):
    form = CalendarForm
    choices_ordering = ("name", "pk")
    list_display = ["name", "time_zone", "holiday_country", "holiday_subdivision", "organization", "updated_at"]
    list_filter = ["time_zone", "holiday_country", "organization"]
    search_fields = ["name"]
    readonly_fields = ["created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        # Through the services: an edit recomputes the running clocks that use the calendar.
        calendar = form.write(actor=request.user, data=form.written_data())
        obj.pk = calendar.pk
        if change:
            messages.info(request, f"{calendar.recomputed_clocks} running clocks recomputed.")

    def delete_model(self, request, obj):
        services.delete_calendar(instance=obj, actor=request.user)


class SlaRuleForm(ApiCheckedForm):
    """The API's checks before anything is saved (found by an outside sweep: the admin stored an
    escalation of text percentages, which made every new job of the band a 500, a negative
    penalty and unknown priorities, and said "changed successfully" for a change the service had
    refused): see `config.admin_forms`."""

    api_serializer = "slas.api.SlaRuleSerializer"

    class Meta:
        model = SlaRule
        fields = [
            "organization", "contract", "name", "metric", "priorities", "target_minutes", "calendar", "pause_on_hold",
            "escalation", "penalty", "monthly_penalty_cap", "active", "effective_from", "effective_to",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # services.default_effective_from, as the API's rule without one.
        default_when_blank(
            self,
            "effective_from",
            "from the start of the contract's start date in its time zone while a draft, else from now",
        )

    def write(self, *, actor, data):
        if self.instance.pk is None:
            return services.create_rule(organization=self.api_organization(), actor=actor, data=data)
        return services.update_rule(instance=SlaRule.objects.get(pk=self.instance.pk), actor=actor, data=data)


@admin.register(SlaRule)
class SlaRuleAdmin(ViewableRawIds, OrganizationFixedOnChange, ServiceDeletesAndActions, admin.ModelAdmin):
    form = SlaRuleForm
    list_display = [
        "name",
        "contract",
        "metric",
        "target_minutes",
        "calendar",
        "active",
        "effective_from",
        "effective_to",
    ]
    list_filter = ["metric", "active", "organization"]
    search_fields = ["name", "contract__reference", "contract__name"]
    list_select_related = ["contract", "calendar"]
    raw_id_fields = ["contract", "calendar", "previous_version"]
    readonly_fields = ["previous_version", "first_version", "created_at", "updated_at"]

    def has_delete_permission(self, request, obj=None):
        # A draft's rule only (its contract's delete takes them along too); past draft a rule is
        # history (clocks and breaches cite it): it ends with an amendment.
        draft = obj is None or obj.contract.status == obj.contract.Status.DRAFT
        return draft and super().has_delete_permission(request, obj)

    def delete_model(self, request, obj):
        services.delete_rule(instance=obj, actor=request.user)

    def save_model(self, request, obj, form, change):
        try:
            obj.pk = form.write(actor=request.user, data=form.written_data()).pk
        except DomainError as exc:
            messages.error(request, exc.message)
