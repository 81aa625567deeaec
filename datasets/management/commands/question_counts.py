"""Check, repair or compact the kept question counts (datasets/question_counts.py)."""

from django.core.management.base import BaseCommand, CommandError

from datasets.models import QuestionCount
from datasets.question_counts import (
    question_count_triggers_missing,
    question_counts_compact,
    question_counts_differences,
    question_counts_rebuild,
)


class Command(BaseCommand):
    help = ("Compare the kept question counts with a count of the question table (--check, the default), "
            "count again and keep that (--rebuild), or fold every topic's count rows (--compact).")

    def add_arguments(self, parser):
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--check", action="store_true", help="Say where the kept counts differ (reads every question).")
        action.add_argument("--rebuild", action="store_true",
                            help="Count every question again; writers wait meanwhile (PostgreSQL).")
        action.add_argument("--compact", action="store_true", help="Fold the count rows into one per key.")

    def handle(self, *args, check, rebuild, compact, **options):
        missing = question_count_triggers_missing()
        if missing:
            self.stderr.write(f"The question table lacks the count triggers {', '.join(missing)}: run migrate "
                              "(it puts them back and counts again).")
        if rebuild:
            question_counts_rebuild()
            self.stdout.write(f"Counted again: {QuestionCount.objects.count()} count row(s).")
            return
        if compact:
            before = QuestionCount.objects.count()
            topic_ids = list(QuestionCount.objects.values_list("topic_id", flat=True).distinct())
            if not question_counts_compact(topic_ids=topic_ids):
                raise CommandError("Another compaction is running; try again in a moment.")
            self.stdout.write(f"Compacted: {before} count row(s) folded into {QuestionCount.objects.count()}.")
            return
        differences = question_counts_differences()
        for (topic_id, intent_id, status, removed), (kept, counted) in differences.items():
            self.stdout.write(f"topic {topic_id}, intent {intent_id}, {status}{' (removed)' if removed else ''}: "
                              f"kept {kept}, counted {counted}")
        if differences or missing:
            raise CommandError(f"{len(differences)} count(s) differ: run question_counts --rebuild.")
        self.stdout.write("The kept question counts are exact.")
