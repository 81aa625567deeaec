"""python manage.py health --topic NAME_OR_ID | --file FILE [--file FILE ...] [--json]"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from datasets.formats.readers import READERS
from datasets.health.render import report_lines
from datasets.health.services import file_health_report, topic_health_report
from datasets.models import LANGUAGE_CHOICES
from datasets.selectors import topic_by_name_or_id
from datasets.services import DatasetError


class Command(BaseCommand):
    help = ("The dataset health report of a topic, or of files that are not imported (nothing written): balance, "
            "duplicates, label conflicts, paraphrases, diversity, coverage, leakage, and what to fix first.")

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--topic", help="The topic's name or id.")
        source.add_argument("--file", type=Path, action="append",
                            help="A JSONL, CSV or Alpaca file; repeat for an export's split files (train.jsonl, "
                                 "test.jsonl): their names are the rows' splits for the leakage check.")
        parser.add_argument("--format", choices=list(READERS), default="", help="Default: from the extension.")
        parser.add_argument("--languages", default="en",
                            help="Languages requested, comma-separated (files only; a topic knows its own).")
        parser.add_argument("--text-column", default="")
        parser.add_argument("--intent-column", default="")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args, topic, file, json: bool, **options):
        try:
            if topic:
                target = topic_by_name_or_id(topic)
                if target is None:
                    raise CommandError(f"No topic named {topic!r} (or with that id).")
                report = topic_health_report(topic=target)
            else:
                languages = [code.strip() for code in options["languages"].split(",") if code.strip()]
                known = {code for code, _ in LANGUAGE_CHOICES}
                if unknown := [code for code in languages if code not in known]:
                    raise CommandError(f"Unknown language {unknown[0]!r}: use {', '.join(sorted(known))}.")
                streams = []
                try:
                    for path in file:
                        try:
                            streams.append((path.name, path.open("rb")))
                        except OSError as exc:
                            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from exc
                    report = file_health_report(files=streams, format=options["format"], languages=languages,
                                                text_column=options["text_column"],
                                                intent_column=options["intent_column"])
                finally:
                    for _, stream in streams:
                        stream.close()
        except DatasetError as exc:
            raise CommandError(exc.message) from exc
        if json:
            self.stdout.write(_json_dumps(report))
        else:
            self.stdout.write("\n".join(report_lines(report)))


def _json_dumps(report: dict) -> str:
    return json.dumps(report, ensure_ascii=False, indent=1, default=str)
