"""The near-duplicate key in the paraphrase index: QuestionBand.near_key, held in the key index, so a
lookup groups its candidates by near-duplicate group without reading their question rows.

Existing band rows get their question's near key in batches of BATCH questions by primary key, each
batch its own transaction (a table of 8,000,000 band rows is never rewritten in one statement);
the index with the new column is built once, after the backfill."""

from django.db import migrations, models

BATCH = 20000


def near_keys_backfill(apps, schema_editor):
    Question = apps.get_model("datasets", "Question")
    band = apps.get_model("datasets", "QuestionBand")._meta.db_table
    question = Question._meta.db_table
    connection = schema_editor.connection
    last = 0
    while True:
        ids = list(Question.objects.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:BATCH])
        if not ids:
            return
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(
                    f"UPDATE {band} AS b SET near_key = q.near_key FROM {question} AS q WHERE q.id = b.question_id "
                    f"AND q.id BETWEEN %s AND %s AND b.near_key IS DISTINCT FROM q.near_key", [ids[0], ids[-1]])
            else:  # SQLite (the demo): UPDATE ... FROM and IS DISTINCT FROM need 3.33 / 3.39
                cursor.execute(
                    f"UPDATE {band} SET near_key = (SELECT q.near_key FROM {question} q WHERE q.id = {band}.question_id) "
                    f"WHERE question_id BETWEEN %s AND %s", [ids[0], ids[-1]])
        last = ids[-1]


class Migration(migrations.Migration):
    atomic = False  # each batch of the backfill commits on its own

    dependencies = [("datasets", "0019_question_transformation_db_default")]

    operations = [
        migrations.AddField(
            model_name="questionband",
            name="near_key",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(near_keys_backfill, migrations.RunPython.noop, elidable=True),
        migrations.RemoveIndex(model_name="questionband", name="questionband_key_idx"),
        migrations.AddIndex(
            model_name="questionband",
            index=models.Index(fields=["key"], include=("question", "near_key"), name="questionband_key_near_idx"),
        ),
    ]
