"""The breach list loads of each reference only what its `{id, name}` shows (`list_references`,
issue 15): the same bytes as reading each breach alone, for references whose `str()` is read (a
job without a reference, a contract without a name, users with and without names, nobody), and
no query per row for a column left out."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from breaches.models import Breach
from breaches.services import acknowledge_breach, waive_breach
from tests.breaches.factories import T0, active_contract, make_job, make_rule, minutes, update_job
from tests.config.list_checks import all_fields, assert_list_is_each_alone, default_fields, list_queries

URL = "/api/v1/breaches"
CLAUSE = {"fixed_amount": "10", "per_unit_amount": "2.5", "unit_minutes": 10}
ROWS_PER_SET = 5


def late(contract, at, **job_fields) -> Breach:
    """The response breach of a job answered 30 minutes after its one-hour target."""
    job = make_job(contract, at, **job_fields)
    update_job(job, minutes(90, at), status="in_progress")
    return Breach.objects.get(work_order=job, metric="response")


def make_breaches(org, start) -> dict[str, Breach]:
    """One of each kind of row, `ROWS_PER_SET` breaches, from jobs reported from `start` on."""
    User = get_user_model()
    named = User.objects.create_user(username=f"ada-{start:%d%H%M}", first_name="Ada", last_name="Lovelace")
    plain = User.objects.create_user(username=f"op-{start:%d%H%M}")
    unnamed = active_contract(org, name="")  # `{id, name}` falls back to str(): reference and name
    contract = active_contract(org, currency="JPY")
    for c in (unnamed, contract):
        make_rule(c, target_minutes=60, penalty=CLAUSE)
    waived = late(unnamed, start)  # a job without a reference: str() is "work order <id>"
    waive_breach(breach=waived, actor=named, reason="Agreed.", now=minutes(200, start))
    both = late(contract, minutes(7, start), reference="WO-7", source="crm", source_id=f"X-{start:%H%M}")
    acknowledge_breach(breach=both, actor=plain, now=minutes(200, start))
    waive_breach(breach=both, actor=named, reason="Goodwill.", now=minutes(201, start))
    acknowledged = late(contract, minutes(14, start), reference="WO-14")
    acknowledge_breach(breach=acknowledged, actor=plain, now=minutes(200, start))
    by_nobody = late(unnamed, minutes(21, start))
    acknowledge_breach(breach=by_nobody, actor=None, now=minutes(200, start))  # the system: no user
    still_open = late(contract, minutes(28, start))
    return {"waived": waived, "both": both, "acknowledged": acknowledged, "by_nobody": by_nobody, "open": still_open}


@pytest.mark.django_db
class TestBreachListReferences:
    def test_a_list_shows_what_reading_each_breach_alone_shows(self, api, org):
        made = make_breaches(org, T0)
        shown = assert_list_is_each_alone(api("viewer"), URL, made)
        # The references whose str() is shown, as reading the whole rows shows them.
        waived, both = shown["waived"], shown["both"]
        assert waived["work_order"]["name"] == f"work order {made['waived'].work_order_id}"
        assert waived["contract"]["name"].startswith("C-")
        assert waived["waived_by"]["name"].startswith("ada-") and waived["acknowledged_by"] is None
        assert both["work_order"] == {"id": made["both"].work_order_id, "name": "WO-7", "sourceID": "X-0900"}
        assert both["acknowledged_by"]["name"].startswith("op-") and both["waived_by"]["name"].startswith("ada-")
        assert shown["acknowledged"]["acknowledged_by"]["name"].startswith("op-")
        assert shown["acknowledged"]["waived_by"] is None
        assert shown["by_nobody"]["state"] == "acknowledged" and shown["by_nobody"]["acknowledged_by"] is None
        assert shown["open"]["acknowledged_by"] is None and shown["open"]["waived_by"] is None

    @pytest.mark.parametrize("fields", [all_fields(URL), default_fields(URL)])
    def test_the_queries_do_not_grow_with_the_rows(self, api, org, fields):
        client = api("viewer")
        make_breaches(org, T0)
        few = list_queries(client, URL, fields, ROWS_PER_SET)
        make_breaches(org, minutes(600))
        many = list_queries(client, URL, fields, 2 * ROWS_PER_SET)
        # The count, the page's ids, and the page with its references joined: with a column
        # left out that the representation reads, one more query per row.
        assert len(few) == len(many) == 3, many
