import json

from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.utils.html import format_html

from .models import Event


def pretty_json(value) -> str:
    """A JSON payload as staff read it: indented, keys sorted, non-ASCII kept."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


class ReadOnlyAdminMixin:
    """Records that change only through their services (or never: the audit trail) are looked
    at in the admin, not added, edited or deleted by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_through_service_permission(self, request):
        """An action that changes such records through their service (`permissions=
        ["change_through_service"]`) takes the model's change permission, which the page itself
        never grants."""
        return request.user.has_perm(f"{self.opts.app_label}.{get_permission_codename('change', self.opts)}")


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "occurred_at", "organization", "type", "object_type", "object_id", "actor"]
    list_filter = ["type", "object_type", "organization"]
    search_fields = ["type", "object_type", "=object_id"]
    list_select_related = ["organization", "actor"]
    ordering = ["-id"]
    exclude = ["payload"]
    readonly_fields = ["payload_json"]

    @admin.display(description="Payload")
    def payload_json(self, event):
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', pretty_json(event.payload))
