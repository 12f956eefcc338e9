# The clock's organization and job foreign keys without their own indexes: `clock_decided`
# (organization, ...) and `clock_once_per_rule` (work_order, rule) lead with those columns.

import django.db.models.deletion
from django.db import migrations, models

from config.migration_ops import drop_foreign_key_index


class Migration(migrations.Migration):
    dependencies = [
        ("tenancy", "0003_membership_username"),
        ("workorders", "0006_merge_20261129_0441"),
    ]

    operations = [
        drop_foreign_key_index(
            "workorders", "slaclock", "organization",
            models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="+",
                to="tenancy.organization",
            ),
        ),
        drop_foreign_key_index(
            "workorders", "slaclock", "work_order",
            models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="sla_clocks",
                to="workorders.workorder",
            ),
        ),
    ]  # fmt: skip
