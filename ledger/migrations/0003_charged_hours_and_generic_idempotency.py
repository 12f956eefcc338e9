# Issue 12: work entries gain charged_hours (existing entries: charged = hours); the billing
# plan's reason codes; Idempotency-Key records point at any resource, not only ledger entries.

from django.db import migrations, models
from django.db.models import F


def charged_equals_hours(apps, schema_editor):
    apps.get_model("ledger", "LedgerEntry").objects.update(charged_hours=F("hours"))


def keys_point_at_entries(apps, schema_editor):
    apps.get_model("ledger", "IdempotencyKey").objects.update(object_id=F("entry_id"), resource="ledger_entries")


class Migration(migrations.Migration):

    dependencies = [
        ("ledger", "0002_books_closed_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="ledgerentry",
            name="charged_hours",
            field=models.DecimalField(decimal_places=2, default=0, editable=False, max_digits=12),
        ),
        migrations.RunPython(charged_equals_hours, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="ledgerentry",
            name="reason_code",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "posted by hand"),
                    ("lot_expired", "unused hours of an expired lot"),
                    ("penalty_reversal", "penalty of a waived breach reversed"),
                    ("system", "posted by the system"),
                    ("included_hours", "hours included in a billing period"),
                    ("rollover", "unused included hours rolled over"),
                    ("prepay", "recurring prepaid hours"),
                    ("top_up", "automatic top-up"),
                    ("overage_billed", "overage billed at the period's close"),
                ],
                default="",
                max_length=24,
            ),
        ),
        migrations.AddField(
            model_name="idempotencykey",
            name="resource",
            field=models.CharField(default="ledger_entries", max_length=40),
        ),
        migrations.AddField(
            model_name="idempotencykey",
            name="object_id",
            field=models.PositiveBigIntegerField(default=0),
            preserve_default=False,
        ),
        migrations.RunPython(keys_point_at_entries, migrations.RunPython.noop),
        migrations.RemoveField(model_name="idempotencykey", name="entry"),
    ]
