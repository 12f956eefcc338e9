"""Effective-dated terms (DESIGN §10): term versions as rows, read `as_of` any date.

A contract's terms are the fields in `services.TERM_FIELDS` plus its line items. Once the
contract is approved, its terms live as `TermVersion` rows: a JSON snapshot of the terms (each
term field as JSON, its derived `notice_date`, and `line_items`) with an effective range of
local dates in the contract's time zone. Everything here is generic over `TERM_FIELDS`: a field
another feature adds to the set is snapshotted, versioned, amended and read `as_of` without a
change here (a foreign key is kept as its id, a many-to-many as its sorted ids).

Semantics (what the property test checks): the terms in force on a date d are the terms at
approval with every approved amendment whose `effective_date <= d` applied over them, in the
order the amendments were approved; an amendment sets only the fields it names (`line_items`
as a whole list). Before the first version's start the contract is not yet in force and reads
as its first version.

The contract row itself always holds the version in force *today* (in the contract's time zone):
an amendment effective today or earlier is applied at once; a later one when `run_lifecycle`
reaches its date (`apply_due_terms`, which runs before activation, expiry and renewal, so those
read the terms in force at the instant they concern).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import functools
from decimal import Decimal

from django.db import models, transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Subquery, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from events.models import Event
from events.services import jsonable, record_event

from .models import Amendment, Contract, LineItem, TermVersion

LINE_ITEM_TERMS = ["kind", "description", "sku", "quantity", "unit", "unit_price", "covered", "notes"]
DERIVED = ("notice_date",)  # kept in the snapshot so that `as_of` filters can use it


def term_fields() -> list[str]:
    from .services import TERM_FIELDS  # the one definition of what the terms are

    return sorted(TERM_FIELDS)


def _field(name: str):
    return Contract._meta.get_field(name)


# --- snapshots ----------------------------------------------------------------------------------


def line_item_terms(item) -> dict:
    return {name: jsonable(getattr(item, name)) for name in LINE_ITEM_TERMS}


def read_terms(contract: Contract) -> dict:
    """The contract row's terms as JSON (what a version stores)."""
    terms = {}
    for name in term_fields():
        field = _field(name)
        if field.many_to_many:
            terms[name] = sorted(getattr(contract, name).values_list("pk", flat=True)) if contract.pk else []
        else:
            terms[name] = jsonable(getattr(contract, field.attname))
    terms["notice_date"] = jsonable(contract.compute_notice_date())
    terms["line_items"] = [line_item_terms(item) for item in contract.line_items.order_by("id")]
    return terms


def _python(name: str, value):
    field = _field(name)
    if value is None:
        return None
    if field.is_relation:
        return field.target_field.to_python(value)
    return field.to_python(value)


def set_terms(contract: Contract, terms: dict) -> None:
    """Put the term fields of a snapshot on an instance (not saved; line items and many-to-many
    fields are the caller's: see `write_terms`)."""
    for name in term_fields():
        field = _field(name)
        if name in terms and not field.many_to_many:
            setattr(contract, field.attname, _python(name, terms[name]))
    contract.notice_date = contract.compute_notice_date()


def write_terms(contract: Contract, terms: dict) -> dict:
    """Bring the contract row (and its line items) to a snapshot; returns the changes
    (``{term: {"before", "after"}}``). The caller saves the row."""
    before = read_terms(contract)
    set_terms(contract, terms)
    for name in term_fields():
        if _field(name).many_to_many and name in terms:
            getattr(contract, name).set(terms[name])
    if "line_items" in terms and terms["line_items"] != before["line_items"]:
        contract.line_items.all().delete()
        LineItem.objects.bulk_create(
            LineItem(organization_id=contract.organization_id, contract=contract, **_line_item(item))
            for item in terms["line_items"]
        )
    return {
        name: {"before": before.get(name), "after": terms[name]}
        for name in terms
        if name not in DERIVED and terms[name] != before.get(name)
    }


def _line_item(item: dict) -> dict:
    values = {name: item.get(name) for name in LINE_ITEM_TERMS if name in item}
    for name in ("quantity", "unit_price"):
        if values.get(name) is not None:
            values[name] = Decimal(str(values[name]))
    return values


