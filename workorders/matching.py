"""Which contract covers a job (issue 13): explicit contract rules first, then entitlement scoring.

1. **Rules** (`ContractRule`, HaloPSA's contract rules): the enabled rule with the lowest
   `sequence` (then the lowest id) whose criteria all hold decides: its contract, or "not
   covered". A rule whose criteria hold but whose contract is not in force at the job's
   `reported_at` is passed over (the explanation says so) and the next one is tried.
2. **Entitlement scoring** (Salesforce entitlements, ServiceNow entitlement scoring): among the
   active contracts of the job's counterparty (the asset's, when the job names only an asset)
   in force at `reported_at`, a contract that covers the job's asset scores 2, one whose
   coverage area contains the job's location scores 1 (both: 3), the rest 0. The highest score
   wins; ties go to the contract with the earliest expiry (open-ended last), then the lowest id.

"In force at `reported_at`": the contract is active and the job's report date, in the
contract's time zone, lies between its start and expiry dates (both included).

Cost: one query for the enabled rules (plus one for the coverage of the contracts that the
`within` criteria of still-possible rules name), and one for the counterparty's contracts in
force (indexed on the counterparty; the asset test an EXISTS, and the coverage polygons fetched,
by a CASE on the bounding box, only for the contracts whose box holds the point), which then get
the exact shapely test. Never a walk over every contract of the organization.

Criteria: `{"field": .., "operator": .., "value": ..}`, all of which must hold:

| field          | operators              | value                                   |
| -------------- | ---------------------- | --------------------------------------- |
| `counterparty` | `equals`, `in`         | a counterparty id, or a list of ids     |
| `asset`        | `equals`, `in`         | an asset id, or a list of ids           |
| `asset_kind`   | `equals`, `in`, `contains` | text (case-insensitive), or a list  |
| `priority`     | `equals`, `in`         | a priority, or a list of priorities     |
| `summary`      | `equals`, `contains`   | text (case-insensitive)                 |
| `location`     | `within`               | the id of a contract with coverage areas |
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field

from django.db.models import Case, Exists, F, JSONField, OuterRef, Q, Value, When

from config.api.serializers import reference_of
from contracts.geo import covers, point_of
from contracts.models import Asset, Contract, Counterparty, TermVersion

from .models import ContractRule, WorkOrder

OPERATORS = {
    "counterparty": ("equals", "in"),
    "asset": ("equals", "in"),
    "asset_kind": ("equals", "in", "contains"),
    "priority": ("equals", "in"),
    "summary": ("equals", "contains"),
    "location": ("within",),
}
ID_FIELDS = {"counterparty": Counterparty, "asset": Asset}
ASSET_SCORE, LOCATION_SCORE = 2, 1
# What matching reads of a contract (never its coverage polygons, which are fetched only for
# the contracts whose bounding box holds the point).
CONTRACT_COLUMNS = (
    "reference",
    "name",
    "source_id",
    "status",
    "start_date",
    "expiry_date",
    "time_zone",
    "organization_id",
)
# The widest UTC offsets: a local date has begun somewhere 14 hours before UTC, and ends 12 after.
_EARLIEST, _LATEST = dt.timedelta(hours=14), dt.timedelta(hours=12)


@dataclass(frozen=True)
class Job:
    """What matching looks at: the job as reported (it need not exist yet)."""

    reported_at: dt.datetime
    priority: str = WorkOrder.Priority.MEDIUM
    counterparty: Counterparty | None = None
    asset: Asset | None = None
    summary: str = ""
    location: dict | None = None

    @classmethod
    def of(cls, work_order: WorkOrder) -> Job:
        return cls(
            reported_at=work_order.reported_at,
            priority=work_order.priority,
            counterparty=work_order.counterparty,
            asset=work_order.asset,
            summary=work_order.summary,
            location=work_order.location,
        )


@dataclass(frozen=True)
class ContractRow:
    """What scoring reads of a candidate contract (enough for a reference to it)."""

    pk: int
    reference: str
    name: str
    source_id: str
    status: str
    start_date: dt.date
    expiry_date: dt.date | None
    time_zone: str
    organization_id: int
    covers_asset: bool
    in_box: dict | None  # the coverage, when its bounding box holds the job's location

    def contract(self) -> Contract:
        """The contract as loaded with only these columns (the others deferred: read on access)."""
        loaded = {"id": self.pk, **{c: getattr(self, c) for c in CONTRACT_COLUMNS}}
        names = [f.attname for f in Contract._meta.concrete_fields if f.attname in loaded]
        return Contract.from_db("default", names, [loaded[name] for name in names])


@dataclass
class Candidate:
    contract: ContractRow
    score: int
    explanation: str


@dataclass
class RuleResult:
    rule: ContractRule
    holds: bool
    explanation: str
    contract: Contract | None = None  # what a rule that holds decides: its contract or that one's renewal
    passed_over: bool = False  # its criteria hold but its contract is not in force


@dataclass
class Match:
    method: str  # "rule" | "entitlement" | "none" ("manual" is the caller's)
    contract: Contract | None
    explanation: str
    rule: ContractRule | None = None
    score: int | None = None
    candidates: list[Candidate] = field(default_factory=list)
    rules: list[RuleResult] = field(default_factory=list)

    def record(self) -> dict:
        """What the job stores as `contract_match`."""
        return {
            "method": self.method,
            "rule": reference_of(self.rule),
            "score": self.score,
            "explanation": self.explanation,
        }


def manual_record(contract: Contract | None, explanation: str = "") -> dict:
    return {
        "method": "manual",
        "rule": None,
        "score": None,
        "explanation": explanation or f"contract_id {contract.pk} ({contract.reference}) was given.",
    }


# --- in force -----------------------------------------------------------------------------------


def in_force_q(reported_at: dt.datetime) -> Q:
    """The SQL prefilter (widened by the time-zone offsets); `in_force` is the exact test."""
    return Q(status=Contract.Status.ACTIVE, start_date__lte=(reported_at + _EARLIEST).date()) & (
        Q(expiry_date__isnull=True) | Q(expiry_date__gte=(reported_at - _LATEST).date())
    )


def in_force(contract: Contract, reported_at: dt.datetime) -> bool:
    return not_in_force_because(contract, reported_at) is None


def not_in_force_because(contract: Contract, reported_at: dt.datetime) -> str | None:
    """Why a contract is not in force at the report (None: it is): its status, or the report's
    local date (contract time zone) outside its term."""
    if contract.status != Contract.Status.ACTIVE:
        return f"{contract.reference} is {contract.status}"
    if contract.start_date is None:
        return f"{contract.reference} has no start date"
    day = contract.local_today(reported_at)
    if day < contract.start_date:
        return f"{contract.reference} starts on {contract.start_date} (the report is of {day}, {contract.time_zone})"
    if contract.expiry_date is not None and day > contract.expiry_date:
        return f"{contract.reference} expired on {contract.expiry_date} (the report is of {day}, {contract.time_zone})"
    return None


# --- rules --------------------------------------------------------------------------------------


def _job_value(job: Job, name: str):
    if name == "counterparty":
        return job.counterparty.pk if job.counterparty else (job.asset.counterparty_id if job.asset else None)
    if name == "asset":
        return job.asset.pk if job.asset else None
    if name == "asset_kind":
        return job.asset.kind if job.asset else None
    if name == "priority":
        return job.priority
    if name == "summary":
        return job.summary
    return point_of(job.location)


def _fold(value):
    return value.casefold() if isinstance(value, str) else value


def criterion_holds(criterion: dict, job: Job, areas: dict[int, dict | None]) -> bool:
    name, operator, value = criterion["field"], criterion["operator"], criterion["value"]
    actual = _job_value(job, name)
    if actual in (None, ""):
        return False
    if operator == "within":
        lon, lat = actual
        return covers(areas.get(value), lon, lat)
    try:
        if operator == "equals":
            return _fold(actual) == _fold(value)
        if operator == "in":
            return _fold(actual) in {_fold(v) for v in value}
        return _fold(value) in _fold(actual)  # contains
    except TypeError:  # a value of the wrong type (written around the API): it does not hold
        return False


def _describe(criterion: dict) -> str:
    return f"{criterion['field']} {criterion['operator']} {criterion['value']!r}"


def _evaluate_rules(organization, job: Job) -> tuple[RuleResult | None, list[RuleResult]]:
    rules = list(
        ContractRule.objects.for_organization(organization)
        .filter(enabled=True)
        .select_related("contract")
        .only("name", "sequence", "criteria", "outcome", "contract", *(f"contract__{c}" for c in CONTRACT_COLUMNS))
        .order_by("sequence", "id")
    )
    # Coverage is read only for the `within` criteria of rules whose other criteria all hold.
    plain = {
        rule.pk: all(criterion_holds(c, job, {}) for c in rule.criteria if c["operator"] != "within") for rule in rules
    }
    within = {c["value"] for rule in rules if plain[rule.pk] for c in rule.criteria if c["operator"] == "within"}
    areas = {}
    if within and point_of(job.location) is not None:
        areas = dict(
            Contract.objects.filter(organization=organization, pk__in=within).values_list("pk", "coverage_areas")
        )
    results = []
    for rule in rules:
        failed = [c for c in rule.criteria if not criterion_holds(c, job, areas)]
        if failed:
            results.append(RuleResult(rule, False, f"{_describe(failed[0])} does not hold."))
            continue
        held = "; ".join(_describe(c) for c in rule.criteria) or "no criteria (matches every job)"
        if rule.outcome == ContractRule.Outcome.NOT_COVERED:
            result = RuleResult(rule, True, f"Rule {rule.name!r} (sequence {rule.sequence}): {held}: not covered.")
            results.append(result)
            return result, results
        contract, via = rule.contract, ""
        why = not_in_force_because(contract, job.reported_at)
        if why is not None:
            contract = _renewal_in_force(contract, job.reported_at)
            if contract is None:
                results.append(
                    RuleResult(
                        rule,
                        False,
                        f"Rule {rule.name!r} (sequence {rule.sequence}): criteria hold ({held}) but "
                        f"{rule.contract.reference} is not in force at {job.reported_at.isoformat()} ({why}); "
                        "passed over.",
                        passed_over=True,
                    )
                )
                continue
            via = f" (the renewal of {rule.contract.reference}, in force at {job.reported_at.isoformat()})"
        result = RuleResult(
            rule, True, f"Rule {rule.name!r} (sequence {rule.sequence}): {held}: {contract.reference}{via}.", contract
        )
        results.append(result)
        return result, results
    return None, results


def _renewal_in_force(contract: Contract, reported_at: dt.datetime) -> Contract | None:
    """The renewal of a rule's contract (or a renewal of that one, ...) in force at the report.
    A rule that names a contract goes on naming it when it is renewed, as its SLA rules and
    visit plans carry over (`contracts.services.renewal_handover`): a job reported after the
    original's term goes to its renewal, not on to scoring. One query a step; only for a rule
    whose criteria hold and whose contract is not in force."""
    seen = {contract.pk}
    while True:
        contract = Contract.objects.filter(renewed_from=contract).only(*CONTRACT_COLUMNS).first()
        if contract is None or contract.pk in seen:
            return None
        if in_force(contract, reported_at):
            return contract
        seen.add(contract.pk)


# --- entitlement scoring ------------------------------------------------------------------------


def _candidates(organization, job: Job) -> list[Candidate]:
    counterparty_id = _job_value(job, "counterparty")
    if counterparty_id is None:
        return []
    point = point_of(job.location)
    contracts = Contract.objects.filter(
        in_force_q(job.reported_at), organization=organization, counterparty_id=counterparty_id
    )
    if job.asset is not None:
        through = Contract.covered_assets.through.objects.filter(contract_id=OuterRef("pk"), asset_id=job.asset.pk)
        contracts = contracts.annotate(covers_asset=Exists(through))
    else:
        contracts = contracts.annotate(covers_asset=Value(False))
    if point is not None:
        lon, lat = point
        in_box = Q(
            coverage_min_lon__lte=lon, coverage_max_lon__gte=lon, coverage_min_lat__lte=lat, coverage_max_lat__gte=lat
        )
        # The coverage comes along only for the contracts whose bounding box holds the point.
        contracts = contracts.annotate(
            in_box=Case(
                When(in_box, then=F("coverage_areas")), default=Value(None, JSONField()), output_field=JSONField()
            )
        )
    else:
        contracts = contracts.annotate(in_box=Value(None, JSONField()))
    # Plain rows, not model instances: a counterparty may have a thousand candidates.
    local_days: dict[str, dt.date] = {}
    rows = []
    for values in contracts.values_list("pk", *CONTRACT_COLUMNS, "covers_asset", "in_box"):
        row = ContractRow(*values)
        if row.time_zone not in local_days:
            local_days[row.time_zone] = job.reported_at.astimezone(zoneinfo.ZoneInfo(row.time_zone)).date()
        day = local_days[row.time_zone]
        if row.start_date <= day and (row.expiry_date is None or day <= row.expiry_date):
            rows.append(row)
    covered_then = _covered_on_report_date(rows, job, local_days) if job.asset is not None else {}
    candidates = []
    for contract in rows:
        score, reasons = 0, []
        if covered_then.get(contract.pk, contract.covers_asset):
            score += ASSET_SCORE
            reasons.append(f"covers asset {job.asset.name!r} (+{ASSET_SCORE})")
        if point is not None and contract.in_box is not None and covers(contract.in_box, *point):
            score += LOCATION_SCORE
            reasons.append(f"its coverage area contains the job's location (+{LOCATION_SCORE})")
        explanation = (
            "; ".join(reasons)
            if reasons
            else "in force for the counterparty; covers neither the asset nor the location (0)"
        )
        candidates.append(Candidate(contract, score, explanation))
    far = dt.date.max
    candidates.sort(key=lambda c: (-c.score, c.contract.expiry_date or far, c.contract.pk))
    return candidates


def _covered_on_report_date(rows: list[ContractRow], job: Job, local_days: dict[str, dt.date]) -> dict[int, bool]:
    """Whether each candidate with term versions covered the job's asset on the report's local date:
    `covered_assets` is a term, so an asset moved from one contract to another by amendments from a
    date is the first one's before it and the second one's from it, whatever the row says today (a
    job pushed late, reported before the move, went to the contract covering it now). One query:
    the versions of the candidates that may be in force that day (the window widened by the time-zone
    offsets, as `in_force_q`); a contract without versions (a draft's row, or one from before them)
    reads its row, as `contracts.terms.Timeline` does."""
    if not rows:
        return {}
    found: dict[int, list[tuple[dt.date, list]]] = {}
    window = TermVersion.objects.filter(
        Q(effective_to__isnull=True) | Q(effective_to__gt=(job.reported_at - _LATEST).date()),
        contract_id__in=[row.pk for row in rows],
        effective_from__lte=(job.reported_at + _EARLIEST).date(),
    )
    for contract_id, effective_from, covered in window.order_by("effective_from").values_list(
        "contract_id", "effective_from", "terms__covered_assets"
    ):
        found.setdefault(contract_id, []).append((effective_from, covered or []))
    result = {}
    for row in rows:
        day = local_days[row.time_zone]
        in_force = [covered for effective_from, covered in found.get(row.pk, []) if effective_from <= day]
        if in_force:
            result[row.pk] = job.asset.pk in in_force[-1]
    return result


def match_contract(*, organization, job: Job) -> Match:
    """The contract that covers the job (or none), how it was found, and every candidate."""
    decided, rules = _evaluate_rules(organization, job)
    candidates = _candidates(organization, job)
    # A rule passed over (its criteria hold, its contract is not in force) is why the job did not
    # go where a dispatcher expects: the job's own explanation says so, not only `/match`.
    passed = "".join(f"{r.explanation} " for r in rules if r.passed_over)
    if decided is not None:
        contract = decided.contract
        explanation = passed + decided.explanation
        return Match("rule", contract, explanation, rule=decided.rule, candidates=candidates, rules=rules)
    if candidates:
        best = candidates[0]
        ties = sum(1 for c in candidates if c.score == best.score)
        tie_note = (
            f"; {ties} candidates scored {best.score}: the earliest expiry, then the lowest id, wins"
            if ties > 1
            else ""
        )
        explanation = passed + (
            f"Entitlement: {best.contract.reference} scored {best.score} of {len(candidates)} candidate(s) "
            f"({best.explanation}){tie_note}."
        )
        return Match(
            "entitlement", best.contract.contract(), explanation, score=best.score, candidates=candidates, rules=rules
        )
    if _job_value(job, "counterparty") is None:
        explanation = "No rule applies and the job names no counterparty or asset: no contract to score."
    else:
        explanation = (
            f"No rule applies and no active contract of counterparty {_job_value(job, 'counterparty')} is in force "
            f"at {job.reported_at.isoformat()}."
        )
    return Match("none", None, passed + explanation, candidates=[], rules=rules)
