"""The paraphrase index (QuestionBand: MinHash LSH band keys per question) and the better
near-duplicate key (contractions, split common words, symbols, numbers and amounts folded).

Existing rows are re-keyed and indexed in batches of BATCH by primary key, so a large table is
never read whole: only the rows whose key changes are updated, and the band rows are written
before the key index is built (one index build instead of millions of index inserts)."""

import django.db.models.deletion
from django.db import migrations, models

from datasets.health.paraphrase import paraphrase_keys_batch
from datasets.normalize import near_duplicate_key

BATCH = 5000


def rekey_and_index(apps, schema_editor):
    Question = apps.get_model("datasets", "Question")
    QuestionBand = apps.get_model("datasets", "QuestionBand")
    last = 0
    while batch := list(Question.objects.filter(pk__gt=last).order_by("pk").values_list("pk", "topic_id", "text",
                                                                                       "near_key")[:BATCH]):
        changed = [Question(pk=pk, near_key=near_duplicate_key(text)) for pk, _, text, old in batch
                   if near_duplicate_key(text) != old]
        Question.objects.bulk_update(changed, ["near_key"], batch_size=1000)
        bands = []
        by_topic: dict[int, list[tuple[int, str]]] = {}
        for pk, topic_id, text, _ in batch:
            by_topic.setdefault(topic_id, []).append((pk, text))
        for topic_id, items in by_topic.items():
            keys = paraphrase_keys_batch([text for _, text in items], topic_id=topic_id)
            bands.extend(QuestionBand(question_id=pk, band=band, key=key)
                         for (pk, _), band_keys in zip(items, keys, strict=True) for band, key in enumerate(band_keys))
        QuestionBand.objects.bulk_create(bands, batch_size=BATCH)
        last = batch[-1][0]


class Migration(migrations.Migration):
    dependencies = [("datasets", "0008_question_judge_and_contrastive")]

    operations = [
        migrations.CreateModel(
            name="QuestionBand",
            fields=[
                ("pk", models.CompositePrimaryKey("question", "band", blank=True, editable=False, primary_key=True,
                                                  serialize=False)),
                ("band", models.PositiveSmallIntegerField()),
                ("key", models.BigIntegerField()),
                ("question", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="bands",
                                               to="datasets.question")),
            ],
        ),
        migrations.RunPython(rekey_and_index, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="questionband",
            index=models.Index(fields=["key"], include=("question",), name="questionband_key_idx"),
        ),
    ]
