# The event's organization foreign key without its own index: `event_org_id` (organization, id) leads with it.

import django.db.models.deletion
from django.db import migrations, models

from config.migration_ops import drop_foreign_key_index


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0001_initial"),
        ("tenancy", "0003_membership_username"),
    ]

    operations = [
        drop_foreign_key_index(
            "events", "event", "organization",
            models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="+",
                to="tenancy.organization",
            ),
        ),
    ]  # fmt: skip