def apply_changes_to(terms: dict, changes: dict) -> dict:
    """A snapshot with an amendment's changes laid over it (the derived notice date recomputed)."""
    result = copy.deepcopy(terms)
    result.update(copy.deepcopy(changes))
    expiry = result.get("expiry_date")
    if expiry is not None:
        days = result.get("notice_period_days") or 0
        result["notice_date"] = (dt.date.fromisoformat(expiry) - dt.timedelta(days=days)).isoformat()
    else:
        result["notice_date"] = None
    return result


# --- versions -----------------------------------------------------------------------------------


def versions(contract: Contract) -> list[TermVersion]:
    prefetched = getattr(contract, "_prefetched_objects_cache", {}).get("term_versions")
    if prefetched is not None:
        return sorted(prefetched, key=lambda v: v.effective_from)
    return list(contract.term_versions.order_by("effective_from"))


def version_on(contract: Contract, day: dt.date) -> TermVersion | None:
    """The version in force on a local date (before the first one starts: the first one)."""
    return _pick(versions(contract), day)


def in_force_on(day: dt.date) -> Q:
    """The versions in force on `day`, as a filter on TermVersion (one per contract)."""
    first = ~Exists(
        TermVersion.objects.filter(contract_id=OuterRef("contract_id"), effective_from__lt=OuterRef("effective_from"))
    )
    return Q(effective_from__lte=day) & (Q(effective_to__isnull=True) | Q(effective_to__gt=day)) | Q(
        first, effective_from__gt=day
    )


def contract_as_of(contract: Contract, day: dt.date) -> Contract:
    """A copy of the contract (not to be saved) with the terms in force on `day`; its line items
    of that version are in `terms_line_items` and the version in `terms_version`."""
    return _view(contract, version_on(contract, day))


def _pick(found: list[TermVersion], day: dt.date) -> TermVersion | None:
    current = None
    for version in found:
        if version.effective_from <= day:
            current = version
    return current or (found[0] if found else None)


class Timeline:
    """One contract's terms over time, its versions read once: what billing, charging and the
    lifecycle compute from (`on(day)`: the contract as in force on a local date). A contract
    without versions (a draft, or one made before versions existed) reads as its row on every day."""

    def __init__(self, contract: Contract):
        self.contract = contract
        self.versions = versions(contract)
        self._views: dict[int | None, Contract] = {}

    def version(self, day: dt.date) -> TermVersion | None:
        return _pick(self.versions, day)

    def on(self, day: dt.date) -> Contract:
        version = self.version(day)
        key = version.pk if version is not None else None
        if key not in self._views:
            self._views[key] = _view(self.contract, version)
        return self._views[key]

    def at(self, instant: dt.datetime) -> Contract:
        """The terms in force at an instant (its local date in the contract's time zone)."""
        return self.on(self.contract.local_today(instant))

    @functools.cached_property
    def agreement_start(self) -> dt.date | None:
        """The start of the agreement this contract continues: its own start date, or for a
        renewal the first contract's of its chain of renewals. Its anniversaries are the contract's
        (an annual increase), so a renewal keeps the original's anniversary dates."""
        start, renewed_from = self.contract.start_date, self.contract.renewed_from_id
        seen = {self.contract.pk}
        while renewed_from is not None and renewed_from not in seen:  # one query a renewal back
            seen.add(renewed_from)
            row = Contract.objects.filter(pk=renewed_from).values("start_date", "renewed_from_id").first()
            if row is None or row["start_date"] is None:
                break
            start, renewed_from = row["start_date"], row["renewed_from_id"]
        return start

    def since(self, day: dt.date, name: str) -> dt.date:
        """The first day of the unbroken run of versions, up to the one in force on `day`, in which
        the term `name` has had the value it has on `day` (the contract's start date when the run
        goes back to the first version, or without versions)."""
        start = self.contract.start_date or day
        version = self.version(day)
        if version is None:
            return start
        value = _python(name, version.terms.get(name))
        index = self.versions.index(version)
        while index > 0 and _python(name, self.versions[index - 1].terms.get(name)) == value:
            index -= 1
        return start if index == 0 else self.versions[index].effective_from

    def stretches(self, day: dt.date) -> list[tuple[dt.date, dt.date | None, Contract]]:
        """(first day, day after the last or None, the contract as in force) for each version in
        force from `day` on: today's version first (from `day`), then the later ones."""
        if not self.versions:
            return [(day, None, self.contract)]
        found = []
        for index, version in enumerate(self.versions):
            end = self.versions[index + 1].effective_from if index + 1 < len(self.versions) else None
            if end is not None and end <= day:
                continue
            start = day if not found else version.effective_from
            found.append((start, end, self.on(start)))
        return found

    def last_day(self) -> dt.date | None:
        """The contract's last day as its approved terms stand, amendments still to take effect
        included (an extension effective next month counts already); None: open-ended. What the
        field work planned under the contract reads (visit plans, the visits listing)."""
        start = self.contract.start_date
        if start is None:  # a draft without dates: its row
            return self.contract.expiry_date
        expiry, _ = self.date_when_due(start, "expiry_date")
        return expiry if expiry is not None else self.stretches(start)[-1][2].expiry_date

    def date_when_due(self, day: dt.date, name: str) -> tuple[dt.date | None, Contract | None]:
        """A date term (`expiry_date`, `notice_date`) as the terms will stand *on that date*, seen
        from `day`: the first version from `day` on whose date falls within its own time in force,
        with that version's view. An approved amendment effective before the date moves it (a later
        expiry, a longer notice period); one effective after it does not. For the expiry the
        contract ends the day after, so the next version must not begin on that next day (it would
        be in force, `apply_due_terms` running before `expire_due`). (None, None): no such date."""
        last_day = dt.timedelta(days=1 if name == "expiry_date" else 0)
        for start, end, view in self.stretches(day):
            value = getattr(view, name)
            if value is None or value < start:
                continue
            if end is None or value + last_day < end:
                return value, view
        return None, None


