from django.db import migrations, models

NAME_LENGTH = 160  # Calendar.name's max_length


def rename_duplicates(apps, schema_editor):
    """Before the constraint: in each organization, the oldest calendar of a name keeps it, each
    later one becomes "Name (2)", "Name (3)", ... (a number no calendar of the organization uses)."""
    Calendar = apps.get_model("slas", "Calendar")
    clashes = (
        Calendar.objects.values("organization_id", "name")
        .annotate(count=models.Count("id"))
        .filter(count__gt=1)
        .values_list("organization_id", "name")
    )
    for organization_id, name in list(clashes):
        taken = set(Calendar.objects.filter(organization_id=organization_id).values_list("name", flat=True))
        later = Calendar.objects.filter(organization_id=organization_id, name=name).order_by("id")[1:]
        number = 1
        for calendar in later:
            while True:
                number += 1
                suffix = f" ({number})"
                candidate = name[: NAME_LENGTH - len(suffix)] + suffix
                if candidate not in taken:
                    break
            taken.add(candidate)
            Calendar.objects.filter(pk=calendar.pk).update(name=candidate)


class Migration(migrations.Migration):
    dependencies = [
        ("slas", "0006_slarule_first_version"),
        ("tenancy", "0003_membership_username"),
    ]

    operations = [
        migrations.RunPython(rename_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="calendar",
            constraint=models.UniqueConstraint(fields=("organization", "name"), name="calendar_unique_name"),
        ),
    ]
