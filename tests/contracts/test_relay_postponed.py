"""`relay_postponed_terms`: the one-off re-lay of contracts postponed before the tenth round."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command

from contracts import terms
from contracts.models import Amendment, Contract, TermVersion
from events.models import Event
from tests.contracts.test_amendments import approved_contract, make_amendment


def relay(*args) -> str:
    out = io.StringIO()
    call_command("relay_postponed_terms", *args, stdout=out)
    return out.getvalue()


def postponed_before_the_tenth_round(org, reference: str, *, ran: bool = False) -> Contract:
    """The rows a postponement approved before the tenth round left (hand-built: today's code no
    longer writes them): approved on 1 January 2099 with 100 hours, an amendment to 120 hours from
    15 January, then the start moved to 1 February (laid on every version, the row taking it). The
    versions still begin on the old start. `ran`: a contract activated on its old start before the
    seventh round, its start rewritten while it ran (its earlier versions keep the old start)."""
    contract = approved_contract(
        org,
        reference=reference,
        status="active" if ran else "scheduled",
        start_date=dt.date(2099, 1, 1),
        expiry_date=dt.date(2099, 12, 31),
        hours_budget="100.00",
    )
    raised = make_amendment(contract, effective_date=dt.date(2099, 1, 15), changes={"hours_budget": "120.00"})
    moved = make_amendment(contract, effective_date=dt.date(2099, 2, 1), changes={"start_date": "2099-02-01"})
    Amendment.objects.filter(pk__in=[raised.pk, moved.pk]).update(status="approved")
    first = contract.term_versions.get()
    base = dict(first.terms, start_date="2099-01-01" if ran else "2099-02-01")
    first.terms, first.effective_to = base, dt.date(2099, 1, 15)
    first.save()
    more = dict(base, hours_budget="120.00")
    TermVersion.objects.create(
        organization=org, contract=contract, effective_from=dt.date(2099, 1, 15), effective_to=dt.date(2099, 2, 1),
        terms=more, origin="amendment", amendment=raised,
    )  # fmt: skip
    TermVersion.objects.create(
        organization=org, contract=contract, effective_from=dt.date(2099, 2, 1),
        terms=dict(more, start_date="2099-02-01"), origin="amendment", amendment=moved,
    )  # fmt: skip
    Contract.objects.filter(pk=contract.pk).update(start_date=dt.date(2099, 2, 1))
    contract.refresh_from_db()
    return contract


def shown(contract) -> list[tuple]:
    return [(v.origin, v.effective_from, v.effective_to, v.terms["hours_budget"]) for v in terms.versions(contract)]


OLD = [
    ("creation", dt.date(2099, 1, 1), dt.date(2099, 1, 15), "100.00"),
    ("amendment", dt.date(2099, 1, 15), dt.date(2099, 2, 1), "120.00"),
    ("amendment", dt.date(2099, 2, 1), None, "120.00"),
]


@pytest.mark.django_db
class TestRelayPostponedTerms:
    def test_a_dry_run_lists_and_apply_relays_once(self, org, api):
        contract = postponed_before_the_tenth_round(org, "OLD-1")
        ran = postponed_before_the_tenth_round(org, "RAN-1", ran=True)
        untouched = approved_contract(org, reference="FINE-1", start_date=dt.date(2099, 1, 1), expiry_date=None)
        events = Event.objects.count()

        out = relay()
        assert "OLD-1" in out and "creation 2099-01-01..2099-01-15" in out, out
        assert "-> amendment 2099-02-01.." in out and "contract.terms_changed" in out, out
        assert "RAN-1" in out and "started on 2099-01-01: it ran then; left as is" in out, out
        assert "FINE-1" not in out
        assert "Summary: 1 contracts to re-lay, 1 left as they are." in out and "--apply" in out, out
        assert shown(contract) == OLD and Event.objects.count() == events  # a dry run changes nothing
        as_of = api("viewer").get(f"/api/v1/contracts/{contract.pk}", {"as_of": "2099-01-20", "fields": "hours_budget"})
        assert as_of.json()["hours_budget"] == "120.00"  # the old version of 15 January...
        as_of = api("viewer").get(f"/api/v1/contracts/{contract.pk}", {"as_of": "2099-01-10", "fields": "hours_budget"})
        assert as_of.json()["hours_budget"] == "100.00"  # ...and of 1 January: not what it starts with

        out = relay("--apply")
        assert "Summary: 1 contracts re-laid, 1 left as they are." in out, out
        contract.refresh_from_db()
        assert shown(contract) == [("amendment", dt.date(2099, 2, 1), None, "120.00")]
        assert (contract.start_date, str(contract.hours_budget)) == (dt.date(2099, 2, 1), "120.00")
        for day in ("2099-01-10", "2099-01-20", "2099-02-01"):  # before the start: the terms it starts with
            as_of = api("viewer").get(f"/api/v1/contracts/{contract.pk}", {"as_of": day, "fields": "hours_budget"})
            assert as_of.json()["hours_budget"] == "120.00", day
        written = Event.objects.filter(object_id=contract.pk, type="contract.terms_changed").get()
        assert written.payload["changes"] == {"hours_budget": {"before": "100.00", "after": "120.00"}}
        assert shown(ran) == OLD and len(terms.versions(untouched)) == 1  # the others as they were

        again = relay("--apply")  # idempotent
        assert "Summary: 0 contracts re-laid, 1 left as they are." in again, again
        assert Event.objects.filter(type="contract.terms_changed").count() == 1

    def test_an_unknown_organization_is_named(self, org):
        with pytest.raises(CommandError, match="--org 'nope': no such organization"):
            relay("--org", "nope")
        postponed_before_the_tenth_round(org, "OLD-2")
        assert "Summary: 1 contracts to re-lay" in relay("--org", org.slug)


@pytest.mark.django_db
def test_as_of_reads_a_versions_first_and_last_day(api, org):
    # Eleventh round, checked: a version is in force on [effective_from, effective_to), local dates of
    # the contract's zone: its last day reads it, the next day the next version (detail and list).
    from tests.contracts.test_amendments import amend, approve_fully

    managers = api("manager"), api("manager"), api("manager")
    contract = approved_contract(org, time_zone="Pacific/Auckland", hours_budget="100.00")
    raised = amend(managers[0], contract, effective_date="2027-04-05", changes={"hours_budget": "150.00"})
    approve_fully(managers, contract, raised.json()["id"])  # 5 April 2027: the day NZ leaves summer time
    viewer = api("viewer")
    for day, hours in (("2027-04-04", "100.00"), ("2027-04-05", "150.00"), ("2026-01-01", "100.00")):
        shown = viewer.get(f"/api/v1/contracts/{contract.pk}", {"as_of": day, "fields": "hours_budget"}).json()
        assert shown["hours_budget"] == hours, day
        listed = viewer.get("/api/v1/contracts", {"as_of": day, "fields": "hours_budget"}).json()
        assert [(c["id"], c["hours_budget"]) for c in listed] == [(contract.pk, hours)], day
