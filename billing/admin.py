"""Staff screens for billing: the periods with their money, billing lines with an "export
pending" action, export batches, and contract templates with an "instantiate" action. The
contract page gains its billing periods. Writes go through `billing.services`."""

from types import SimpleNamespace

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_permission_codename
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from rest_framework.exceptions import ValidationError

from config.admin_forms import (
    ApiCaller,
    ApiCheckedForm,
    OrganizationFixedOnChange,
    ServiceDeletesAndActions,
    flat_errors,
)
from config.errors import DomainError
from contracts.admin import PlanCheckedForm
from contracts.models import Contract, Counterparty
from events.admin import ReadOnlyAdminMixin
from ledger.admin import ContractWithLedgerAdmin

from . import periods, services
from .api import TemplateLineItem, TemplateRuleItem, instantiation_data, validated_items
from .models import BillingLine, BillingPeriod, ContractTemplate, ExportBatch

PERIOD_COLUMNS = [
    ("included_hours", "Included"), ("rolled_over_in", "Rolled in"), ("prepaid_hours_added", "Prepaid"),
    ("topped_up_hours", "Topped up"), ("charged_hours", "Charged"), ("overage_hours", "Overage"),
    ("expired_hours", "Expired"), ("rolled_over_out", "Rolled out"), ("period_charge", "Charge"),
    ("overage_charge", "Overage charge"), ("prepay_purchases", "Prepay"), ("top_up_purchases", "Top-ups"),
    ("service_credits", "Service credits"), ("total", "Total"),
]  # fmt: skip


def periods_table(contract: Contract) -> str:
    rows = [f.as_dict(contract.currency) for f in periods.compute(contract, now=timezone.now())]
    if not rows:
        return "no billing periods (billing_period is none, or the term has not begun)"
    head = format_html_join(
        "", "<th>{}</th>", ((label,) for _, label in [("", "Period"), ("", "Status"), *PERIOD_COLUMNS])
    )
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        (
            (
                format_html_join(
                    "",
                    "<td>{}</td>",
                    [
                        (f"{r['start_date']} to {r['end_date']}",),
                        (r["status"],),
                        *((r[key],) for key, _ in PERIOD_COLUMNS),
                    ],
                ),
            )
            for r in rows
        ),
    )
    return format_html("<table><tr>{}</tr>{}</table><p>Money in {}.</p>", head, body, contract.currency)


admin.site.unregister(Contract)


