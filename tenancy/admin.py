import re

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.contrib.auth.models import Group
from django.db import models
from django.utils.html import format_html
from django.utils.text import capfirst

from config.admin_forms import TypedKeys, one_line

from .models import ExternalIdentity, Membership, Organization, validate_email_list

User = get_user_model()


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


class MembershipInlineForm(forms.ModelForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            # Whom a membership is for does not change (remove it, add another); shown from the row
            # (the inline reads the users with it), where the autocomplete widget looked each one up:
            # a query per member on the organization's page.
            field = self.fields["user"]
            field.disabled = True
            field.widget = forms.Select(choices=[(self.instance.user_id, str(self.instance.user))])


class MembershipInline(TypedKeys, admin.TabularInline):
    model = Membership
    form = MembershipInlineForm
    extra = 0
    autocomplete_fields = ["user"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "organization")  # the rows show both (`__str__`)


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

    def get_readonly_fields(self, request, obj=None):
        # Whom a membership is for and where do not change, as on the organization's page: remove it,
        # add another. Moved here, the old user's cached membership (tenancy.auth) was never dropped.
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "user", "organization"] if obj is not None else fields


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


# What a new password does beyond the admin's sessions (tenancy.auth): said where staff set it.
TOKENS_REVOKED = (
    "Saving a new password (or disabling password-based authentication) revokes every API token issued "
    "to this user before now, access and refresh alike: their scripts and integrations get a 401 and "
    "must log in again (POST /api/v1/token)."
)


class PasswordChangeForm(AdminPasswordChangeForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["password1"].help_text = format_html("{}<br>{}", self.fields["password1"].help_text, TOKENS_REVOKED)


# What makes a user staff or gives powers in the admin: a superuser's to give (below).
POWERS = ["is_staff", "is_superuser", "groups", "user_permissions"]


def within_reach(staff_user, user) -> bool:
    """Whether a staff user who may change users may change this one: a superuser any; another
    staff user only themselves and users who are not staff (a tenant's people). Setting the password
    or e-mail of a staff user with more powers would be taking those powers."""
    return (
        user is None or staff_user.is_superuser or user.pk == staff_user.pk or not (user.is_staff or user.is_superuser)
    )


def records_naming(users) -> list[str]:
    """What names these users and would lose the name with them (every SET_NULL reference)."""
    found = []
    for relation in User._meta.get_fields(include_hidden=True):
        if not (relation.auto_created and not relation.concrete and relation.on_delete is models.SET_NULL):
            continue
        count = relation.related_model._base_manager.filter(**{f"{relation.field.name}__in": users}).count()
        if count:
            plural = capfirst(relation.related_model._meta.verbose_name_plural)
            found.append(
                f"{plural} naming the user as {relation.field.verbose_name}: {count} "
                "(untick “Active” instead: the account ends and the records keep its name)"
            )
    return found


class UserWithTokensAdmin(UserAdmin):
    """Django's user admin, saying that a password set here revokes the user's API tokens (found by
    the eleventh round's admin sweep: the page said only "Password changed successfully"), and
    keeping a staff user who is not a superuser from giving powers (thirteenth round: with the
    permission to change users, one ticked "Superuser status" on their own page and was one)."""

    change_password_form = PasswordChangeForm

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else [*fields, *(f for f in POWERS if f not in fields)]

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and within_reach(request.user, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and within_reach(request.user, obj)

    def get_deleted_objects(self, objs, request):
        """Django's, with the records that name the user (an event's actor, who waived a breach,
        who posted hours) as protected: deleting the user blanked them in the audit trail and the
        contractual record (SET_NULL), where only the approvals were protected. Deactivating keeps them."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, perms_needed, [*protected, *records_naming(objs)]

    def user_change_password(self, request, id, form_url=""):
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            messages.warning(request, "Every API token issued to this user before now is revoked.")
        return response


admin.site.unregister(User)
admin.site.register(User, UserWithTokensAdmin)


class PowersGroupAdmin(GroupAdmin):
    """A group's permissions are given to its members: a superuser's to set, as on a user's page."""

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else [*fields, "permissions"]


admin.site.unregister(Group)
admin.site.register(Group, PowersGroupAdmin)
