from django.contrib import admin

from events.admin import ReadOnlyAdminMixin

from .models import SignatureRequest


@admin.register(SignatureRequest)
class SignatureRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The counterparty signature requests and their evidence (who, when, from where, on which terms)."""

    list_display = ["contract", "name", "email", "status", "expires_at", "sent_at", "decided_at", "signer_name"]
    list_filter = ["status", "organization"]
    search_fields = ["contract__reference", "email", "name", "signer_name"]
    list_select_related = ["contract"]
    exclude = ["token_hash", "token_nonce"]
