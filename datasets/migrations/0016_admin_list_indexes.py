"""Indexes for the admin at a million questions (issue 18).

- (topic, complexity), (topic, audience), (topic, edge_case): the admin's filters by generation
  metadata find their values by a skip scan over these (datasets.admin_lists.topic_column_values)
  instead of a SELECT DISTINCT over the whole table.
- A GIN trigram index on UPPER(text), what Django's icontains compares on PostgreSQL
  (`UPPER(text) LIKE UPPER('%word%')`): the admin's search and the review list's search use it.
  PostgreSQL only (pg_trgm, migration 0003_labeling_pg_trgm), built CONCURRENTLY so a large table
  stays writable meanwhile (hence a non-atomic migration). GIN's pending list (fastupdate) keeps
  the cost of a review write small; 0003's note was about a trigram index for similarity
  lookups, which this one does not serve.
"""

from django.conf import settings
from django.db import migrations, models

TRIGRAM_INDEX = "question_text_upper_trgm_idx"


def trigram_index_create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {TRIGRAM_INDEX} ON datasets_question "
                              "USING gin (UPPER(text) gin_trgm_ops)")


def trigram_index_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {TRIGRAM_INDEX}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("datasets", "0015_export_stored_files"),
        ("distiller", "0006_judge_contrast_out_of_scope"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="question",
            index=models.Index(fields=["topic", "complexity"], name="question_topic_complexity_idx"),
        ),
        migrations.AddIndex(
            model_name="question",
            index=models.Index(fields=["topic", "audience"], name="question_topic_audience_idx"),
        ),
        migrations.AddIndex(
            model_name="question",
            index=models.Index(fields=["topic", "edge_case"], name="question_topic_edge_case_idx"),
        ),
        migrations.RunPython(trigram_index_create, trigram_index_drop),
    ]
