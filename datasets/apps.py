from django.apps import AppConfig
from django.db.models.signals import post_migrate


def question_count_triggers_ensure(sender, using="default", **kwargs):
    """Put the kept-count triggers back, and recount, when the question table lacks them: on SQLite
    Django alters a table by remaking it, which drops its triggers (a later migration of Question
    would silently stop the counts)."""
    from django.db import connections

    from datasets.question_counts import (
        question_count_triggers_install,
        question_count_triggers_missing,
        question_counts_rebuild,
    )

    connection = connections[using]
    if not {"datasets_question", "datasets_questioncount"} <= set(connection.introspection.table_names()):
        return  # migrated backwards past migration 0017
    if question_count_triggers_missing(connection):
        question_count_triggers_install(connection)
        question_counts_rebuild(using_connection=connection)


class DatasetsConfig(AppConfig):
    name = "datasets"
    verbose_name = "Datasets"

    def ready(self):
        post_migrate.connect(question_count_triggers_ensure, sender=self)
