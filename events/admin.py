from django.contrib import admin

from .models import Event


class ReadOnlyAdminMixin:
    """Records that change only through their services (or never: the audit trail) are looked
    at in the admin, not added, edited or deleted by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "occurred_at", "organization", "type", "object_type", "object_id", "actor"]
    list_filter = ["type", "object_type", "organization"]
    search_fields = ["type", "object_type", "=object_id"]
    list_select_related = ["organization", "actor"]
    ordering = ["-id"]
