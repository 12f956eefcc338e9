from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from config.errors import DomainError
from events.admin import ReadOnlyAdminMixin

from . import services
from .models import Breach


class WaiveForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea, max_length=2000, strip=True)


@admin.register(Breach)
class BreachAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id", "contract", "work_order", "metric", "overage_minutes", "penalty_amount", "currency", "state", "final",
        "detected_at",
    ]  # fmt: skip
    list_filter = ["state", "metric", "final", "organization"]
    search_fields = ["contract__reference", "work_order__reference"]
    list_select_related = ["contract", "work_order"]
    actions = ["acknowledge", "waive"]

    @admin.action(description="Acknowledge selected breaches", permissions=["change_through_service"])
    def acknowledge(self, request, queryset):
        for breach in queryset:
            self._run(request, breach, lambda b: services.acknowledge_breach(breach=b, actor=request.user))

    @admin.action(description="Waive selected breaches…", permissions=["change_through_service"])
    def waive(self, request, queryset):
        """Asks for the reason first (a waiver without one is not accepted), then waives."""
        form = WaiveForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            for breach in queryset:
                self._run(request, breach, lambda b: services.waive_breach(breach=b, actor=request.user, reason=reason))
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Waive breaches",
            "opts": self.model._meta,
            "breaches": queryset,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/breaches/breach/waive.html", context)

    def _run(self, request, breach, act):
        try:
            act(breach)
        except DomainError as exc:
            messages.error(request, f"Breach {breach.pk}: {exc.message}")
        else:
            messages.success(request, f"Breach {breach.pk}: done.")
