"""Ledger entries are read-only here; managers post through a form that calls the service.
The contract page gains the balance and a burn-down chart (server-rendered SVG)."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from config.admin_forms import ApiCheckedForm, ViewableRawIds, default_when_blank
from config.errors import DomainError
from contracts.admin import ContractAdmin
from contracts.models import Contract

from . import services
from .models import LedgerEntry

POSTED_FIELDS = [
    "contract", "entry_type", "hours", "amount", "currency", "work_order", "description", "occurred_at", "expires_at",
]  # fmt: skip


class PostingForm(ApiCheckedForm):
    # The API's checks first (found by an outside sweep: an entry dated 1900 was posted).
    api_serializer = "ledger.api.LedgerEntrySerializer"

    class Meta:
        model = LedgerEntry
        fields = POSTED_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        default_when_blank(self, "occurred_at", "now")  # as the API's posting without one

    def api_organization(self):
        return self.cleaned_data["contract"].organization

    def clean(self):
        """Every rule the service applies (the overdraw check included), so that a form that
        validates posts; the service checks again under the contract's lock."""
        cleaned = super().clean()
        if self.errors:
            return cleaned
        entry = LedgerEntry(
            organization_id=cleaned["contract"].organization_id,
            **{name: cleaned.get(name) for name in POSTED_FIELDS},
        )
        now = timezone.now()
        entry.currency = entry.currency or ""
        entry.description = entry.description or ""
        entry.occurred_at = entry.occurred_at or now  # what post_entry will date a blank one
        try:
            services.set_charged_hours(entry, entry.contract)
            services.check_entry(entry, now)
            services.check_overdraw(entry, entry.contract)
        except DomainError as exc:
            for field, errors in (exc.errors or {}).items():
                name = field.removesuffix("_id")
                if name in self.fields:
                    self.add_error(name, errors)
            raise forms.ValidationError(exc.message) from None
        return cleaned


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ViewableRawIds, admin.ModelAdmin):
    form = PostingForm
    list_display = [
        "id", "contract", "entry_type", "reason_code", "hours", "charged_hours", "amount", "currency", "occurred_at",
    ]  # fmt: skip
    list_filter = ["entry_type", "reason_code", "organization"]
    search_fields = ["contract__reference", "description"]
    list_select_related = ["contract"]
    raw_id_fields = ["contract", "work_order"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data.get(name) for name in POSTED_FIELDS if form.cleaned_data.get(name) is not None}
        try:
            entry = services.post_entry(organization=obj.contract.organization, actor=request.user, data=data)
        except DomainError as exc:
            # Only a concurrent posting can get here (the form checked everything): nothing was posted.
            messages.error(request, f"Not posted: {exc.message}")
            obj.posting_failed = True
            return
        obj.pk = entry.pk

    def log_addition(self, request, obj, message):
        if getattr(obj, "posting_failed", False):
            return None
        return super().log_addition(request, obj, message)

    def response_add(self, request, obj, post_url_continue=None):
        if getattr(obj, "posting_failed", False):
            return HttpResponseRedirect(request.get_full_path())
        return super().response_add(request, obj, post_url_continue)


def burn_down_svg(contract: Contract, width: int = 640, height: int = 200, now=None) -> str:
    """Remaining hours after each entry, as a step line up to now; no scripts, no external assets."""
    points, remaining = [], Decimal(0)
    for occurred_at, effect in (
        LedgerEntry.objects.filter(contract=contract)
        .annotate(effect=services.HOUR_EFFECT)
        .order_by("occurred_at", "id")
        .values_list("occurred_at", "effect")
    ):
        remaining += effect
        points.append((occurred_at.timestamp(), float(remaining)))
    if not points:
        return format_html("<em>{}</em>", "No entries yet.")
    # The line runs on to now (or to the last entry, if one is dated later).
    points.append((max((now or timezone.now()).timestamp(), points[-1][0]), points[-1][1]))
    t0, t1 = points[0][0], points[-1][0]
    low, high = min(0.0, *(p[1] for p in points)), max(1.0, *(p[1] for p in points))

    def xy(t, v):
        x = 40 + (width - 50) * ((t - t0) / ((t1 - t0) or 1))
        y = 10 + (height - 30) * (1 - (v - low) / ((high - low) or 1))
        return f"{x:.1f},{y:.1f}"

    steps = [xy(*points[0])]
    for (_, previous), (t, v) in zip(points, points[1:], strict=False):
        steps += [xy(t, previous), xy(t, v)]
    zero_y = xy(t0, 0).split(",")[1]
    low_y = xy(t0, low).split(",")[1]
    # Read at a glance (checked in a headless browser): the span's dates under the line, and the
    # lowest balance labelled when it went below zero.
    zone = ZoneInfo(contract.time_zone or "UTC")
    first, last = (dt.datetime.fromtimestamp(t, zone).date().isoformat() for t in (t0, t1))
    below = (
        format_html('<text x="2" y="{}" font-size="11" fill="#c62828">{} h</text>', f"{float(low_y):.1f}", f"{low:.0f}")
        if low < 0
        else ""
    )
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="Burn-down">'
        '<line x1="40" x2="{w}" y1="{z}" y2="{z}" stroke="#bbb"/>'
        '<polyline fill="none" stroke="#2a6ebb" stroke-width="2" points="{pts}"/>'
        '<text x="2" y="14" font-size="11">{hi} h</text><text x="2" y="{zt}" font-size="11">0 h</text>{below}'
        '<text x="40" y="{dy}" font-size="10" fill="#555">{first}</text>'
        '<text x="{w}" y="{dy}" font-size="10" fill="#555" text-anchor="end">{last}</text>'
        "</svg>",
        w=width,
        h=height,
        z=zero_y,
        zt=f"{float(zero_y) + 4:.1f}",
        pts=" ".join(steps),
        hi=f"{high:.0f}",  # format_html escapes its arguments to strings: format them first
        below=below,
        dy=height - 4,
        first=first,
        last=last,
    )


admin.site.unregister(Contract)


@admin.register(Contract)
class ContractWithLedgerAdmin(ContractAdmin):
    """The contracts admin, plus the hour ledger's balance and burn-down."""

    readonly_fields = [*ContractAdmin.readonly_fields, "balance_summary", "burn_down"]
    fieldsets = [*ContractAdmin.fieldsets, ("Hours", {"fields": ["balance_summary", "burn_down"]})]

    @admin.display(description="Balance")
    def balance_summary(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        figures = services.balance(obj)
        rows = [
            (label, "-" if figures[key] is None else figures[key])
            for key, label in [
                ("total_hours", "Total hours"),
                ("consumed_hours", "Consumed"),
                ("expired_hours", "Expired"),
                ("remaining_hours", "Remaining"),
                ("overrun_hours", "Overrun"),
                ("expiring_hours", "Expiring in 30 days"),
                ("burn_rate_hours_per_day", "Burn rate (h/day, 30 days)"),
                ("projected_exhaustion_date", "Projected exhaustion"),
            ]
        ]
        return format_html("<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows))

    @admin.display(description="Burn-down (remaining hours)")
    def burn_down(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        return burn_down_svg(obj)
