from django.contrib import admin, messages

from config.errors import DomainError

from . import services
from .models import Calendar, SlaRule


def _changed(form) -> dict:
    return {name: form.cleaned_data[name] for name in form.changed_data if name != "organization"}


@admin.register(Calendar)
class CalendarAdmin(admin.ModelAdmin):
    list_display = ["name", "time_zone", "holiday_country", "holiday_subdivision", "organization", "updated_at"]
    list_filter = ["time_zone", "holiday_country", "organization"]
    search_fields = ["name"]
    readonly_fields = ["created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        # Through the services: an edit recomputes the running clocks that use the calendar.
        if change:
            calendar = services.update_calendar(
                instance=Calendar.objects.get(pk=obj.pk), actor=request.user, data=_changed(form)
            )
            messages.info(request, f"{calendar.recomputed_clocks} running clocks recomputed.")
        else:
            obj.pk = services.create_calendar(organization=obj.organization, actor=request.user, data=_changed(form)).pk

    def delete_model(self, request, obj):
        try:
            services.delete_calendar(instance=obj, actor=request.user)
        except DomainError as exc:
            messages.error(request, exc.message)


@admin.register(SlaRule)
class SlaRuleAdmin(admin.ModelAdmin):
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
    readonly_fields = ["previous_version", "created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        try:
            if change:
                services.update_rule(instance=SlaRule.objects.get(pk=obj.pk), actor=request.user, data=_changed(form))
            else:
                obj.pk = services.create_rule(organization=obj.organization, actor=request.user, data=_changed(form)).pk
        except DomainError as exc:
            messages.error(request, exc.message)
