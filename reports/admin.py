"""The staff dashboard: "SLA overview" in the admin, one page per organization.

The list page shows the first organization's overview with links to the others; an
organization's "change" page is its overview. Charts are server-rendered SVG (no scripts).
"""

from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils import timezone

from .models import SlaOverview
from .overview import AT_RISK_MINUTES, EXPIRING_DAYS, overview


@admin.register(SlaOverview)
class SlaOverviewAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _render(self, request, organization):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"SLA overview: {organization.name}" if organization else "SLA overview",
            "organizations": SlaOverview.objects.order_by("name"),
            "at_risk_minutes": AT_RISK_MINUTES,
            "expiring_days": EXPIRING_DAYS,
        }
        if organization is not None:
            context.update(overview(organization, timezone.now()))
        return TemplateResponse(request, "admin/reports/sla_overview.html", context)

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            return super().changelist_view(request, extra_context)
        return self._render(request, SlaOverview.objects.order_by("name").first())

    def change_view(self, request, object_id, form_url="", extra_context=None):
        organization = self.get_object(request, object_id)
        if organization is None or not self.has_view_permission(request, organization):
            return super().change_view(request, object_id, form_url, extra_context)
        return self._render(request, organization)
