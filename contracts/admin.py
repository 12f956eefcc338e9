from django.contrib import admin

from . import services
from .models import Counterparty


@admin.register(Counterparty)
class CounterpartyAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "reference", "organization", "source", "source_id", "updated_at"]
    list_filter = ["kind", "organization"]
    search_fields = ["name", "reference", "email", "source_id"]
    list_select_related = ["organization"]
    readonly_fields = ["created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        # A counterparty never moves between organizations.
        return [*self.readonly_fields, "organization"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        # Through the services, so the admin writes the same events as the API.
        data = {name: form.cleaned_data[name] for name in form.changed_data if name != "organization"}
        if change:
            services.update_counterparty(instance=Counterparty.objects.get(pk=obj.pk), actor=request.user, data=data)
        else:
            created = services.create_counterparty(organization=obj.organization, actor=request.user, data=data)
            obj.pk = created.pk

    def delete_model(self, request, obj):
        services.delete_counterparty(instance=obj, actor=request.user)
