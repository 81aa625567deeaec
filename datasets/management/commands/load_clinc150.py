from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from datasets.clinc150 import DEFAULT_PATH, clinc150_import
from datasets.models import Topic
from datasets.services import DatasetError


class Command(BaseCommand):
    help = ("Import CLINC150 as a demo topic: domain -> intent taxonomy and an out-of-scope intent, questions "
            "imported and approved with CLINC150's official splits.")

    def add_arguments(self, parser):
        parser.add_argument("--path", type=Path, default=DEFAULT_PATH, help="Folder with domains.json and data_full.json")
        parser.add_argument("--topic", default="CLINC150", help="Name of the topic to create")
        parser.add_argument("--if-missing", action="store_true", help="Do nothing when the topic already exists")

    def handle(self, *args, path, topic, if_missing, **options):
        if if_missing and Topic.objects.filter(name=topic).exists():
            self.stdout.write(f"Topic {topic!r} already loaded.")
            return
        try:
            result = clinc150_import(path=path, topic_name=topic)
        except DatasetError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(
            f"Loaded {result.topic.name!r}: {result.domains} domains, {result.intents} intents and an out-of-scope "
            f"intent, {result.questions} questions ({result.duplicates} repeated texts skipped, the first kept)."
        ))
        self.stdout.write("Per CLINC150 list, created (repeats skipped): " + ", ".join(
            f"{name} {n} ({result.duplicates_by_split[name]})" for name, n in result.created_by_split.items()) + ".")
