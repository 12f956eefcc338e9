from django.contrib import admin

from events.admin import ReadOnlyAdminMixin

from .models import Hold, SlaClock, WorkOrder


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
