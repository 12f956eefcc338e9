"""The signature requests' admin list: its status filter agrees with the status column (the API's)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from contracts.models import Contract
from signing import services
from signing.models import SignatureRequest
from tests.signing.test_signing import pending_contract
from tests.slas.factories import make_rule

LIST = "/admin/signing/signaturerequest/"


def ask(contract: Contract, name: str) -> SignatureRequest:
    return services.create_request(contract=contract, actor=None, data={"name": name, "email": f"{name}@x.example"})


def listed(staff, query: str) -> set[int]:
    page = staff.get(f"{LIST}?{query}")
    assert page.status_code == 200, page.content
    return {int(pk) for pk in re.findall(rf'href="{LIST}(\d+)/change/', page.content.decode())}


@pytest.mark.django_db
def test_the_status_filter_lists_what_the_status_column_shows(admin_client, org):
    # Found by the admin sweep: the filter read the stored column, which keeps "pending" for a link
    # past its expiry or void since, while the column shows the API's status: "pending" listed
    # expired and void requests, and no void request could be found.
    live, changed, rejected = (pending_contract(org, reference=f"S-{n}") for n in range(3))
    live_request, expired_request = ask(live, "live"), ask(live, "late")
    SignatureRequest.objects.filter(pk=expired_request.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    terms_changed = ask(changed, "changed")
    make_rule(changed, name="On site", metric="on_site", target_minutes=240)  # a new SLA target: void
    new_round = ask(rejected, "rejected")
    Contract.objects.filter(pk=rejected.pk).update(status="draft", approval_round=2)  # sent back: void
    decided = ask(live, "decided")
    SignatureRequest.objects.filter(pk=decided.pk).update(status="rejected", decided_at=timezone.now())

    expected = {
        "pending": {live_request.pk},
        "expired": {expired_request.pk},
        "void": {terms_changed.pk, new_round.pk},
        "rejected": {decided.pk},
        "accepted": set(),
    }
    for request in SignatureRequest.objects.select_related("contract"):  # as the column and the API say
        assert request.pk in expected[services.current_status(request)]
    for status, pks in expected.items():
        assert listed(admin_client, f"status={status}") == pks, status
    assert listed(admin_client, "") == set().union(*expected.values())
    # Combined with the other filter, and a hand-edited value is the list's `?e=1`, not a 500.
    assert listed(admin_client, f"status=void&organization__id__exact={org.pk}") == expected["void"]
    assert admin_client.get(f"{LIST}?status=nonsense").status_code == 302
    # No contract waits for a live request any more: nothing is pending, every live link is void.
    Contract.objects.filter(pk=live.pk).update(status="draft", approval_round=2)
    assert listed(admin_client, "status=pending") == set()
    assert listed(admin_client, "status=void") == {live_request.pk, *expected["void"]}
