"""`verify_ledger`: every contract's running balance proven against a fresh sum over its entries."""

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F

from contracts.models import Contract
from ledger import services

from .helpers import DAY, T0, active_contract, credit, post, work


def verify(*args) -> str:
    out = io.StringIO()
    call_command("verify_ledger", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def books(org, other_org):
    """Contracts of two organizations with a bit of everything, and one without entries."""
    mine = active_contract(org, allow_overrun=True)
    credit(mine, 10, at=T0, expires_at=T0 + 5 * DAY)
    work(mine, "3.25", at=T0 + DAY)
    post(mine, "adjustment", "-1.50", at=T0 + 2 * DAY)
    work(mine, 9, at=T0 + 3 * DAY)
    services.expire_lots(now=T0 + 6 * DAY)
    theirs = active_contract(other_org)
    credit(theirs, 4, at=T0)
    empty = active_contract(org)
    return mine, theirs, empty


@pytest.mark.django_db
class TestVerifyLedger:
    def test_a_sound_ledger_passes(self, books):
        out = verify()
        assert "Summary: 3 contracts checked; every running balance equals its entries." in out
        assert services.running_balance_errors() == []

    def test_a_corrupted_running_balance_fails_with_a_non_zero_exit(self, books):
        mine, theirs, empty = books
        kept = Contract.objects.get(pk=mine.pk).remaining_hours
        Contract.objects.filter(pk=mine.pk).update(remaining_hours=F("remaining_hours") + Decimal("0.01"))
        out = io.StringIO()
        with pytest.raises(CommandError, match="1 of 3 contracts disagree with their entries") as failure:
            call_command("verify_ledger", stdout=out)
        assert failure.value.returncode == 1  # what `manage.py verify_ledger` exits with
        assert (
            f"contract {mine.pk}: running balance {kept + Decimal('0.01')} != sum of entries {kept}" in out.getvalue()
        )
        assert services.running_balance_errors() == [(mine.pk, kept + Decimal("0.01"), kept)]

    def test_a_balance_without_entries_is_caught_too(self, books):
        mine, theirs, empty = books
        Contract.objects.filter(pk=empty.pk).update(remaining_hours=Decimal("8.00"))
        with pytest.raises(CommandError):
            verify()
        assert services.running_balance_errors() == [(empty.pk, Decimal("8.00"), Decimal("0"))]

    def test_one_organization(self, books):
        mine, theirs, empty = books
        Contract.objects.filter(pk=theirs.pk).update(remaining_hours=Decimal("0.00"))
        assert "Summary: 2 contracts checked" in verify("--org", "acme")
        with pytest.raises(CommandError, match="1 of 1 contracts disagree"):
            verify("--org", "globex")
        with pytest.raises(CommandError, match="No organization 'initech'"):
            verify("--org", "initech")
