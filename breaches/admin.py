from django.contrib import admin, messages

from config.api.exceptions import APIError

from . import services
from .models import Breach


@admin.register(Breach)
class BreachAdmin(admin.ModelAdmin):
    list_display = [
        "id", "contract", "work_order", "metric", "overage_minutes", "penalty_amount", "currency", "state", "final",
        "detected_at",
    ]  # fmt: skip
    list_filter = ["state", "metric", "final", "organization"]
    search_fields = ["contract__reference", "work_order__reference"]
    list_select_related = ["contract", "work_order"]
    actions = ["acknowledge", "waive"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Acknowledge selected breaches")
    def acknowledge(self, request, queryset):
        for breach in queryset:
            self._run(request, breach, lambda b: services.acknowledge_breach(breach=b, actor=request.user))

    @admin.action(description="Waive selected breaches (reason: waived by staff in the admin)")
    def waive(self, request, queryset):
        reason = f"Waived by {request.user} in the admin."
        for breach in queryset:
            self._run(request, breach, lambda b: services.waive_breach(breach=b, actor=request.user, reason=reason))

    def _run(self, request, breach, act):
        try:
            act(breach)
        except APIError as exc:
            messages.error(request, f"Breach {breach.pk}: {exc.message}")
        else:
            messages.success(request, f"Breach {breach.pk}: done.")
