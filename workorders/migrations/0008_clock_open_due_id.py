# The at-risk report's index (issue 15): `clock_open_due` (organization, due_at) with the id its sort
# ends on, so that a page's ids are read off the index instead of sorting the window's clocks.
# The new index is built before the old one is dropped.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workorders", "0007_clock_fk_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="slaclock",
            index=models.Index(
                condition=models.Q(("state__in", ["running", "breached"]), ("stopped_at__isnull", True)),
                fields=["organization", "due_at", "id"],
                name="clock_open_due_id",
            ),
        ),
        migrations.RemoveIndex(
            model_name="slaclock",
            name="clock_open_due",
        ),
    ]
