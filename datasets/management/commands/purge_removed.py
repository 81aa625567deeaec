"""Really delete the questions removed more than N days ago, with their review events: for those
who must. Says what it deletes (and, with --dry-run, what it would)."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from datasets.lifecycle import questions_purge
from datasets.models import Topic
from datasets.services import DatasetError


class Command(BaseCommand):
    help = "Delete for good the questions removed more than --older-than-days ago, with their review history."

    def add_arguments(self, parser):
        parser.add_argument("--older-than-days", type=int, required=True,
                            help="Only questions removed at least this many days ago.")
        parser.add_argument("--topic", help="One topic (name or id); default: every topic.")
        parser.add_argument("--dry-run", action="store_true", help="Say what would be deleted; delete nothing.")

    def handle(self, *args, older_than_days, topic, dry_run, **options):
        target = None
        if topic:
            target = Topic.objects.filter(name=topic).first() or (
                Topic.objects.filter(pk=int(topic)).first() if topic.isascii() and topic.isdigit() else None)
            if target is None:
                raise CommandError(f"No topic named or numbered {topic!r}.")
        try:
            deletion = questions_purge(older_than=timedelta(days=older_than_days), topic=target, dry_run=dry_run)
        except DatasetError as exc:
            raise CommandError(exc.message) from exc
        where = target.name if target else "every topic"
        if dry_run:
            self.stdout.write(f"Would delete from {where}: {deletion.planned['questions']} removed question(s) and "
                              f"{deletion.planned['review_events']} review event(s). Nothing deleted.")
            return
        deleted = deletion.deleted
        self.stdout.write(f"Deleted from {where}: {deleted.get('questions', 0)} removed question(s), "
                          f"{deleted.get('review_events', 0)} review event(s), {deleted.get('label_issues', 0)} "
                          f"label issue(s), {deleted.get('paraphrase_bands', 0)} paraphrase index row(s) "
                          f"(recorded as deletion #{deletion.pk}).")
