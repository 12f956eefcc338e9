"""Migration operations the apps share.

`drop_foreign_key_index`: a foreign key's own index dropped (`db_index=False`) where another index
already leads with its column. Django's `AlterField` would, on PostgreSQL, also drop the foreign
key constraint and add it back (validating it over the whole table under a lock); this only drops
the index (as `AlterField` finds it) and creates it back when reversed, the constraint untouched.
"""

from __future__ import annotations

from django.db import migrations
from django.db.models import Index


def drop_foreign_key_index(app_label: str, model_name: str, name: str, field) -> migrations.SeparateDatabaseAndState:
    """The state as `AlterField(model_name, name, field)`, `field` the foreign key with
    `db_index=False`; in the database only its single-column index dropped."""

    def model_and_column(apps):
        model = apps.get_model(app_label, model_name)
        return model, model._meta.get_field(name)

    def forwards(apps, schema_editor):
        model, old_field = model_and_column(apps)
        meta_indexes = {index.name for index in model._meta.indexes}
        for index_name in schema_editor._constraint_names(
            model, [old_field.column], index=True, type_=Index.suffix, exclude=meta_indexes
        ):
            schema_editor.execute(schema_editor._delete_index_sql(model, index_name))

    def backwards(apps, schema_editor):
        model, old_field = model_and_column(apps)
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[old_field]))

    return migrations.SeparateDatabaseAndState(
        state_operations=[migrations.AlterField(model_name=model_name, name=name, field=field)],
        database_operations=[migrations.RunPython(forwards, backwards)],
    )
