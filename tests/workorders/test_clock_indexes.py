"""Indexes the scan writes (issue 15): no foreign key index that another index already leads with.

Every update of a clock that moves an indexed column (the scan's `state` flip and escalation
bookkeeping) writes a new entry in each of the table's indexes, and each event and e-mail row one
in each of theirs: the clock's organization and job, the event's organization and the e-mail's
event have no index of their own; the foreign key constraints stay."""

import pytest
from django.db import connection

from events.models import Event
from notifications.models import EmailNotification
from workorders.models import SlaClock

pytestmark = pytest.mark.django_db

CASES = [
    (SlaClock, "organization_id", ["organization_id", None]),  # clock_decided: (organization, expression)
    (SlaClock, "work_order_id", ["work_order_id", "rule_id"]),  # clock_once_per_rule
    (Event, "organization_id", ["organization_id", "id"]),  # event_org_id
    (EmailNotification, "event_id", ["event_id"]),  # email_once_per_event (unique)
]


@pytest.mark.parametrize(("model", "column", "covering"), CASES)
def test_no_index_of_its_own_and_one_that_leads_with_it(model, column, covering):
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    indexes = [c for c in constraints.values() if (c["index"] or c["unique"]) and not c["primary_key"]]
    assert [c for c in indexes if c["columns"] == [column] and not c["unique"]] == []
    leading = [c["columns"] for c in indexes if c["columns"] and c["columns"][0] == column]
    if connection.vendor == "postgresql":  # SQLite's introspection does not list expression columns
        assert covering in leading
    else:
        assert leading
    foreign_keys = [c for c in constraints.values() if c["foreign_key"] and c["columns"] == [column]]
    assert len(foreign_keys) == 1
