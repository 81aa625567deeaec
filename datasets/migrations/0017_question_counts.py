"""Kept question counts (issue 18): the QuestionCount table of per-(topic, intent, status, removed)
deltas, the triggers on the question table that write it (PostgreSQL: statement-level with
transition tables; SQLite: row-level; datasets/question_counts.py holds the SQL), and the initial
count of the questions already there. The triggers are created before the count, and on
PostgreSQL creating them locks out writers until this migration commits, so no question is
missed or counted twice."""

from django.db import migrations, models


def triggers_install_and_count(apps, schema_editor):
    from datasets.question_counts import question_count_triggers_install, question_counts_rebuild

    question_count_triggers_install(schema_editor.connection)
    question_counts_rebuild(using_connection=schema_editor.connection)


def triggers_drop(apps, schema_editor):
    from datasets.question_counts import question_count_triggers_drop

    question_count_triggers_drop(schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [
        ('datasets', '0016_admin_list_indexes'),
    ]

    operations = [
        migrations.CreateModel(
            name='QuestionCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('topic_id', models.BigIntegerField()),
                ('intent_id', models.BigIntegerField()),
                ('status', models.CharField(max_length=16)),
                ('removed', models.BooleanField()),
                ('n', models.BigIntegerField(help_text='Questions added (or, negative, taken away) from this key.')),
            ],
            options={
                'indexes': [models.Index(fields=['topic_id'], name='questioncount_topic_idx'), models.Index(fields=['intent_id'], name='questioncount_intent_idx')],
            },
        ),
        migrations.RunPython(triggers_install_and_count, triggers_drop),
    ]
