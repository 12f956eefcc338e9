import json
from types import SimpleNamespace

from django import forms
from django.contrib import admin, messages
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from config.errors import DomainError

from . import services
from .models import Calendar, SlaRule


def _changed(form) -> dict:
    return {name: form.cleaned_data[name] for name in form.changed_data if name != "organization"}


@admin.register(Calendar)
class CalendarAdmin(admin.ModelAdmin):
    list_display = ["name", "time_zone", "holiday_country", "holiday_subdivision", "organization", "updated_at"]
    list_filter = ["time_zone", "holiday_country", "organization"]
    search_fields = ["name"]
    readonly_fields = ["created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        # Through the services: an edit recomputes the running clocks that use the calendar.
        if change:
            calendar = services.update_calendar(
                instance=Calendar.objects.get(pk=obj.pk), actor=request.user, data=_changed(form)
            )
            messages.info(request, f"{calendar.recomputed_clocks} running clocks recomputed.")
        else:
            obj.pk = services.create_calendar(organization=obj.organization, actor=request.user, data=_changed(form)).pk

    def delete_model(self, request, obj):
        try:
            services.delete_calendar(instance=obj, actor=request.user)
        except DomainError as exc:
            messages.error(request, exc.message)


class _DryRun(Exception):
    pass


class SlaRuleForm(forms.ModelForm):
    """The API's checks before anything is saved (found by an outside sweep: the admin stored an
    escalation of text percentages, which made every new job of the band a 500, a negative
    penalty and unknown priorities, and said "changed successfully" for a change the service had
    refused): the fields through the REST serializer (the schemas, the priorities, references of
    the organization), then the service itself in a savepoint rolled back, so a refusal (an
    active contract's terms, an overlap) is an error on the form, not a banner after a save."""

    class Meta:
        model = SlaRule
        fields = [
            "organization", "contract", "name", "metric", "priorities", "target_minutes", "calendar", "pause_on_hold",
            "escalation", "penalty", "monthly_penalty_cap", "active", "effective_from", "effective_to",
        ]  # fmt: skip

    def clean(self):
        from .api import SlaRuleSerializer  # the REST face's checks; the admin is imported first

        data = super().clean()
        if self.errors:
            return data
        organization = data.get("organization") or getattr(self.instance, "organization", None)
        changed = _changed(self)
        # The body the API would take: ids for the references, JSON's types for the values.
        body = json.loads(
            json.dumps(
                {
                    (f"{name}_id" if name in ("contract", "calendar") else name): (
                        getattr(value, "pk", None) if name in ("contract", "calendar") else value
                    )
                    for name, value in changed.items()
                },
                cls=DjangoJSONEncoder,
            )
        )
        context = {"request": SimpleNamespace(auth=SimpleNamespace(organization=organization))}
        creating = self.instance.pk is None
        check = SlaRuleSerializer(None if creating else self.instance, data=body, partial=not creating, context=context)
        if not check.is_valid():
            for name, errors in check.errors.items():
                field = name.removesuffix("_id")
                self.add_error(field if field in self.fields else None, [f"{name}: {e}" for e in errors])
            return data
        try:
            with transaction.atomic():
                if creating:
                    services.create_rule(organization=organization, actor=None, data=changed)
                else:
                    services.update_rule(instance=self.instance, actor=None, data=changed)
                raise _DryRun
        except _DryRun:
            pass
        except DomainError as exc:
            for name, errors in (exc.errors or {None: [exc.message]}).items():
                field = name.removesuffix("_id") if name else None
                self.add_error(field if field in self.fields else None, errors)
        return data


@admin.register(SlaRule)
class SlaRuleAdmin(admin.ModelAdmin):
    form = SlaRuleForm
    list_display = [
        "name",
        "contract",
        "metric",
        "target_minutes",
        "calendar",
        "active",
        "effective_from",
        "effective_to",
    ]
    list_filter = ["metric", "active", "organization"]
    search_fields = ["name", "contract__reference", "contract__name"]
    list_select_related = ["contract", "calendar"]
    raw_id_fields = ["contract", "calendar", "previous_version"]
    readonly_fields = ["previous_version", "created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        try:
            if change:
                services.update_rule(instance=SlaRule.objects.get(pk=obj.pk), actor=request.user, data=_changed(form))
            else:
                obj.pk = services.create_rule(organization=obj.organization, actor=request.user, data=_changed(form)).pk
        except DomainError as exc:
            messages.error(request, exc.message)
