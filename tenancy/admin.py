import re

from django import forms
from django.contrib import admin

from config.admin_forms import TypedKeys, one_line

from .models import ExternalIdentity, Membership, Organization, validate_email_list


class OrganizationForm(forms.ModelForm):
    """`notification_emails` as one address per line (stored as a JSON list)."""

    notification_emails = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="One address per line: told about breach detections and expiring contracts.",
    )

    class Meta:
        model = Organization
        fields = ["slug", "name", "default_currency", "default_time_zone", "notification_emails"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["notification_emails"] = "\n".join(self.instance.notification_emails or [])

    def clean_name(self) -> str:
        one_line(self.cleaned_data["name"])  # as the API's names: it is in every e-mail's subject
        return self.cleaned_data["name"]

    def clean_notification_emails(self) -> list[str]:
        addresses = list(dict.fromkeys(a for a in re.split(r"[\s,;]+", self.cleaned_data["notification_emails"]) if a))
        validate_email_list(addresses)
        return addresses


class MembershipInline(TypedKeys, admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    form = OrganizationForm
    list_display = ["slug", "name", "default_currency", "default_time_zone", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(TypedKeys, admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    search_fields = ["user__username", "organization__slug"]
    list_select_related = ["user", "organization"]
    autocomplete_fields = ["user"]


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(admin.ModelAdmin):
    list_display = ["subject", "issuer", "user", "created_at"]
    search_fields = ["subject", "issuer", "user__username"]
    readonly_fields = ["issuer", "subject", "user", "created_at"]
    list_select_related = ["user"]

    def has_add_permission(self, request):
        # Made by the first sign-in through the issuer (tenancy.auth); every field is read-only
        # here, so the add page was an empty form whose "Save" was a 500 (no user).
        return False