@admin.register(Contract)
class ContractWithBillingAdmin(ContractWithLedgerAdmin):
    """The contracts admin with the ledger's balance, plus the billing periods and their money."""

    readonly_fields = [*ContractWithLedgerAdmin.readonly_fields, "billing_periods"]
    fieldsets = [*ContractWithLedgerAdmin.fieldsets, ("Billing periods", {"fields": ["billing_periods"]})]

    @admin.display(description="Periods")
    def billing_periods(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        return periods_table(obj)


@admin.register(BillingPeriod)
class BillingPeriodAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["contract", "index", "start_date", "end_date", "status", "total", "closed_at"]
    list_filter = ["status", "organization"]
    search_fields = ["contract__reference"]
    list_select_related = ["contract"]
    readonly_fields = ["figures_table"]

    @admin.display(description="Total (as closed)")
    def total(self, obj):
        return f"{obj.figures['total']} {obj.figures['currency']}" if obj.figures else "open"

    @admin.display(description="Figures as closed")
    def figures_table(self, obj):
        if not obj.figures:
            return "open: see the contract's page for the live figures"
        rows = ((label, obj.figures[key]) for key, label in PERIOD_COLUMNS)
        return format_html("<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows))


@admin.register(BillingLine)
class BillingLineAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "contract",
        "kind",
        "description",
        "quantity",
        "unit_price",
        "amount",
        "currency",
        "date",
        "status",
        "batch",
    ]
    list_filter = ["status", "kind", "currency", "organization"]
    search_fields = ["contract__reference", "description", "key"]
    list_select_related = ["contract", "batch"]
    date_hierarchy = "date"
    actions = ["export_pending"]

    @admin.action(
        description="Export the selected pending lines (one batch per organization)",
        permissions=["change_through_service"],
    )
    def export_pending(self, request, queryset):
        pending = queryset.filter(status=BillingLine.Status.PENDING)
        by_org: dict = {}
        for line in pending.select_related("organization"):
            by_org.setdefault(line.organization, []).append(line.pk)
        if not by_org:
            messages.warning(request, "None of the selected lines is pending: exported lines never change.")
        for organization, ids in by_org.items():
            batch = services.export_pending(organization=organization, actor=request.user, line_ids=ids)
            messages.success(request, f"{organization}: export batch {batch.pk} with {batch.line_count} lines.")


@admin.register(ExportBatch)
class ExportBatchAdmin(ServiceDeletesAndActions, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "organization",
        "contract",
        "date_from",
        "date_to",
        "line_count",
        "totals",
        "created_by",
        "created_at",
    ]
    list_filter = ["organization"]
    list_select_related = ["organization", "contract", "created_by"]


class InstantiateForm(forms.Form):
    """The action's form; the contract it makes is checked by the API's own path
    (`billing.api.instantiation_data`): the admin stored drafts dated 1950 or expiring in 3000, and
    a start in 9999 was a 500 (found by an outside sweep). `contract_data`: the validated contract."""

    counterparty = forms.ModelChoiceField(queryset=Counterparty.objects.none())
    reference = forms.CharField(max_length=64)
    start_date = forms.DateField(help_text="YYYY-MM-DD")

    def __init__(self, *args, template: ContractTemplate, **kwargs):
        super().__init__(*args, **kwargs)
        self.template = template
        self.fields["counterparty"].queryset = Counterparty.objects.filter(organization=template.organization)
        self.contract_data: dict = {}

    def clean_reference(self):
        reference = self.cleaned_data["reference"]
        if Contract.objects.filter(organization=self.template.organization, reference=reference).exists():
            raise forms.ValidationError("A contract of this organization already has this reference.")
        return reference

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        body = {
            "counterparty_id": cleaned["counterparty"].pk,
            "reference": cleaned["reference"],
            "start_date": cleaned["start_date"].isoformat(),
        }
        context = {"request": ApiCaller(self.template.organization)}
        try:
            self.contract_data = instantiation_data(self.template, body, context)
        except ValidationError as exc:
            for path, messages in exc.detail.items():
                name = str(path).removesuffix("_id")
                if name in self.fields:
                    self.add_error(name, flat_errors(messages))
                else:  # a field of the template's (its term running past 2999: `expiry_date`)
                    self.add_error(None, [f"{path}: {m}" for m in flat_errors(messages)])
        return cleaned


class TemplateForm(ApiCheckedForm, PlanCheckedForm):
    """A template as the API checks it (found by an outside sweep: a term of 0 or 500 months and
    negative plan figures were stored); line items and SLA rules stored as the API stores them."""

    api_serializer = "billing.api.ContractTemplateSerializer"

    def write(self, *, actor, data):
        if self.instance.pk is None:
            return services.create_template(organization=self.api_organization(), actor=actor, data=data)
        return services.update_template(
            instance=ContractTemplate.objects.get(pk=self.instance.pk), actor=actor, data=data
        )

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        organization = cleaned.get("organization") or getattr(self.instance, "organization", None)
        context = {"request": SimpleNamespace(auth=SimpleNamespace(organization=organization))}
        for name, item_class in (("line_items", TemplateLineItem), ("sla_rules", TemplateRuleItem)):
            if name in cleaned:
                try:
                    cleaned[name] = validated_items(item_class, cleaned[name] or [], name, context)
                except ValidationError as exc:
                    self.add_error(name, [f"{key}: {' '.join(map(str, msgs))}" for key, msgs in exc.detail.items()])
        return cleaned


@admin.register(ContractTemplate)
class ContractTemplateAdmin(OrganizationFixedOnChange, ServiceDeletesAndActions, admin.ModelAdmin):
    form = TemplateForm
    list_display = [
        "name",
        "organization",
        "contract_type",
        "term_months",
        "currency",
        "billing_period",
        "active",
        "updated_at",
    ]
    list_filter = ["active", "contract_type", "billing_period", "organization"]
    search_fields = ["name"]
    list_select_related = ["organization"]
    readonly_fields = ["created_at", "updated_at"]
    actions = ["instantiate"]

    def save_model(self, request, obj, form, change):
        obj.pk = form.write(actor=request.user, data=form.written_data()).pk

    def delete_model(self, request, obj):
        services.delete_template(instance=obj, actor=request.user)

    def has_instantiate_permission(self, request):
        """Instantiating a template adds a contract: it takes the permission to add contracts, and to
        view counterparties, which its form lists to choose from (as the contract's own page asks
        before its counterparty field finds any)."""
        user = request.user
        return user.has_perm(f"contracts.{get_permission_codename('add', Contract._meta)}") and (
            self.admin_site._registry[Counterparty].has_view_permission(request)
        )

    @admin.action(description="Instantiate: make a draft contract from the template…", permissions=["instantiate"])
    def instantiate(self, request, queryset):
        if queryset.count() != 1:
            messages.error(request, "Select one template to instantiate.")
            return None
        template = queryset.get()
        form = InstantiateForm(request.POST if "apply" in request.POST else None, template=template)
        if form.is_bound and form.is_valid():
            try:
                contract = services.instantiate_template(
                    template=template, actor=request.user, contract_data=form.contract_data
                )
            except DomainError as exc:
                messages.error(request, f"{template}: {exc.message} {exc.errors or ''}")
            else:
                messages.success(request, f"Draft contract {contract.reference} made from {template}.")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Instantiate a contract template",
            "opts": self.model._meta,
            "template": template,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/billing/contracttemplate/instantiate.html", context)
