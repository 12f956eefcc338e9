"""The admin's checks are the API's (found by outside sweeps of the admin, DESIGN §3: a second
face never re-implements a rule).

`ApiCheckedForm` is the base of an admin model form whose model is also a REST resource. After
the form's own cleaning it

1. sends the fields the staff user set (the changed ones; on an add, every one given) through
   the resource's REST serializer, as the API would receive them (ids for references, JSON's
   types for values), with the chosen organization as the caller's: the schemas, the ranges, the
   dates within 2000-01-01..2999-12-31, time zones, currencies, the rules between fields and the
   references of the organization, each error on its field;
2. then, when the form says how the admin writes (`write`), runs that write, the service itself,
   in a savepoint rolled back, so that what the service refuses (an active contract's terms, a
   clash) is an error on the form, not a message beside "changed successfully" and a history
   entry for a change that never happened.

The admin's `save_model` calls the same `write`, so the dry run and the save are one code path.
"""

from __future__ import annotations

import json
import re

from django import forms
from django.conf import settings
from django.contrib import messages as admin_messages
from django.contrib.admin import helpers
from django.contrib.admin.widgets import AutocompleteSelect, AutocompleteSelectMultiple, ForeignKeyRawIdWidget
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.module_loading import import_string

from .api import parsers
from .api.exceptions import flatten_errors
from .errors import DomainError
from .text import control_character, control_message


def one_line(value: str) -> None:
    """The API's `single_line` for an admin form whose model is no REST resource's input (an
    organization's name, a webhook's description): the text of the API's 422, as a form error."""
    char = control_character(value or "")
    if char is not None:
        raise ValidationError(control_message(char))


class _DryRun(Exception):
    pass


class ApiCaller:
    """What a serializer reads from its request: the caller's organization (`request.auth`)."""

    def __init__(self, organization):
        self.auth = self
        self.organization = organization


def _first_name(path: str) -> str:
    """`line_items[0].quantity` -> `line_items`; `coverage_areas.features` -> `coverage_areas`."""
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _json_value(value):
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, models.QuerySet):  # a many-to-many field's choice
        return sorted(value.values_list("pk", flat=True))
    return value


class StrictJSONField(forms.JSONField):
    """Django's JSON form field read as the API reads JSON (`config.api.parsers.loads`): a key given
    twice in one object, at any depth, is an error naming the key rather than the last value kept
    (REST and GraphQL refuse it; a reader taking the first value would judge another change)."""

    def to_python(self, value):
        if not self.disabled and isinstance(value, str) and value.strip():
            try:
                parsers.loads(value)
            except parsers.MalformedJSON as exc:
                if "appears twice" in str(exc):
                    raise ValidationError(f"Enter a valid JSON: {exc}.", code="invalid") from None
        return super().to_python(value)


class ApiCheckedForm(forms.ModelForm):
    # The REST serializer's dotted path: imported when a form is cleaned (admins load before APIs).
    api_serializer: str = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if type(field) is forms.JSONField:
                field.__class__ = StrictJSONField

    # --- what a form may override -----------------------------------------------------------

    def api_organization(self):
        """The organization the object belongs to (the caller's, for the serializer)."""
        chosen = self.cleaned_data.get("organization")
        if chosen is not None:
            return chosen
        return getattr(self.instance, "organization", None) if self.instance.organization_id else None

    def api_context(self, organization) -> dict:
        return {"request": ApiCaller(organization)}

    def write(self, *, actor, data: dict):
        """The admin's write through the service (`data`: the changed fields), returning the
        object; None when the admin writes otherwise (then no dry run)."""
        return None

    # --- the checks ---------------------------------------------------------------------------

    def written_data(self) -> dict:
        """The changed fields, as the admin passes them to its service (the organization apart)."""
        return {n: self.cleaned_data[n] for n in self.changed_data if n in self.cleaned_data and n != "organization"}

    def clean(self):
        data = super().clean()
        if self.errors or not self.api_serializer:
            return data
        organization = self.api_organization()
        if not self._serializer_accepts(organization):
            return data
        self._dry_run()
        return data

    def _serializer_accepts(self, organization) -> bool:
        serializer_class = import_string(self.api_serializer)
        creating = self.instance.pk is None
        instance = None if creating else type(self.instance)._base_manager.get(pk=self.instance.pk)
        context = self.api_context(organization)
        names = {}  # model field -> API field
        for api_name, field in serializer_class(instance, data={}, context=context).fields.items():
            if not field.read_only and field.source != "*":
                names.setdefault(field.source, api_name)
        if creating:  # every value given (a blank or empty one the service fills in)
            given = {n: v for n, v in self.cleaned_data.items() if v is not None and v != ""}
        else:
            given = {n: self.cleaned_data[n] for n in self.changed_data if n in self.cleaned_data}
        body = json.loads(
            json.dumps(
                {names[n]: _json_value(v) for n, v in given.items() if n in names and n != "organization"},
                cls=DjangoJSONEncoder,
            )
        )
        check = serializer_class(instance, data=body, partial=not creating, context=context)
        try:
            valid = check.is_valid()
        except DomainError as exc:  # a clash the serializer finds (a sourceID used twice)
            self._add_errors(exc.errors or {None: [exc.message]}, names)
            return False
        if not valid:  # keyed by path as the API answers them (`hours[2]`), each under its field
            self._add_errors(flatten_errors(check.errors), names)
            return False
        # The values as the API stores them, for the dry run and the save alike: the serializer
        # normalises some (a holiday subdivision "gb-sct" is "SCT"; found by an outside sweep).
        for name, value in check.validated_data.items():
            if name in given and name in self.cleaned_data:
                self.cleaned_data[name] = value
        return True

    def _dry_run(self) -> None:
        try:
            with transaction.atomic():
                if self.write(actor=None, data=self.written_data()) is None:
                    return
                raise _DryRun
        except _DryRun:
            pass
        except DomainError as exc:
            self._add_errors(exc.errors or {None: [exc.message]}, {})

    def _add_errors(self, errors: dict, names: dict) -> None:
        fields = {api: model for model, api in names.items()}
        for path, messages in errors.items():
            if path is None or path in ("non_field_errors", "base"):
                self.add_error(None, [str(m) for m in flat_errors(messages)])
                continue
            name = _first_name(str(path))
            field = fields.get(name, name.removesuffix("_id"))
            target = field if field in self.fields else None
            self.add_error(target, [f"{path}: {m}" for m in flat_errors(messages)])


