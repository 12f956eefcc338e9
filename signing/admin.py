from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.utils.html import format_html

from events.admin import ReadOnlyAdminMixin, pretty_json

from . import services
from .documents import terms_document, terms_hash
from .models import SignatureRequest


class CurrentStatusFilter(admin.SimpleListFilter):
    """By the status the column shows (the API's), not the stored one: that keeps "pending" for a
    link past its expiry or void since."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return SignatureRequest.Status.choices

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        if self.value() not in SignatureRequest.Status.values:
            raise IncorrectLookupParameters(f"status={self.value()!r}")  # the list's `?e=1`, not a 500
        return services.with_current_status(queryset, self.value())


@admin.register(SignatureRequest)
class SignatureRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The counterparty signature requests and their evidence (who, when, from where, on which terms).

    The status shown is the API's: a pending request past `expires_at` is expired, and one whose
    contract's terms or approval round changed since it was sent is void (the stored column keeps
    "pending" until someone opens the link)."""

    list_display = ["contract", "name", "email", "status", "expires_at", "sent_at", "decided_at", "signer_name"]
    list_filter = [CurrentStatusFilter, "organization"]
    search_fields = ["contract__reference", "email", "name", "signer_name"]
    list_select_related = ["contract__counterparty"]
    exclude = ["token_hash", "token_nonce"]
    readonly_fields = ["status_now", "terms_now"]

    def get_list_display(self, request):
        # The terms' hash once per contract on the page, not once per pending request listed.
        hashes: dict[int, str] = {}

        @admin.display(description="Status")
        def status_now(request_):
            return _status(request_, hashes)

        return [status_now if name == "status" else name for name in self.list_display]

    @admin.display(description="Status now")
    def status_now(self, request_):
        status = _status(request_, {})
        reason = services.void_reason(request_, request_.contract) if status == SignatureRequest.Status.VOID else None
        return f"{status}: {reason}" if reason else status

    @admin.display(description="The contract's terms now")
    def terms_now(self, request_):
        """The document the link asks to accept (SLA targets with their business hours), as it stands
        now, and whether it is still the one sent or signed (only its hash is stored)."""
        document = terms_document(request_.contract)
        current = terms_hash(request_.contract)
        signed = request_.signed_terms_hash or request_.terms_hash
        same = "the same terms as" if current == signed else "NOT the terms"
        what = "signed" if request_.signed_terms_hash else "sent"
        return format_html(
            '<p>{} {} (SHA-256 {}).</p><pre style="white-space: pre-wrap">{}</pre>',
            f"These are {same}",
            what,
            current,
            pretty_json(document),
        )


def _status(request_: SignatureRequest, hashes: dict) -> str:
    contract = request_.contract

    def current_hash() -> str:
        if contract.pk not in hashes:
            hashes[contract.pk] = terms_hash(contract)
        return hashes[contract.pk]

    return services.current_status(request_, current_hash=current_hash)
