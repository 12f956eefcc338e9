"""Business-hours calendars and the SLA rules of contracts.

The clock semantics (business time, due times) live in the pure module `slas.clock`; these
models hold what it needs and turn themselves into its inputs (`Calendar.spec`).
"""

import datetime as dt

from django.db import models

from config.errors import UnknownStoredTimeZone
from contracts.models import Contract
from tenancy.models import TenantModel, validate_time_zone

from .clock import Calendar as CompiledCalendar
from .clock import CalendarSpec, UnknownTimeZone, compile_calendar, compile_keyed


class Calendar(TenantModel):
    """Weekly working intervals in local wall time, plus holidays (whole local dates): the public
    holidays of `holiday_country` (and `holiday_subdivision`) for every year, computed by the
    `holidays` package, plus the calendar's own `holidays`, minus its `working_days`."""

    name = models.CharField(max_length=160)
    time_zone = models.CharField(max_length=64, validators=[validate_time_zone])
    # [{"weekday": 1-7 (ISO), "start": "HH:MM", "end": "HH:MM" | "24:00"}, ...]
    hours = models.JSONField(default=list)
    # [{"date": "YYYY-MM-DD", "name": "..."}, ...]
    holidays = models.JSONField(default=list, blank=True)
    # ISO 3166-1 alpha-2 and the package's subdivision code (the part after "GB-" in ISO 3166-2).
    holiday_country = models.CharField(max_length=2, blank=True, default="")
    holiday_subdivision = models.CharField(max_length=16, blank=True, default="")
    # ["YYYY-MM-DD", ...]: dates worked despite a public holiday.
    working_days = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "name", "id"], name="calendar_org_name")]
        # Selects show only the name (a contract's billing calendar, a rule's), and the demo seed
        # finds its calendar by name: two of one name could not be told apart.
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="calendar_unique_name")]

    str_columns = ("name",)  # what __str__ reads (config.api.rows)

    def __str__(self) -> str:
        return self.name

    @property
    def spec(self) -> CalendarSpec:
        """The clock's view of this calendar (hashable: equal calendars share one compiled form).

        A stored calendar whose zone this server's tzdata lacks (an upgrade dropped it) is a
        conflict naming the calendar: every clock, report and export on it answers that, not a 500."""
        try:
            return CalendarSpec(
                time_zone=self.time_zone,
                hours=tuple((h["weekday"], h["start"], h["end"]) for h in self.hours),
                holidays=frozenset(dt.date.fromisoformat(h["date"]) for h in self.holidays),
                country=self.holiday_country or None,
                subdivision=self.holiday_subdivision or None,
                working_days=frozenset(dt.date.fromisoformat(day) for day in self.working_days),
            )
        except UnknownTimeZone as exc:
            if self.pk is None:
                raise
            raise UnknownStoredTimeZone(exc.zone, f"Calendar {self.pk}") from None

    @property
    def compiled(self) -> CompiledCalendar:
        """The compiled calendar, cached per row and `updated_at` (every edit through the services
        saves the row, so a changed calendar recompiles): one dict lookup per clock computation."""
        # The same row object asked again (once per clock of a recomputation): the memo first, and
        # `id` rather than the `pk` property (two Python calls), the same test as `pk is None`.
        memo = self.__dict__.get("_compiled_memo")
        if memo is not None and memo[0] == self.updated_at and self.id is not None:
            return memo[1]
        if self.pk is None:
            return compile_calendar(self.spec)
        compiled = compile_keyed(("calendar", self.pk), self.updated_at, lambda: self.spec)
        self.__dict__["_compiled_memo"] = (self.updated_at, compiled)
        return compiled


class SlaRule(TenantModel):
    """A response, on-site or resolution target for a band of priorities of one contract.

    Rules are versioned: past draft, an amendment ends a rule at an instant and creates its
    successor (`previous_version`), so a job's clocks keep the version in force when it was
    reported.
    """

    class Metric(models.TextChoices):
        RESPONSE = "response"
        ON_SITE = "on_site"
        RESOLUTION = "resolution"

    class Priority(models.TextChoices):
        CRITICAL = "critical"
        HIGH = "high"
        MEDIUM = "medium"
        LOW = "low"
        PLANNED = "planned"

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="sla_rules")
    name = models.CharField(max_length=160)
    metric = models.CharField(max_length=16, choices=Metric.choices)
    priorities = models.JSONField()
    target_minutes = models.PositiveIntegerField()
    calendar = models.ForeignKey(Calendar, null=True, blank=True, on_delete=models.PROTECT, related_name="rules")
    pause_on_hold = models.BooleanField()
    escalation = models.JSONField(default=list, blank=True)
    penalty = models.JSONField(null=True, blank=True)
    monthly_penalty_cap = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    active = models.BooleanField(default=True)
    effective_from = models.DateTimeField()
    effective_to = models.DateTimeField(null=True, blank=True)
    previous_version = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="next_version"
    )
    # The first version of this rule (null on the first itself): the versions of one rule share its
    # monthly penalty cap (`series_id`), and a job's clock moves between them.
    first_version = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "SLA rule"
        verbose_name_plural = "SLA rules"
        indexes = [
            models.Index(fields=["contract", "metric", "effective_from"], name="rule_contract_metric"),
            # The collection's default sort (name, then id) per organization: ids off an index-only scan.
            models.Index(fields=["organization", "name", "id"], name="rule_org_name"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(target_minutes__gte=1), name="rule_target_positive"),
            models.CheckConstraint(
                condition=models.Q(effective_to__isnull=True) | models.Q(effective_to__gt=models.F("effective_from")),
                name="rule_effective_period",
            ),
        ]

    str_columns = ("name", "metric", "target_minutes")  # what __str__ reads (config.api.rows)

    def __str__(self) -> str:
        return f"{self.name} ({self.metric} {self.target_minutes} min)"

    @property
    def series_id(self) -> int:
        """The id its versions share: the first version's."""
        return self.first_version_id or self.pk

    def in_force_at(self, instant: dt.datetime) -> bool:
        return self.effective_from <= instant and (self.effective_to is None or instant < self.effective_to)


# The priority bands from the most urgent: `?sort=priority` lists critical jobs first, not in the
# alphabet's order (critical, high, low, medium, planned; found by an outside sweep).
PRIORITY_RANK = models.Case(
    *(models.When(priority=value, then=models.Value(rank)) for rank, value in enumerate(SlaRule.Priority.values)),
    output_field=models.IntegerField(),
)
