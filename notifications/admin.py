from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction

from config.admin_forms import ServiceDeletesAndActions, flat_errors, one_line
from config.errors import DomainError, Unprocessable
from events.admin import ReadOnlyAdminMixin
from events.feed import hold_order
from tenancy.admin import OrganizationAdmin, OrganizationForm
from tenancy.models import Organization

from . import services
from .models import EmailNotification, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from .outbox import invalid_patterns, pattern_error
from .targets import UnsafeTarget, check_url


class DeliveryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = WebhookDelivery
    fields = ["id", "event", "status", "attempts", "last_http_status", "last_duration_ms", "next_attempt_at"]
    readonly_fields = fields
    ordering = ["-id"]
    show_change_link = True
    max_num = 0
    can_delete = False

    def get_queryset(self, request):
        # The latest 20: an endpoint may have thousands.
        latest = super().get_queryset(request).order_by("-id").values_list("pk", flat=True)[:20]
        return super().get_queryset(request).filter(pk__in=list(latest)).select_related("event")


class WebhookEndpointForm(forms.ModelForm):
    """The URL and the event types checked as the API checks them."""

    url = forms.URLField(max_length=2000, assume_scheme="https")

    class Meta:
        model = WebhookEndpoint
        fields = ["organization", "url", "description", "event_types", "active"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            check_url(url)
        except UnsafeTarget as exc:
            raise ValidationError(str(exc)) from None
        return url

    def clean_description(self):
        one_line(self.cleaned_data["description"])  # as POST /webhooks checks it
        return self.cleaned_data["description"]

    def clean_event_types(self):
        value = self.cleaned_data["event_types"]
        if not isinstance(value, list) or not value:
            raise ValidationError('A list of event type patterns, e.g. ["breach.*"].')
        bad = invalid_patterns(value)
        if bad:
            raise ValidationError(pattern_error(bad))
        # The API's limits (how many patterns, how long each) from its serializer's own field: the
        # admin stored 51 patterns the API refuses (found by an outside sweep). Imported here:
        # the admins load before the APIs.
        from rest_framework.exceptions import ValidationError as ApiValidationError

        from .api import WebhookEndpointSerializer

        try:
            value = WebhookEndpointSerializer().fields["event_types"].run_validation(value)
        except ApiValidationError as exc:
            raise ValidationError(flat_errors(exc.detail)) from None
        return list(dict.fromkeys(value))


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ServiceDeletesAndActions, admin.ModelAdmin):
    """Endpoints, written through the same services as the API (URL checked, events recorded);
    a new or rotated secret is shown once, in the message after the save or the action."""

    form = WebhookEndpointForm
    list_display = ["id", "url", "organization", "active", "event_types", "failing_since", "disabled_reason"]
    list_filter = ["active", "organization"]
    search_fields = ["url", "description"]
    list_select_related = ["organization"]
    inlines = [DeliveryInline]
    actions = ["rotate_secrets", "disable", "enable"]

    def get_readonly_fields(self, request, obj=None):
        status = ["previous_secret_expires_at", "failing_since", "disabled_at", "disabled_reason", "created_at"]
        return ["organization", *status] if obj is not None else []

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def save_model(self, request, obj, form, change):
        if not change:
            data = {name: form.cleaned_data[name] for name in ("url", "description", "event_types", "active")}
            created = services.create_endpoint(
                organization=form.cleaned_data["organization"], actor=request.user, data=data
            )
            obj.pk = created.pk
            self._show_secret(request, created)
            return
        # Through the service: events, and the endpoint's deliveries failed when disabled.
        data = {name: form.cleaned_data[name] for name in form.changed_data}
        services.update_endpoint(instance=obj, actor=request.user, data=data)

    def _show_secret(self, request, endpoint) -> None:
        self.message_user(
            request, f"The signing secret of {endpoint.url}, shown only now: {endpoint.secret}", messages.WARNING
        )

    def delete_model(self, request, obj):
        services.delete_endpoint(instance=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for endpoint in queryset:
            services.delete_endpoint(instance=endpoint, actor=request.user)

    @admin.action(description="Rotate the secret (the old one signs beside it for 24 h)", permissions=["change"])
    def rotate_secrets(self, request, queryset):
        for endpoint in queryset:
            self._show_secret(request, services.rotate_secret(endpoint=endpoint, actor=request.user))

    @admin.action(description="Disable", permissions=["change"])
    def disable(self, request, queryset):
        with transaction.atomic():
            for endpoint in queryset.filter(active=True):
                services.update_endpoint(instance=endpoint, actor=request.user, data={"active": False})

    @admin.action(description="Enable", permissions=["change"])
    def enable(self, request, queryset):
        for endpoint in queryset.filter(active=False):
            try:
                services.update_endpoint(instance=endpoint, actor=request.user, data={"active": True})
            except Unprocessable as exc:
                self.message_user(request, f"{endpoint.url}: {'; '.join(exc.errors['url'])}", messages.ERROR)


class AttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = WebhookAttempt
    fields = ["number", "attempted_at", "http_status", "duration_ms", "error", "response_excerpt"]
    readonly_fields = fields
    max_num = 0
    can_delete = False


class PrunedByCommand:
    """The outbox's rows are deleted by cron, not here (read-only pages): the list says by what."""

    change_list_template = "admin/change_list_note.html"
    pruned = ""

    def changelist_view(self, request, extra_context=None):
        note = (
            f"{self.pruned} that succeeded or failed for good are deleted by `manage.py prune_notifications` "
            "(cron; by default those last changed more than 90 days ago, --older-than DAYS). Pending ones "
            "are kept, and events (the audit trail) are never deleted."
        )
        return super().changelist_view(request, {**(extra_context or {}), "list_note": note})


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(PrunedByCommand, ReadOnlyAdminMixin, admin.ModelAdmin):
    pruned = "Webhook deliveries (with their attempts)"
    list_display = [
        "id", "webhook_id", "endpoint", "event", "status", "attempts", "last_http_status", "last_duration_ms",
        "next_attempt_at", "created_at",
    ]  # fmt: skip
    list_filter = ["status", "organization"]
    search_fields = ["endpoint__url", "=event__id", "event__type"]
    list_select_related = ["endpoint", "event"]
    ordering = ["-id"]
    inlines = [AttemptInline]
    actions = ["redeliver"]

    @admin.action(description="Redeliver now (same webhook-id)", permissions=["change_through_service"])
    def redeliver(self, request, queryset):
        done = 0
        for delivery in queryset:
            try:
                services.redeliver(delivery=delivery, actor=request.user)
                done += 1
            except DomainError as exc:  # a disabled endpoint, a delivery in flight: say so, go on (a bug is no warning)
                self.message_user(request, f"{delivery.webhook_id}: {exc}", messages.WARNING)
        self.message_user(request, f"{done} deliveries due again now.")


@admin.register(EmailNotification)
class EmailNotificationAdmin(PrunedByCommand, ReadOnlyAdminMixin, admin.ModelAdmin):
    pruned = "E-mails"
    # `last_error` also on a sent one: the recipients the mail server refused.
    list_display = [
        "id",
        "kind",
        "subject",
        "recipients",
        "status",
        "attempts",
        "sent_at",
        "next_attempt_at",
        "last_error",
    ]
    list_filter = ["kind", "status", "organization"]
    search_fields = ["subject", "=event__id"]
    list_select_related = ["event"]
    ordering = ["-id"]


# --- The organization's notification e-mails (notification settings) ----------------------------
# tenancy sits below events and notifications, so its admin cannot reach the service; the
# organization's admin is re-registered here, as ledger and billing extend the contract's.


class OrganizationNotificationsForm(OrganizationForm):
    """The addresses as the API's `PATCH /notification_settings` takes them (its serializer: each
    at most 254 characters, at most 20, a repeat in another case kept once)."""

    def clean_notification_emails(self) -> list[str]:
        from .api import NotificationSettingsSerializer

        addresses = super().clean_notification_emails()
        check = NotificationSettingsSerializer(data={"notification_emails": addresses})
        if not check.is_valid():
            raise ValidationError([str(m) for m in flat_errors(check.errors)])
        return check.validated_data["notification_emails"]


admin.site.unregister(Organization)


@admin.register(Organization)
class OrganizationWithNotificationsAdmin(OrganizationAdmin):
    form = OrganizationNotificationsForm

    def save_model(self, request, obj, form, change):
        # The addresses through the service (its `organization.updated` event, when they changed),
        # the other fields as before (the organization has no service of its own).
        emails = obj.notification_emails
        if change:
            # The order before the row (events.feed, "Lock order"): a slug rename locks the row as FOR
            # UPDATE does, and a transaction holding the order checks its events' key to it at commit.
            hold_order([obj.pk])
        obj.notification_emails = Organization.objects.get(pk=obj.pk).notification_emails if change else []
        super().save_model(request, obj, form, change)
        updated = services.update_notification_settings(
            organization=obj, actor=request.user, data={"notification_emails": emails}
        )
        obj.notification_emails = updated.notification_emails
