"""python manage.py import FILE --topic NAME_OR_ID: the import service from the command line."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from datasets.formats.readers import READERS
from datasets.imports import ON_CONFLICT_CHOICES, import_report_lines, questions_import
from datasets.models import Question
from datasets.selectors import topic_by_name_or_id
from datasets.services import DatasetError
from datasets.splits import SPLIT_ALIASES

FORMAT_BY_EXTENSION = {".jsonl": "jsonl", ".csv": "csv", ".json": "alpaca"}


class Command(BaseCommand):
    help = ("Import labeled questions (JSONL, CSV or Alpaca) into a topic: all rows or none, duplicates and label "
            "conflicts reported, every problem by line. Exits 1 on any problem, with nothing written.")

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--topic", required=True, help="The topic's name or id.")
        parser.add_argument("--format", choices=list(READERS),
                            help="Default: from the extension (.jsonl, .csv, .json = alpaca).")
        parser.add_argument("--create-intents", action="store_true",
                            help="Create intents missing from the taxonomy from the rows' paths or names.")
        parser.add_argument("--split", choices=list(SPLIT_ALIASES), default="",
                            help="One split for every row; overrides the rows' own split.")
        parser.add_argument("--text-column", default="", help="The column (or JSON field) holding the question.")
        parser.add_argument("--intent-column", default="", help="The column (or JSON field) naming the intent.")
        parser.add_argument("--status", choices=Question.Status.values, default=Question.Status.PENDING,
                            help="For rows without a status of their own.")
        parser.add_argument("--on-conflict", choices=list(ON_CONFLICT_CHOICES), default="keep_first",
                            help="The same text under two intents: " + "; ".join(
                                f"{k}: {v}" for k, v in ON_CONFLICT_CHOICES.items()))
        parser.add_argument("--dry-run", action="store_true", help="Report what the import would do; write nothing.")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args, file: Path, topic: str, format: str | None, json: bool, **options):
        target = topic_by_name_or_id(topic)
        if target is None:
            raise CommandError(f"No topic named {topic!r} (or with that id).")
        format = format or FORMAT_BY_EXTENSION.get(file.suffix.lower())
        if format is None:
            raise CommandError(f"Cannot tell the format of {file.name!r} from its extension: give --format "
                               f"({', '.join(READERS)}).")
        try:
            stream = file.open("rb")
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from exc
        with stream:
            try:
                report = questions_import(
                    topic=target, stream=stream, format=format, create_intents=options["create_intents"],
                    status=options["status"], split=options["split"], text_column=options["text_column"],
                    intent_column=options["intent_column"], on_conflict=options["on_conflict"],
                    dry_run=options["dry_run"], actor=None)
            except DatasetError as exc:
                if json:
                    self.stdout.write(_json({"error": {"code": exc.code, "message": exc.message,
                                                       "details": exc.details}}))
                else:
                    for problem in (exc.details or {}).get("errors", []):
                        where = f"line {problem['line']}: " if problem["line"] else ""
                        self.stderr.write(f"{where}{problem['message']}")
                raise CommandError(exc.message) from exc
        if json:
            self.stdout.write(_json(report.as_dict()))
        else:
            for line in import_report_lines(report):
                self.stdout.write(line)
        if report.error_count:
            raise CommandError(f"{report.error_count:,} problem(s) in {file.name}: nothing would be imported.")


def _json(data) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2)
