"""Trigram search for the review screen's "possible duplicates" (PostgreSQL only).

TrigramExtension does nothing on other databases; the GIN index is created only on PostgreSQL
too, so the SQLite demo migrates cleanly and falls back to token overlap
(labeling.selectors.questions_similar).
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

INDEX = "question_text_trgm_idx"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON datasets_question USING gin (text gin_trgm_ops)"
        )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("datasets", "0002_initial")]
    operations = [
        TrigramExtension(),
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
