"""Question.near_key: the near-duplicate key the split keeps together, stored so an export reads it
instead of computing it for every row (and needs to remember only groups that span intents)."""

from django.db import migrations, models

from datasets.normalize import near_duplicate_key

BATCH = 5000


def backfill(apps, schema_editor):
    Question = apps.get_model("datasets", "Question")
    last = 0
    while True:
        batch = list(Question.objects.filter(pk__gt=last, near_key__isnull=True).order_by("pk").only("pk", "text")[:BATCH])
        if not batch:
            return
        for question in batch:
            question.near_key = near_duplicate_key(question.text)
        Question.objects.bulk_update(batch, ["near_key"], batch_size=BATCH)
        last = batch[-1].pk


class Migration(migrations.Migration):
    dependencies = [("datasets", "0003_labeling_pg_trgm")]

    operations = [
        migrations.AddField(
            model_name="question",
            name="near_key",
            field=models.BigIntegerField(
                editable=False, null=True,
                help_text="Near-duplicate key (bag of words without numbers and filler): what the split keeps together."),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="question",
            index=models.Index(fields=["topic", "near_key"], include=["intent", "status"], name="question_near_key_idx"),
        ),
        migrations.AddIndex(
            model_name="question",
            index=models.Index(condition=models.Q(near_key__isnull=True), fields=["topic"],
                               name="question_near_key_missing_idx"),
        ),
    ]
