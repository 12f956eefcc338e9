"""Demo calendar (Mon-Fri 08:00-17:00 Europe/London with the public holidays of England, every
year, from the `holidays` package) and SLA rules on the demo contracts."""

from contracts.models import Contract
from tenancy.models import Organization

from . import services
from .models import Calendar, SlaRule

DEMO_RULES = [
    # contract, name, metric, priorities, target minutes, on the office calendar?, escalation, penalty
    ("DEMO-SC-001", "Critical response", "response", ["critical", "high"], 60, False,
     [{"at_percent": 50, "name": "Dispatcher", "notify": ["dispatch@demo.example"]},
      {"at_percent": 90, "name": "Duty manager", "notify": ["duty@demo.example"]}],
     {"fixed_amount": "150", "per_unit_amount": "25", "unit_minutes": 30, "per_breach_cap": "600"}),
    ("DEMO-SC-001", "On site", "on_site", ["critical", "high"], 240, True, [], {"fixed_amount": "100"}),
    ("DEMO-SC-001", "Resolution", "resolution", ["critical", "high", "medium"], 960, True,
     [{"at_percent": 75, "name": "Account manager", "notify": ["am@demo.example"]}],
     {"fixed_amount": "200", "per_unit_amount": "50", "unit_minutes": 60, "per_breach_cap": "1000"}),
    ("DEMO-MA-001", "Response", "response", ["critical", "high", "medium", "low"], 240, True, [],
     {"fixed_amount": "75"}),
]  # fmt: skip


def seed(log) -> None:
    demo = Organization.objects.get(slug="demo")
    # Created once, through the service (its event); an existing one is left as staff left it:
    # writing it again bypassed the service, so the running clocks kept due times from the edit
    # it undid (found by an outside sweep).
    calendar = Calendar.objects.filter(organization=demo, name="UK office hours").order_by("id").first()
    if calendar is None:
        calendar = services.create_calendar(
            organization=demo,
            actor=None,
            data={
                "name": "UK office hours",
                "time_zone": "Europe/London",
                "hours": [{"weekday": day, "start": "08:00", "end": "17:00"} for day in range(1, 6)],
                "holiday_country": "GB",
                "holiday_subdivision": "ENG",
            },
        )
    created = 0
    for reference, name, metric, priorities, target, office, escalation, penalty in DEMO_RULES:
        contract = Contract.objects.filter(organization=demo, reference=reference).first()
        if contract is None or SlaRule.objects.filter(contract=contract, name=name).exists():
            continue
        services.create_rule(
            organization=demo,
            actor=None,
            data={
                "contract": contract,
                "name": name,
                "metric": metric,
                "priorities": priorities,
                "target_minutes": target,
                "calendar": calendar if office else None,
                "escalation": escalation,
                "penalty": penalty,
                "monthly_penalty_cap": "5000",
                "effective_from": contract.start_of_day(contract.start_date),
            },
        )
        created += 1
    log(f"calendar {calendar.name!r} with the public holidays of England; {created} new SLA rules")
