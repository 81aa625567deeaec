"""Export a topic's questions to files, with the same writers and split as the API's exports.

    manage.py export --topic CLINC150 --format jsonl --output clinc.jsonl --no-split
    manage.py export --topic CLINC150 --format huggingface --output clinc_hf/ --split assigned
    manage.py export --topic 12 --format alpaca --output data.zip --split 0.8,0.1,0.1 --statuses approved

The export is recorded like any other (Admin → Exports, GET /api/v1/exports/{id}/). An exports
worker writes it when one is alive; otherwise this process does. The result is copied to
--output: the data file when --output names a file (a name with an extension) and the export
has one part, else a folder of every file, or a zip when --output ends in `.zip`.
"""

import shutil
import time
from contextlib import closing
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from datasets.exports import (
    export_archive_stream,
    export_create,
    export_file_open,
    export_files,
    export_questions_of,
    progress_listeners,
)
from datasets.formats import WRITERS
from datasets.jobs import export_run
from datasets.models import Export
from datasets.selectors import topic_by_name_or_id
from datasets.services import DatasetError

ENDED = (Export.Status.SUCCEEDED, Export.Status.FAILED)


def split_option(raw: str | None, no_split: bool):
    """--split 0.8,0.1,0.1 (train, validation, test), 0.8,0.2 (train, test), `assigned`, or none."""
    if no_split or raw is None:
        return {}
    if raw.strip() == "assigned":
        return "assigned"
    parts = [p.strip() for p in raw.split(",")]
    names = {1: ["train"], 2: ["train", "test"], 3: ["train", "validation", "test"]}.get(len(parts))
    if names is None:
        raise CommandError(f"--split takes 1 to 3 ratios (train[,validation],test) or 'assigned', got {raw!r}.")
    try:
        ratios = [float(p) for p in parts]
    except ValueError:
        raise CommandError(f"--split ratios must be numbers such as 0.8,0.1,0.1, got {raw!r}.") from None
    return dict(zip(names, ratios, strict=True))


class Command(BaseCommand):
    help = "Export a topic's questions to a file, folder or zip (same formats and split as the API)."

    def add_arguments(self, parser):
        parser.add_argument("--topic", required=True, help="topic name or id")
        parser.add_argument("--format", required=True, choices=list(WRITERS))
        parser.add_argument("--output", required=True, type=Path,
                            help="a file (single-file exports), a folder, or a path ending in .zip")
        split = parser.add_mutually_exclusive_group()
        split.add_argument("--split", help="ratios train[,validation],test such as 0.8,0.1,0.1, or 'assigned' "
                                           "(questions keep their own split, the others are placed 0.8/0.1/0.1)")
        split.add_argument("--no-split", action="store_true", help="one file of every question (the default)")
        parser.add_argument("--statuses", default="", help="comma-separated, default approved,relabeled")
        parser.add_argument("--intent", default="", help="only this intent's subtree (its id)")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--system-prompt", default="")
        parser.add_argument("--instruction", default="")
        parser.add_argument("--include-out-of-scope", action="store_true")
        parser.add_argument("--judge-passed", action="store_true", help="only questions the LLM judge passed")

    def handle(self, *args, **o):
        topic = topic_by_name_or_id(o["topic"])
        if topic is None:
            raise CommandError(f"No topic named {o['topic']!r} (or with that id).")
        output: Path = o["output"]
        if not output.parent.exists():
            raise CommandError(f"The folder {output.parent} does not exist.")
        split = split_option(o["split"], o["no_split"])
        from distiller.selectors import queue_workers_live

        # Redis unreachable (no `make demo` on the embedded defaults) counts as no worker: written here.

        inline = not queue_workers_live("exports")
        try:
            export = export_create(
                topic=topic, format=o["format"], statuses=o["statuses"] or None, intent=o["intent"] or None,
                split=split, seed=o["seed"], system_prompt=o["system_prompt"], instruction=o["instruction"],
                include_out_of_scope=o["include_out_of_scope"], judge_passed=o["judge_passed"],
                enqueue_job=not inline)
        except DatasetError as exc:
            raise CommandError(exc.message) from None
        total = export_questions_of(export).count()
        bar = tqdm(total=total, unit=" rows", file=self.stderr._out, desc=f"Export #{export.pk}")
        if inline:
            progress_listeners[export.pk] = lambda done: bar.update(done - bar.n)
            try:
                export_run(export.pk)
            except Exception:  # a bug: export_run stored it on the export, reported below
                pass
            finally:
                progress_listeners.pop(export.pk, None)
        else:
            while Export.objects.filter(pk=export.pk).exclude(status__in=ENDED).exists():
                time.sleep(0.3)
        export.refresh_from_db()
        if export.status == Export.Status.SUCCEEDED:
            bar.update(sum(export.counts.values()) - bar.n)
        bar.close()
        if export.status != Export.Status.SUCCEEDED:
            raise CommandError(f"Export #{export.pk} failed: {export.error}")
        written = self._copy(export, output)
        counts = ", ".join(f"{name} {n}" for name, n in export.counts.items())
        self.stdout.write(f"Export #{export.pk} ({export.format}) of {topic.name!r}: {counts} -> {written}")
        for warning in export.warnings:
            self.stdout.write(f"  warning: {warning}")

    def _copy(self, export: Export, output: Path) -> Path:
        files = export_files(export)
        if output.suffix.lower() == ".zip":
            with output.open("wb") as zipped:
                for chunk in export_archive_stream(export):
                    zipped.write(chunk)
            return output
        parts = [f"{part}.{WRITERS[export.format].extension}" for part in export.counts]
        if len(parts) == 1 and output.suffix and not output.is_dir():
            # One data file asked for by a file name: that file; extras (dataset_info.json, a card)
            # come with a folder or a zip.
            self._copy_file(export, parts[0], output)
            extras = [f.name for f in files if f.name != parts[0]]
            if extras:
                self.stderr.write(f"Left out {', '.join(extras)}: give a folder or a .zip as --output to get them.")
            return output
        output.mkdir(exist_ok=True)
        for file in files:
            self._copy_file(export, file.name, output / file.name)
        return output

    def _copy_file(self, export: Export, name: str, target: Path) -> None:
        # From the exports storage, which may be an object store on another machine.
        _, source = export_file_open(export, name)
        with closing(source), target.open("wb") as copy:
            shutil.copyfileobj(source, copy, 1024 * 1024)
