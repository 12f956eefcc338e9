"""Staff screens. Every write goes through `contracts.services`, as the API's do, so dual
approval, the editing rules and the events hold in the admin too."""

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import NestedObjects
from django.core.exceptions import PermissionDenied
from django.db import router
from django.http import Http404
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django_fsm.admin import FSMAdminMixin

from config.admin_forms import (
    ApiCheckedForm,
    OrderedChoices,
    OrganizationFixedOnChange,
    ReasonForm,
    ServiceDeletesAndActions,
    TypedKeys,
    ask_reason,
)
from config.errors import DomainError
from events.admin import ReadOnlyAdminMixin, pretty_json
from events.models import Event

from . import amendments, services
from . import assets as asset_services
from .billing_plan import BILLING_PLAN_API_FIELDS, normalise_top_up, plan_errors
from .geo import CoverageError, validate_point
from .models import Amendment, Asset, Contract, ContractApproval, Counterparty, LineItem, TermVersion
from .references import is_draft_part

BILLING_PLAN_ADMIN_FIELDS = [name for name in BILLING_PLAN_API_FIELDS if name != "billing_calendar_id"]


class CounterpartyForm(ApiCheckedForm):
    """A counterparty as `POST/PATCH /counterparties` checks it (found going through the admin: a
    name with a control character, a line separator or a bidi override, refused by the API, was
    saved here)."""

    api_serializer = "contracts.api.CounterpartySerializer"

    class Meta:
        model = Counterparty
        fields = [
            "organization", "name", "kind", "reference", "email", "phone", "address", "remarks", "source", "source_id",
        ]  # fmt: skip

    def write(self, *, actor, data):
        if self.instance.pk is None:
            return services.create_counterparty(organization=self.api_organization(), actor=actor, data=data)
        instance = Counterparty.objects.get(pk=self.instance.pk)
        return services.update_counterparty(instance=instance, actor=actor, data=data)