def terminated_at(contract: Contract) -> dt.datetime | None:
    """When a terminated contract stopped running (its termination's event), else None (no query):
    its term ends there, whatever last day it had agreed (billing's periods, hand postings of hours)."""
    if contract.status != Contract.Status.TERMINATED:
        return None
    return (
        Event.objects.filter(
            organization_id=contract.organization_id,
            object_type="contract",
            object_id=contract.pk,
            type="contract.state_changed",
            payload__to=Contract.Status.TERMINATED,
        )
        .order_by("-id")
        .values_list("occurred_at", flat=True)
        .first()
    )


def _view(contract: Contract, version: TermVersion | None) -> Contract:
    view = copy.copy(contract)
    view._state = copy.copy(contract._state)
    # Its own cache of related objects: a term's foreign key may differ from the row's.
    view._state.fields_cache = dict(contract._state.fields_cache)
    view.terms_version = version
    if version is None:  # never approved (or from before versions existed): the row is the terms
        view.terms_line_items = None
        return view
    set_terms(view, version.terms)
    view.terms_line_items = version.terms.get("line_items", [])
    return view


def start_versions(contract: Contract, *, origin: str, now: dt.datetime) -> TermVersion:
    """The first version of a contract that has just been approved (or auto-renewed)."""
    existing = contract.term_versions.order_by("effective_from").first()
    if existing is not None:
        return existing
    start = contract.start_date or contract.local_today(now)
    return TermVersion.objects.create(
        organization_id=contract.organization_id,
        contract=contract,
        effective_from=start,
        terms=read_terms(contract),
        origin=origin,
        applied_at=now,
    )


