import django.db.models.deletion
from django.db import migrations, models


def fill_first_versions(apps, schema_editor):
    """Each amended rule's first version, by walking its predecessors (versions are few)."""
    SlaRule = apps.get_model("slas", "SlaRule")
    previous = dict(SlaRule.objects.filter(previous_version__isnull=False).values_list("pk", "previous_version_id"))
    for pk, before in previous.items():
        while before in previous:
            before = previous[before]
        SlaRule.objects.filter(pk=pk).update(first_version_id=before)


class Migration(migrations.Migration):
    dependencies = [
        ("slas", "0005_calendar_org_name_id"),
    ]

    operations = [
        migrations.AddField(
            model_name="slarule",
            name="first_version",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="slas.slarule",
            ),
        ),
        migrations.RunPython(fill_first_versions, migrations.RunPython.noop),
    ]
