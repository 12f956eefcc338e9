# The e-mail's event foreign key without its own index: the unique `email_once_per_event` is one.

import django.db.models.deletion
from django.db import migrations, models

from config.migration_ops import drop_foreign_key_index


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0002_event_organization_index"),
        ("notifications", "0003_merge_20261129_0441"),
    ]

    operations = [
        drop_foreign_key_index(
            "notifications", "emailnotification", "event",
            models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="events.event"
            ),
        ),
    ]  # fmt: skip