def lay_amendment(contract: Contract, amendment: Amendment, now: dt.datetime) -> TermVersion:
    """Split the version in force on the amendment's date there and lay its changes over that
    version and every later one. Returns the version that starts on the date."""
    origin = TermVersion.Origin.RENEWAL if contract.renewed_from_id else TermVersion.Origin.CREATION
    start_versions(contract, origin=origin, now=now)
    day = amendment.effective_date
    all_versions = list(contract.term_versions.select_for_update().order_by("effective_from"))
    covering = [v for v in all_versions if v.effective_from <= day]
    starting = None
    if covering and covering[-1].effective_from == day:
        starting = covering[-1]
    else:
        base = covering[-1] if covering else all_versions[0]
        end = base.effective_to if covering else base.effective_from
        if covering:
            base.effective_to = day
            base.save(update_fields=["effective_to", "updated_at"])
        starting = TermVersion.objects.create(
            organization_id=contract.organization_id,
            contract=contract,
            effective_from=day,
            effective_to=end,
            terms=copy.deepcopy(base.terms),
            origin=TermVersion.Origin.AMENDMENT,
            amendment=amendment,
        )
        all_versions.append(starting)
    from .amendments import term_changes

    changes = term_changes(amendment.changes)
    # A moved start (a scheduled contract's) is not a term from a date but the contract's first
    # day: every version holds it, so the row takes it on approval (`approve_amendment`) and the
    # contract activates on the new start, not the old (an outside test: a postponed contract
    # activated on the old start, its start rewritten a month later while it ran).
    moved_start = {"start_date": changes["start_date"]} if "start_date" in changes else {}
    for version in all_versions:
        if version.effective_from >= day:
            version.terms = apply_changes_to(version.terms, changes)
            if version.effective_from > contract.local_today(now):
                version.applied_at = None
            version.save(update_fields=["terms", "applied_at", "updated_at"])
        elif moved_start:
            version.terms = apply_changes_to(version.terms, moved_start)
            version.save(update_fields=["terms", "updated_at"])
    if moved_start:
        starting = _begin_at_start(contract, dt.date.fromisoformat(str(moved_start["start_date"])), starting)
    return starting


def _begin_at_start(contract: Contract, start: dt.date, starting: TermVersion) -> TermVersion:
    """The versions of a contract whose start has moved to `start`, begun there: those that end on
    or before it are dropped (the contract is never in force on their days; their terms live on in
    the later versions, where every approved amendment is laid, and in the amendments and their
    events), and the one in force on it begins on it. Before, a postponed contract's `/terms` listed
    the approval's version from the old start, and `as_of` a day before the new start read it
    rather than the terms the contract starts with."""
    found = list(contract.term_versions.select_for_update().order_by("effective_from"))
    dropped = [v.pk for v in found if v.effective_to is not None and v.effective_to <= start]
    if dropped:
        contract.term_versions.filter(pk__in=dropped).delete()
    first = next((v for v in found if v.pk not in dropped), None)
    if first is not None and first.effective_from < start:
        first.effective_from = start
        first.save(update_fields=["effective_from", "updated_at"])
    return first if starting.pk in dropped else starting


def postponed_before_versions(contract: Contract) -> tuple[list[TermVersion], str | None]:
    """The term versions of a contract postponed before the tenth round that begin before its start
    (what `_begin_at_start` now does at the postponement, the `relay_postponed_terms` command for
    the older ones), and why they cannot be re-laid (None: they can; an empty list: nothing to do).

    Re-laid only when every one of them already says the contract starts on its start date (the
    postponement was laid on each, as since the seventh round): the contract was never in force on
    their days. A version before the start with another start date is from a contract that ran from
    its old start (activated before the seventh round, its start rewritten while it ran): its days
    were billed and worked, so its versions are history, not an error, and are left."""
    start = contract.start_date
    found = versions(contract)
    if start is None or not found or found[0].effective_from >= start:
        return [], None
    before = [v for v in found if v.effective_from < start]
    other = sorted({str(v.terms.get("start_date")) for v in before} - {start.isoformat()})
    if other:
        return before, f"its versions before {start} say it started on {', '.join(other)}: it ran then; left as is"
    return before, None


def relay_postponed(contract: Contract, *, now: dt.datetime) -> bool:
    """Begin a postponed contract's versions on its start date, as a postponement does today
    (`_begin_at_start`), and bring the row to the version in force today (`sync_contract`, whose
    `contract.terms_changed` names what changed). The caller holds the contract's lock and checked
    `postponed_before_versions`. Returns whether the row changed."""
    first = versions(contract)[0]
    _begin_at_start(contract, contract.start_date, first)
    return sync_contract(contract, actor=None, now=now)