def flat_errors(messages) -> list:
    """DRF's errors of one field: a list of messages, or nested dicts and lists of them."""
    if isinstance(messages, dict):
        return [f"{key}: {m}" for key, value in messages.items() for m in flat_errors(value)]
    if isinstance(messages, (list, tuple)):
        return [m for item in messages for m in flat_errors(item)]
    return [messages]


def default_when_blank(form: forms.ModelForm, name: str, default: str) -> None:
    """On an add page, `name` may be left blank: it is then left out of the write and the service
    fills in its default, as the API does when the field is not sent (found by an outside sweep:
    the admin required a typed time, read as UTC, where the API's default is the contract's local
    midnight). The help text says the default and, for a time, the zone the admin reads and shows
    it in (settings.TIME_ZONE, not the contract's)."""
    field = form.fields.get(name)
    if field is None:
        return
    notes = []
    if form.instance.pk is None:
        field.required = False
        notes.append(f"Blank: {default}.")
    if isinstance(field, forms.DateTimeField | forms.SplitDateTimeField):
        notes.append(f"Times are in {settings.TIME_ZONE}.")
    field.help_text = " ".join(notes)


class OrganizationFixedOnChange:
    """An admin of objects that never move between organizations: `organization` read-only on a
    change page. Their services write every field but that one, so an editable select was a
    change thrown away behind "changed successfully" and a history entry (found by an outside
    sweep of the templates', calendars' and contract rules' pages)."""

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "organization"] if obj is not None and "organization" not in fields else fields


