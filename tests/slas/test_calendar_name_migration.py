"""slas.0007 renames an organization's calendars of one name before it makes names unique, so it
applies to a database that has duplicates (found by an outside sweep: two "UK office hours")."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE, AFTER = ("slas", "0006_slarule_first_version"), ("slas", "0007_calendar_unique_name")


@pytest.fixture
def back_to_the_latest_schema():
    """Every migration applied again after the test: going back to slas.0006 also unapplied every
    later migration that depends on slas (workorders.0011's visit plan calendar), which the forward
    step to 0007 does not bring back, and the next test on this database found a column missing."""
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_duplicate_names_are_numbered_then_made_unique(org, other_org, back_to_the_latest_schema):
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


@pytest.mark.django_db(transaction=True)
def test_the_schema_is_whole_again_after_the_migration_test(org):
    """Runs after the test above in the same process (file order): every model's table and columns
    are there, so the tests that follow on this database see the latest schema."""
    from django.apps import apps

    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
        for model in apps.get_models():
            if model._meta.managed and not model._meta.proxy:
                assert model._meta.db_table in tables, model
                described = {
                    column.name
                    for column in connection.introspection.get_table_description(cursor, model._meta.db_table)
                }
                assert {field.column for field in model._meta.local_concrete_fields} <= described, model
