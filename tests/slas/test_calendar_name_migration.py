"""slas.0007 renames an organization's calendars of one name before it makes names unique, so it
applies to a database that has duplicates (found by an outside sweep: two "UK office hours")."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE, AFTER = ("slas", "0006_slarule_first_version"), ("slas", "0007_calendar_unique_name")


@pytest.mark.django_db(transaction=True)
def test_duplicate_names_are_numbered_then_made_unique(org, other_org):
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    Calendar = executor.loader.project_state([BEFORE]).apps.get_model("slas", "Calendar")

    def calendar(organization, name):
        return Calendar.objects.create(organization_id=organization.pk, name=name, time_zone="UTC", hours=[]).pk

    first, second, third = (calendar(org, "UK office hours") for _ in range(3))
    taken = calendar(org, "UK office hours (2)")  # a name the renaming must step over
    theirs = calendar(other_org, "UK office hours")  # another organization's: left alone
    long_name = "x" * 160
    long_first, long_second = calendar(org, long_name), calendar(org, long_name)

    executor = MigrationExecutor(connection)
    executor.migrate([AFTER])
    Calendar = executor.loader.project_state([AFTER]).apps.get_model("slas", "Calendar")
    names = dict(Calendar.objects.values_list("pk", "name"))
    assert [names[pk] for pk in (first, second, third, taken, theirs)] == [
        "UK office hours", "UK office hours (3)", "UK office hours (4)", "UK office hours (2)", "UK office hours",
    ]  # fmt: skip
    assert (names[long_first], names[long_second]) == (long_name, "x" * 156 + " (2)")