@admin.register(Counterparty)
class CounterpartyAdmin(OrderedChoices, OrganizationFixedOnChange, ServiceDeletesAndActions, admin.ModelAdmin):
    form = CounterpartyForm
    choices_ordering = ("name", "pk")
    list_display = ["name", "kind", "reference", "organization", "source", "source_id", "updated_at"]
    list_filter = ["kind", "organization"]
    search_fields = ["name", "reference", "email", "source_id"]
    list_select_related = ["organization"]
    readonly_fields = ["created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        obj.pk = form.write(actor=request.user, data=form.written_data()).pk

    def delete_model(self, request, obj):
        services.delete_counterparty(instance=obj, actor=request.user)


class AssetForm(ApiCheckedForm):
    api_serializer = "contracts.assets_api.AssetSerializer"

    class Meta:
        model = Asset
        fields = [
            "organization", "name", "kind", "serial_number", "counterparty", "site", "location", "remarks",
            "source", "source_id",
        ]  # fmt: skip

    def clean_location(self):
        location = self.cleaned_data.get("location")
        if location is not None:
            try:
                validate_point(location)
            except CoverageError as exc:
                raise forms.ValidationError([m for messages in exc.errors.values() for m in messages]) from None
        return location

    def write(self, *, actor, data):
        if self.instance.pk is None:
            return asset_services.create_asset(organization=self.api_organization(), actor=actor, data=data)
        return asset_services.update_asset(instance=Asset.objects.get(pk=self.instance.pk), actor=actor, data=data)


@admin.register(Asset)
class AssetAdmin(OrderedChoices, TypedKeys, OrganizationFixedOnChange, ServiceDeletesAndActions, admin.ModelAdmin):
    """Equipment and sites (issue 13); writes go through `contracts.assets` (events, rules)."""

    form = AssetForm
    choices_ordering = ("name", "pk")
    list_display = ["name", "kind", "serial_number", "counterparty", "site", "organization", "updated_at"]
    list_filter = ["kind", "organization"]
    search_fields = ["name", "serial_number", "site", "counterparty__name", "source_id"]
    list_select_related = ["counterparty", "organization"]
    autocomplete_fields = ["counterparty"]
    readonly_fields = ["created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        obj.pk = form.write(actor=request.user, data=form.written_data()).pk

    def delete_model(self, request, obj):
        asset_services.delete_asset(instance=obj, actor=request.user)


class ExpiringSoonFilter(admin.SimpleListFilter):
    title = "expiring"
    parameter_name = "expiring"

    DAYS = {"30": 30, "90": 90}

    def lookups(self, request, model_admin):
        return [(value, f"within {days} days") for value, days in self.DAYS.items()]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        # Only the offered lookups: a hand-edited `?expiring=abc` (or a huge number) was a 500
        # (found by an outside sweep); like Django's own filters, a bad value is the list's `?e=1`.
        days = self.DAYS.get(self.value())
        if days is None:
            raise IncorrectLookupParameters(f"expiring={self.value()!r}")
        today = timezone.now().date()
        return queryset.filter(
            status__in=[Contract.Status.ACTIVE, Contract.Status.SUSPENDED],
            expiry_date__gte=today,
            expiry_date__lte=today + dt.timedelta(days=days),
        )


class LineItemForm(ApiCheckedForm):
    """A line item as the API checks it (a negative quantity was stored), then written by the
    service in a rolled-back savepoint (a draft's items only)."""

    api_serializer = "contracts.api.LineItemSerializer"

    def api_organization(self):
        return self.instance.contract.organization

    def write(self, *, actor, data):
        if self.instance.pk is None:
            return services.create_line_item(contract=self.instance.contract, actor=actor, data=data)
        return services.update_line_item(item=LineItem.objects.get(pk=self.instance.pk), actor=actor, data=data)


class LineItemInline(admin.TabularInline):
    model = LineItem
    form = LineItemForm
    extra = 0
    fields = ["kind", "description", "sku", "quantity", "unit", "unit_price", "covered", "notes"]

    # Only a draft's items change here, and only for staff with the permission to change them.
    def has_add_permission(self, request, obj=None):
        return obj is not None and obj.status == Contract.Status.DRAFT and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return obj is not None and obj.status == Contract.Status.DRAFT and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return obj is not None and obj.status == Contract.Status.DRAFT and super().has_delete_permission(request, obj)


def each_through_service(model_admin, request, queryset, act) -> None:
    """An admin action: `act(obj)` (a service call) for each selected object, a message for each."""
    for obj in queryset:
        label = getattr(obj, "reference", None) or str(obj)
        try:
            act(obj)
        except DomainError as exc:
            model_admin.message_user(request, f"{label}: {exc.message}", messages.ERROR)
        else:
            model_admin.message_user(request, f"{label}: done.", messages.SUCCESS)


class ReadOnlyInline(admin.TabularInline):
    """Rows shown on their parent's page that change only through the services."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False


class ApprovalInline(ReadOnlyInline):
    model = ContractApproval
    fields = ["amendment", "approval_round", "approver", "decision", "comment", "decided_at"]

    def get_queryset(self, request):
        # Each row shows its approver and amendment: one query per row without these joins.
        return super().get_queryset(request).select_related("approver", "amendment")


class TermVersionInline(ReadOnlyInline):
    """The contract's terms over time (they change by amendments)."""

    model = TermVersion
    fields = ["effective_from", "effective_to", "origin", "amendment", "applied_at", "terms"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("amendment")


class OptionalReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea, max_length=2000, required=False)


class CommentForm(forms.Form):
    comment = forms.CharField(widget=forms.Textarea, max_length=2000, required=False)


# The lifecycle buttons call these services instead of the bare transition methods.
TRANSITION_SERVICES = {
    "submit": services.submit_contract,
    "approve": services.approve_contract,
    "reject": services.reject_contract,
    "suspend": services.suspend_contract,
    "resume": services.resume_contract,
    "terminate": services.terminate_contract,
}


# The lifecycle buttons' labels and titles (the transitions themselves carry none).
TRANSITION_TEXTS = {
    "submit": ("Submit for approval", "Send this draft to two managers for approval."),
    "approve": ("Approve", "Record your approval; the second approval schedules or activates the contract."),
    "reject": ("Reject", "Send the contract back to draft, with a reason."),
    "suspend": ("Suspend", "Suspend the active contract, with a reason."),
    "resume": ("Resume", "Make the suspended contract active again."),
    "terminate": ("Terminate", "End the contract now, with a reason."),
}


class PlanCheckedForm(forms.ModelForm):
    """The billing plan's rules between fields (issue 12), as the API applies them."""

    def clean(self):
        cleaned = super().clean()
        faults = plan_errors(
            lambda name: cleaned[name] if name in cleaned else getattr(self.instance, name, None),
            written=None if self.instance.pk is None else self.changed_data,
        )
        if faults:
            for name, errors in faults.items():
                field = name.split(".")[0]
                self.add_error(field if field in self.fields else None, errors)
        if cleaned.get("auto_top_up") is not None and not faults:
            cleaned["auto_top_up"] = normalise_top_up(cleaned["auto_top_up"])
        return cleaned


class ContractForm(ApiCheckedForm, PlanCheckedForm):
    """A contract as the API checks it (found by an outside sweep: dates before 2000, a negative
    hours budget or value, a notice period of 99999 days were stored, a malformed coverage area
    was a 500), then written by the service in a rolled-back savepoint."""

    api_serializer = "contracts.api.ContractSerializer"

    def write(self, *, actor, data):
        if self.instance.pk is None:
            return services.create_contract(organization=self.api_organization(), actor=actor, data=data)
        return services.update_contract(instance=Contract.objects.get(pk=self.instance.pk), actor=actor, data=data)


@admin.register(Contract)
class ContractAdmin(OrderedChoices, TypedKeys, ServiceDeletesAndActions, FSMAdminMixin, admin.ModelAdmin):
    form = ContractForm
    choices_ordering = ("reference", "pk")
    fsm_fields = ["status"]
    fsm_forms = {"reject": ReasonForm, "suspend": ReasonForm, "terminate": ReasonForm, "approve": CommentForm}
    # Seven columns: readable on a 1366 px screen (role, type and organization are list filters).
    list_display = ["reference", "name", "status", "counterparty", "start_date", "expiry_date", "organization"]
    list_display_links = ["reference", "name"]
    list_filter = ["status", "contract_type", "counterparty_role", ExpiringSoonFilter, "auto_renew", "organization"]
    search_fields = ["reference", "name", "counterparty__name", "source_id"]
    list_select_related = ["counterparty", "organization"]
    autocomplete_fields = ["counterparty", "covered_assets"]
    inlines = [LineItemInline, ApprovalInline, TermVersionInline]
    actions = ["give_notice", "draft_renewal"]
    readonly_fields = [
        "status", "notice_date", "renewed_from", "submitted_by", "submitted_at", "approval_round",
        "notice_given_at", "notice_reason", "created_at", "updated_at", "recent_events",
    ]  # fmt: skip
    fieldsets = [
        (None, {"fields": ["organization", "reference", "name", "contract_type", "status", "description", "remarks"]}),
        ("Parties", {"fields": ["counterparty", "counterparty_role"]}),
        (
            "Terms",
            {
                "fields": [
                    "start_date",
                    "expiry_date",
                    "time_zone",
                    "notice_period_days",
                    "notice_date",
                    "auto_renew",
                    "renewal_term_months",
                    "currency",
                    "contract_value",
                    "hours_budget",
                    "requires_counterparty_signature",
                ]
            },
        ),  # fmt: skip
        (
            "Coverage and dispatch",
            {"fields": ["coverage_areas", "covered_assets", "service_territory_id", "dispatch_agreement_id"]},
        ),
        ("Billing plan", {"fields": BILLING_PLAN_ADMIN_FIELDS, "classes": ["collapse"]}),  # issue 12
        ("Sync", {"fields": ["source", "source_id"]}),
        (
            "Approval and notice",
            {"fields": ["submitted_by", "submitted_at", "approval_round", "notice_given_at", "notice_reason"]},
        ),
        ("History", {"fields": ["renewed_from", "created_at", "updated_at", "recent_events"]}),
    ]

    def get_fsm_label(self, transition) -> str:
        return TRANSITION_TEXTS.get(transition.name, (transition.name.replace("_", " ").capitalize(),))[0]

    def get_help_text(self, transition) -> str:
        texts = TRANSITION_TEXTS.get(transition.name)
        return texts[1] if texts else self.get_fsm_label(transition)

    def get_readonly_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is not None:
            fields.append("organization")
            if obj.status != Contract.Status.DRAFT:
                fields += sorted(services.TERM_FIELDS)
            if obj.status in services.CLOSED:
                fields += [f.name for f in Contract._meta.fields if f.editable and f.name not in fields]
        return fields

    @admin.display(description="Events")
    def recent_events(self, obj):
        events = list(
            Event.objects.filter(organization_id=obj.organization_id, object_type="contract", object_id=obj.pk)
            .select_related("actor")
            .order_by("-id")[:50]
        )
        if not events:
            return "none yet"
        rows = format_html_join(
            "\n",
            '<tr><td>{}</td><td>{}</td><td>{}</td><td><pre style="margin: 0">{}</pre></td></tr>',
            (
                (e.occurred_at.strftime("%Y-%m-%d %H:%M"), e.type, e.actor or "system", pretty_json(e.payload))
                for e in events
            ),
        )
        return format_html("<table>{}</table>", rows)

    def save_model(self, request, obj, form, change):
        obj.pk = form.write(actor=request.user, data=form.written_data()).pk

    def save_related(self, request, form, formsets, change):
        # covered_assets is a term: save_model already wrote it through the services.
        form.save_m2m = lambda: None
        super().save_related(request, form, formsets, change)

    def save_formset(self, request, form, formset, change):
        # Line items go through the services (draft-only, events); approvals are read-only here.
        # The admin's history message reads new/changed/deleted_objects, so they are filled in.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        if formset.model is not LineItem:
            return
        for item_form in formset.forms:
            item = item_form.instance
            if item_form in formset.deleted_forms:
                if item.pk:
                    services.delete_line_item(item=item, actor=request.user)
                    formset.deleted_objects.append(item)
            elif item_form.has_changed():
                data = item_form.written_data()
                if item.pk:
                    formset.changed_objects.append((item_form.write(actor=request.user, data=data), list(data)))
                else:
                    item_form.instance.contract = form.instance
                    formset.new_objects.append(item_form.write(actor=request.user, data=data))

    def delete_model(self, request, obj):
        services.delete_contract(instance=obj, actor=request.user)

    def has_delete_permission(self, request, obj=None):
        return (obj is None or obj.status == Contract.Status.DRAFT) and super().has_delete_permission(request, obj)

    def get_deleted_objects(self, objs, request):
        """Django's, except that a draft's parts that go with it (`contracts.references`: its visit
        plans) are listed as deleted, not as protected: the page refused what the service does."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        if not protected:
            return deleted, counts, perms_needed, protected
        collector = NestedObjects(using=router.db_for_write(Contract))
        collector.collect(objs)
        drafts = {obj.pk for obj in objs if obj.status == Contract.Status.DRAFT}
        parts = [obj for obj in collector.protected if is_draft_part(obj, drafts)]
        if len(parts) < len(collector.protected):
            return deleted, counts, perms_needed, protected  # something else holds on: Django's page
        for part in parts:
            deleted.append(f"{capfirst(part._meta.verbose_name)}: {part}")
            name = str(part._meta.verbose_name_plural)
            counts[name] = counts.get(name, 0) + 1
        return deleted, counts, perms_needed, []

    def fsm_transition_view(self, request, object_id, transition_name, **kwargs):
        # django-fsm's page for a transition with a form (approve, reject, suspend, terminate)
        # checks only that the user is staff: it takes what the change page takes (found by an
        # outside sweep: staff without permissions terminated and approved contracts there).
        obj = self.get_object(request, object_id)
        if obj is not None and not self.has_change_permission(request, obj):
            raise PermissionDenied
        # A name in the URL that is no staff transition (`foo`, `give_notice`) was a 500 (django-fsm
        # raises AttributeError); the clock's own transitions (activate, expire) are no page either.
        if obj is not None and transition_name not in TRANSITION_SERVICES:
            raise Http404(f"{transition_name} is not an action staff can take.")
        return super().fsm_transition_view(request, object_id, transition_name, **kwargs)

    def _apply_fsm_transition(self, *, obj, transition_name, request, kwargs=None):
        service = TRANSITION_SERVICES.get(transition_name)
        if service is None:
            self.message_user(request, f"{transition_name} is not an action staff can take.", messages.ERROR)
            return False
        try:
            service(contract=obj, actor=request.user, **(kwargs or {}))
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return False
        label = TRANSITION_TEXTS.get(transition_name, (transition_name,))[0]
        self.message_user(request, f"{label}: done.", messages.SUCCESS)
        return True

    @admin.action(description="Give notice of non-renewal", permissions=["change"])
    def give_notice(self, request, queryset):
        self._each(request, queryset, lambda contract: services.give_notice(contract=contract, actor=request.user))

    @admin.action(description="Draft a renewal", permissions=["change"])
    def draft_renewal(self, request, queryset):
        self._each(request, queryset, lambda contract: services.renew_contract(contract=contract, actor=request.user))

    def _each(self, request, queryset, act) -> None:
        each_through_service(self, request, queryset, act)


@admin.register(Amendment)
class AmendmentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Amendments are drafted through the API (their changes are validated like contract edits);
    here staff review them and submit, approve or reject them through the same services."""

    list_display = ["__str__", "contract", "status", "effective_date", "reason", "submitted_by", "decided_at"]
    list_filter = ["status", "organization"]
    search_fields = ["contract__reference", "contract__name", "reason"]
    list_select_related = ["contract", "submitted_by"]
    fields = [
        "contract", "number", "status", "effective_date", "changes", "reason", "created_by", "submitted_by",
        "submitted_at", "approval_round", "decided_at", "created_at", "updated_at",
    ]  # fmt: skip
    readonly_fields = fields
    inlines = [ApprovalInline]
    actions = ["submit", "approve", "reject"]

    def has_change_permission(self, request, obj=None):
        # The changelist's actions, for staff allowed to change amendments; the records themselves
        # are read-only.
        return obj is None and admin.ModelAdmin.has_change_permission(self, request)

    def _each(self, request, queryset, act) -> None:
        each_through_service(self, request, queryset, act)

    @admin.action(description="Submit for approval", permissions=["change"])
    def submit(self, request, queryset):
        self._each(request, queryset, lambda a: amendments.submit_amendment(amendment=a, actor=request.user))

    @admin.action(description="Approve (dual approval)", permissions=["change"])
    def approve(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda a: amendments.approve_amendment(
                amendment=a, actor=request.user, allow_past=request.user.is_superuser
            ),
        )

    @admin.action(description="Reject (back to draft)…", permissions=["change"])
    def reject(self, request, queryset):
        """Asks why first, as the API's reject does: the reason is the approval's comment, the
        event's payload and the rejection notice (a canned one told the drafters nothing)."""
        reason, page = ask_reason(
            self,
            request,
            queryset,
            title="Reject amendments",
            intro="Send these amendments back to draft, with the reason their drafters will read:",
            submit="Reject",
            describe=lambda amendment: f"{amendment} ({amendment.contract.reference})",
        )
        if page is not None:
            return page
        self._each(
            request, queryset, lambda a: amendments.reject_amendment(amendment=a, actor=request.user, reason=reason)
        )
        return None