class ServiceDeletesAndActions:
    """An admin whose `delete_model` deletes through the service (its event, its refusals): the
    bulk "delete selected" action deletes each object the same way (Django's own deletes the
    queryset in one statement, without the services' events: found by an outside sweep), and a
    deletion or an action the service refuses is an error message with nothing deleted, logged
    or recorded (each runs in one transaction), never a 500."""

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    def delete_view(self, request, object_id, extra_context=None):
        return self._refusals_as_messages(request, super().delete_view, request, object_id, extra_context)

    def response_action(self, request, queryset):
        return self._refusals_as_messages(request, super().response_action, request, queryset)

    def _refusals_as_messages(self, request, view, *args):
        try:
            with transaction.atomic():
                return view(*args)
        except DomainError as exc:
            self.message_user(request, exc.message, admin_messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class ReasonForm(forms.Form):
    """A why, as the API's `reason` takes it: required (a blank one, stripped, is refused), 2000 at most."""

    reason = forms.CharField(widget=forms.Textarea, max_length=2000)


def ask_reason(model_admin, request, queryset, *, title: str, intro: str, submit: str, describe=str):
    """An admin action's intermediate page asking why (README: actions that need a why take a
    `reason`): `(reason, None)` once the staff user sent a valid one, else `(None, the page)` to
    return from the action, listing the selected objects (`describe(obj)`) with the form."""
    form = ReasonForm(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        return form.cleaned_data["reason"], None
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "intro": intro,
        "submit": submit,
        "opts": model_admin.model._meta,
        "selected": [(describe(obj), obj.pk) for obj in queryset],
        "form": form,
        "action": request.POST.get("action", ""),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return None, TemplateResponse(request, "admin/action_reason.html", context)


def _key_field(relation):
    """The field a relation's values name on its related model (the primary key, or `to_field`)."""
    remote = relation.remote_field
    opts = remote.model._meta
    return opts.get_field(getattr(remote, "field_name", opts.pk.attname))


def a_stored_key(target, value, using=None) -> bool:
    """Whether `value` could be a value of the column `target` (its type and, for an integer, its
    range): a lookup with anything else raises (SQLite: OverflowError) instead of finding nothing."""
    try:
        prepared = target.get_prep_value(target.to_python(value))
    except (ValidationError, ValueError, TypeError):
        return False
    if isinstance(target, models.IntegerField) and prepared is not None:
        low, high = connections[using or DEFAULT_DB_ALIAS].ops.integer_field_range(target.get_internal_type())
        return (low is None or prepared >= low) and (high is None or prepared <= high)
    return True


class _TypedKeysOnly:
    """Django's autocomplete widget shows the chosen object again by looking the submitted value
    up; a value that is no key ("abc", a number beyond the column, a NUL) made that query raise and
    the form with its error a 500 (found by going through every admin form). Such a value names
    no object, so none is shown; the form's own field reports the error."""

    def optgroups(self, name, value, attr=None):
        target = _key_field(self.field)
        return super().optgroups(name, [v for v in value if a_stored_key(target, v, self.db)], attr)


class TypedAutocompleteSelect(_TypedKeysOnly, AutocompleteSelect):
    pass


class TypedAutocompleteSelectMultiple(_TypedKeysOnly, AutocompleteSelectMultiple):
    pass


class TypedModelMultipleChoiceField(forms.ModelMultipleChoiceField):
    """A many-to-many choice that refuses an id beyond the column's range as any unknown choice
    (Django's looked the list up at once, and SQLite raised OverflowError: a 500)."""

    def _check_values(self, value):
        target = self.queryset.model._meta.get_field(self.to_field_name or self.queryset.model._meta.pk.name)
        if isinstance(value, (list, tuple)):
            for item in value:
                if isinstance(item, str) and not a_stored_key(target, item, self.queryset.db):
                    raise ValidationError(
                        self.error_messages["invalid_choice"], code="invalid_choice", params={"value": item}
                    )
        return super()._check_values(value)


class TypedKeys:
    """A ModelAdmin's or inline's references with the widgets and field above: a submitted value
    that is no key of the related table is an error on the form, never a 500."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = TypedAutocompleteSelect(db_field, self.admin_site, using=kwargs.get("using"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = TypedAutocompleteSelectMultiple(db_field, self.admin_site, using=kwargs.get("using"))
        kwargs.setdefault("form_class", TypedModelMultipleChoiceField)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class _NamedIfViewable(ForeignKeyRawIdWidget):
    """Django's raw-id widget names the chosen object beside its id, for any staff user who may
    edit the field; this one only when that user may view the object's model (`may_view`)."""

    def __init__(self, *args, may_view: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.may_view = may_view

    def label_and_url_for_value(self, value):
        return super().label_and_url_for_value(value) if self.may_view else ("", "")


class ViewableRawIds:
    """A ModelAdmin whose `raw_id_fields` show the chosen object's name (and link) only to a staff
    user who may view its model, as its lookup list and an autocomplete already ask (found by the
    admin sweep: a rule's or a posting's page named contracts and calendars to a user who may not
    view them); the id alone otherwise."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.raw_id_fields:
            related = self.admin_site._registry.get(db_field.remote_field.model)
            may_view = related is not None and related.has_view_permission(request)
            kwargs["widget"] = _NamedIfViewable(
                db_field.remote_field, self.admin_site, using=kwargs.get("using"), may_view=may_view
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class OrderedChoices:
    """An admin that other admins' autocomplete selects search: their results in `choices_ordering`.
    Django pages them 20 at a time from the admin's queryset, which for a model without an order
    came in none (found choosing a counterparty among many: the list was in no order a person can
    scan, and PostgreSQL may repeat or skip rows between pages). A list page orders its own rows."""

    choices_ordering: tuple[str, ...] = ("pk",)

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        return (queryset if queryset.ordered else queryset.order_by(*self.choices_ordering)), may_have_duplicates
