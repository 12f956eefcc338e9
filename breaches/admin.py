from django.contrib import admin, messages

from config.admin_forms import ask_reason
from config.errors import DomainError
from events.admin import ReadOnlyAdminMixin

from . import services
from .models import Breach


@admin.register(Breach)
class BreachAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id", "contract", "work_order", "metric", "overage_minutes", "penalty_amount", "currency", "penalty_month",
        "state", "final", "detected_at", "waived_at",
    ]  # fmt: skip
    list_filter = ["state", "metric", "final", "organization"]
    # A month's penalties ("2026-10"): a waiver after the month is a correction in the month it was made.
    search_fields = ["contract__reference", "work_order__reference", "=penalty_month"]
    list_select_related = ["contract", "work_order"]
    actions = ["acknowledge", "waive"]

    @admin.action(description="Acknowledge selected breaches", permissions=["change_through_service"])
    def acknowledge(self, request, queryset):
        for breach in queryset:
            self._run(request, breach, lambda b: services.acknowledge_breach(breach=b, actor=request.user))

    @admin.action(description="Waive selected breaches…", permissions=["change_through_service"])
    def waive(self, request, queryset):
        """Asks for the reason first (a waiver without one is not accepted), then waives."""
        reason, page = ask_reason(
            self,
            request,
            queryset,
            title="Waive breaches",
            intro="Waive these breaches; each penalty is reversed in the ledger:",
            submit="Waive",
            describe=lambda breach: f"{breach} ({breach.penalty_amount} {breach.currency})",
        )
        if page is not None:
            return page
        for breach in queryset:
            self._run(request, breach, lambda b: services.waive_breach(breach=b, actor=request.user, reason=reason))
        return None

    def _run(self, request, breach, act):
        try:
            act(breach)
        except DomainError as exc:
            messages.error(request, f"Breach {breach.pk}: {exc.message}")
        else:
            messages.success(request, f"Breach {breach.pk}: done.")