@transaction.atomic
def sync_contract(contract: Contract, *, actor, now: dt.datetime, amendment: Amendment | None = None) -> bool:
    """Bring the contract row to the version in force today; write `contract.terms_changed` when
    that changes anything. Marks every version that has begun as applied."""
    today = contract.local_today(now)
    version = version_on(contract, today)
    if version is None:
        return False
    changes = write_terms(contract, version.terms)
    contract.term_versions.filter(effective_from__lte=today, applied_at__isnull=True).update(applied_at=now)
    if not changes:
        return False
    from .services import _derive, _save

    _derive(contract)
    _save(contract)
    record_event(
        type="contract.terms_changed",
        obj=contract,
        actor=actor,
        payload={
            "version": version.pk,
            "effective_from": version.effective_from,
            "amendment": (amendment or version.amendment).pk if (amendment or version.amendment) else None,
            "changes": changes,
        },
        occurred_at=now,
    )
    return True


def apply_due_terms(*, now: dt.datetime, log=lambda message: None, failures: list[str] | None = None) -> int:
    """`run_lifecycle`: contracts whose next version has begun get its terms (exactly once: the
    row is locked and re-checked, `applied_at` marks the version)."""
    from .services import _MAX_OFFSET, _candidates, _lock_if, contract_label, skipping_failures

    horizon = (now + _MAX_OFFSET).date()
    live = (Contract.Status.SCHEDULED, Contract.Status.ACTIVE, Contract.Status.SUSPENDED)
    due = Contract.objects.filter(
        status__in=live,
        pk__in=TermVersion.objects.filter(applied_at__isnull=True, effective_from__lte=horizon).values("contract_id"),
    )
    count = 0
    for pk in _candidates(due):
        with skipping_failures(failures, lambda pk=pk: contract_label(pk), log), transaction.atomic():
            contract = _lock_if(pk, status__in=live)
            if contract is not None and sync_contract(contract, actor=None, now=now):
                count += 1
                log(f"{contract.reference}: terms of {version_on(contract, contract.local_today(now)).effective_from}")
    return count


# --- as_of filters ------------------------------------------------------------------------------


def term_predicate_q(name: str, predicate, day: dt.date, blank_is_empty: bool) -> Q:
    """A list filter on a term, as the terms stood on `day`: on the version in force for contracts
    with versions, on the row for the others (drafts, contracts never approved)."""
    field = Contract._meta.get_field(name)
    output = field.target_field if field.is_relation else field
    value = KeyTextTransform(name, "terms")
    version_predicate = predicate
    if isinstance(output, models.BooleanField):
        # JSON true/false read as text the same way on SQLite and PostgreSQL: compare the text.
        version_predicate = dataclasses.replace(
            predicate, values=tuple("true" if v else "false" for v in predicate.values)
        )
    else:
        value = Cast(value, output_field=output.__class__(**_cast_kwargs(output)))
    matching = (
        TermVersion.objects.filter(in_force_on(day))
        .annotate(term_value=value)
        .filter(version_predicate.to_q("term_value", blank_is_empty))
        .values("contract_id")
    )
    has_versions = Exists(TermVersion.objects.filter(contract_id=OuterRef("pk")))
    return Q(pk__in=matching) | (~Q(has_versions) & predicate.to_q(name, blank_is_empty))


def _cast_kwargs(field) -> dict:
    if isinstance(field, models.DecimalField):
        return {"max_digits": field.max_digits, "decimal_places": field.decimal_places}
    if isinstance(field, models.CharField):
        return {"max_length": field.max_length}
    return {}


def term_value_as_of(name: str, day: dt.date):
    """An expression for a term as it stood on `day` (what `?as_of=&sort=` orders by): the value in
    the version in force for contracts with versions, the row's for the others."""
    field = Contract._meta.get_field(name)
    output = field.target_field if field.is_relation else field
    value = Cast(KeyTextTransform(name, "terms"), output_field=output.__class__(**_cast_kwargs(output)))
    in_force = (
        TermVersion.objects.filter(in_force_on(day), contract_id=OuterRef("pk")).annotate(term_value=value)
    ).values("term_value")[:1]
    has_versions = Exists(TermVersion.objects.filter(contract_id=OuterRef("pk")))
    return Case(
        When(has_versions, then=Subquery(in_force)),
        default=F(field.attname),
        output_field=output.__class__(**_cast_kwargs(output)),
    )
