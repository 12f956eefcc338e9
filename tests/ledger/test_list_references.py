"""The ledger-entry list loads of each reference only what its `{id, name}` shows
(`list_references`, issue 15): the same bytes as reading each entry alone, for entries with and
without a job, a breach, a lot and an author (users with and without names), and no query per
row for a column left out."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from contracts.services import run_lifecycle
from ledger.models import LedgerEntry
from tests.config.list_checks import all_fields, assert_list_is_each_alone, default_fields, list_queries

from .helpers import DAY, T0, active_contract, credit, final_breach, job, penalty_rule, post, work

URL = "/api/v1/ledger_entries"
ROWS_PER_SET = 7


def make_entries(org, start) -> dict[str, LedgerEntry]:
    """One of each kind of entry (`ROWS_PER_SET` in all), posted from `start` on."""
    User = get_user_model()
    named = User.objects.create_user(username=f"ada-{start:%m%d}", first_name="Ada", last_name="Lovelace")
    plain = User.objects.create_user(username=f"op-{start:%m%d}")
    contract = active_contract(org, name="")  # `{id, name}` falls back to str(): reference and name
    penalty_rule(contract)
    lot = credit(contract, 10, at=start, expires_at=start + 10 * DAY, actor=named)
    referenced = job(contract, start, reference="WO-9", source="crm", source_id=f"X-{start:%m%d}")
    unreferenced = job(contract, start)  # str(): "work order <id>"
    entries = {
        "lot": lot,
        "work_referenced": work(contract, 2, at=start + DAY, actor=plain, work_order=referenced),
        "work_unreferenced": work(contract, 1, at=start + DAY, work_order=unreferenced),
        "adjustment": post(contract, "adjustment", 1, at=start + 2 * DAY),  # no job, breach, lot or author
        # Posted by the system when the breach became final (linked to the breach and its job).
        "penalty": LedgerEntry.objects.get(breach=final_breach(contract, reported_at=start + 3 * DAY)),
        "other_contract": credit(active_contract(org), 5, at=start, actor=plain),
    }
    run_lifecycle(now=start + 11 * DAY)  # the lot's unused hours expire: an entry of the lot
    entries["expiry"] = LedgerEntry.objects.get(lot=lot)
    return entries


@pytest.mark.django_db
class TestLedgerListReferences:
    def test_a_list_shows_what_reading_each_entry_alone_shows(self, api, org):
        made = make_entries(org, T0)
        shown = assert_list_is_each_alone(api("viewer"), URL, made)
        # The references whose str() is shown, as reading the whole rows shows them.
        assert shown["lot"]["created_by"]["name"].startswith("ada-") and shown["lot"]["lot"] is None
        assert shown["lot"]["contract"]["name"].startswith("C-")
        work_order = made["work_referenced"].work_order
        assert shown["work_referenced"]["work_order"] == {"id": work_order.pk, "name": "WO-9", "sourceID": "X-0302"}
        assert shown["work_referenced"]["created_by"]["name"].startswith("op-")
        unreferenced = made["work_unreferenced"].work_order_id
        assert shown["work_unreferenced"]["work_order"]["name"] == f"work order {unreferenced}"
        assert [shown["adjustment"][k] for k in ("work_order", "breach", "lot", "created_by")] == [None] * 4
        breach = made["penalty"].breach
        assert shown["penalty"]["breach"]["name"] == f"response breach of work order {breach.work_order_id}"
        assert shown["expiry"]["lot"]["name"] == f"credit 10.00h on contract {made['lot'].contract_id}"

    @pytest.mark.parametrize("fields", [all_fields(URL), default_fields(URL)])
    def test_the_queries_do_not_grow_with_the_rows(self, api, org, fields):
        client = api("viewer")
        make_entries(org, T0)
        few = list_queries(client, URL, fields, ROWS_PER_SET)
        make_entries(org, T0 + 30 * DAY)
        many = list_queries(client, URL, fields, 2 * ROWS_PER_SET)
        # The count, the page's ids, and the page with its references joined: with a column
        # left out that the representation reads, one more query per row.
        assert len(few) == len(many) == 3, many
