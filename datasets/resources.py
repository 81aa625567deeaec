"""django-import-export resources and file formats for the Question admin.

Export: one admin format per writer in datasets.formats (the admin's export streams our writers
over the filtered changelist, see QuestionAdmin.get_export_data). Import: JSONL, CSV and Alpaca
into QuestionResource, whose dry run lists every row's errors before anything is saved.

Uploads are read as bytes and checked first by the project's own readers (datasets.formats.readers):
lines are length-capped and every bad line is reported with its number, so a user fixes a file in
one go instead of one error per upload. Imports only ever create questions: an `id` column is
ignored, because changing an existing question belongs to the review service, which audits it.
"""

import io
import json

import tablib
from import_export import fields, resources
from import_export.formats.base_formats import TextFormat

from datasets.formats import WRITERS
from datasets.formats.readers import (
    AlpacaReader,
    CsvReader,
    FormatReader,
    ImportProblem,
    JsonlReader,
    intent_names_from_fields,
)
from datasets.models import Question, Topic

# Beyond this many bad lines the preview says how many more there are instead of listing them.
MAX_LISTED_PROBLEMS = 100


class ImportFileProblems(ValueError):
    """An upload the readers refused: every problem found, each naming its line."""

    def __init__(self, problems: list[ImportProblem], unlisted: int = 0):
        self.messages = [f"line {p.line}: {p.message}" if p.line else p.message for p in problems]
        if unlisted:
            self.messages.append(f"... and {unlisted:,} more problem(s) not listed.")
        super().__init__("; ".join(self.messages))


def _raw(in_stream) -> bytes:
    return in_stream.encode("utf-8") if isinstance(in_stream, str) else bytes(in_stream)


def _check(reader: FormatReader, raw: bytes) -> None:
    """Read the whole upload with `reader` and raise ImportFileProblems listing every bad line."""
    problems: list[ImportProblem] = []
    unlisted = 0
    for item in reader.read(io.BytesIO(raw)):
        if isinstance(item, ImportProblem):
            if len(problems) < MAX_LISTED_PROBLEMS:
                problems.append(item)
            else:
                unlisted += 1
    if problems:
        raise ImportFileProblems(problems, unlisted)


class ProjectFormat(TextFormat):
    """A text format of this project, not a tablib one: subclasses say their title, extension
    and which ways they go. Uploads reach create_dataset as bytes (is_binary), so the readers can
    report a bad encoding with its line number instead of failing the whole decode."""

    title = ""
    extension = ""
    importable = True
    exportable = False

    def get_title(self):
        return self.title

    def get_format(self):
        return self

    @classmethod
    def is_available(cls):
        return True

    def is_binary(self):
        return True

    def get_read_mode(self):
        return "rb"

    def get_extension(self):
        return self.extension

    def can_import(self):
        return self.importable

    def can_export(self):
        return self.exportable


class JSONL(ProjectFormat):
    """One JSON object per line (the seed tool's dataset format)."""

    CONTENT_TYPE = "application/jsonl"
    title = extension = "jsonl"
    exportable = True

    def create_dataset(self, in_stream, **kwargs):
        raw = _raw(in_stream)
        _check(JsonlReader(topic_name=""), raw)
        records = [record for _, record in JsonlReader.read_objects(io.BytesIO(raw))]
        headers = list(dict.fromkeys(key for record in records for key in record))
        dataset = tablib.Dataset(headers=headers)
        for record in records:
            dataset.append([record.get(h, "") for h in headers])
        return dataset

    def export_data(self, dataset, **kwargs):
        return "".join(json.dumps(dict(zip(dataset.headers, row, strict=True)), ensure_ascii=False) + "\n" for row in dataset)


class CSV(ProjectFormat):
    """A header row with `text` (or `question`) and an intent column, as datasets.imports reads it."""

    CONTENT_TYPE = "text/csv"
    title = extension = "csv"

    def create_dataset(self, in_stream, **kwargs):
        raw = _raw(in_stream)
        _check(CsvReader(topic_name=""), raw)
        dataset = tablib.Dataset()
        dataset.load(raw.decode("utf-8-sig"), format="csv")
        dataset.headers = [h.strip().lower() for h in dataset.headers or []]
        return dataset


class Alpaca(ProjectFormat):
    """Alpaca records (`input` = the question, `output` = the intent) as `text` and `intent` columns.
    Alpaca rows name no topic: choose it on the import form."""

    CONTENT_TYPE = "application/json"
    title = "alpaca"
    extension = "json"

    def create_dataset(self, in_stream, **kwargs):
        raw = _raw(in_stream)
        _check(AlpacaReader(topic_name=""), raw)
        dataset = tablib.Dataset(headers=["text", "intent"])
        for item in AlpacaReader(topic_name="").read(io.BytesIO(raw)):
            dataset.append([item.text, item.intent_names[0]])
        return dataset


class WriterFormat(ProjectFormat):
    """An export format of datasets.formats offered in the admin. The admin hands it the queryset
    (QuestionAdmin.get_export_data), so it never goes through a tablib Dataset."""

    writer_class = None
    importable = False
    exportable = True

    def get_content_type(self):
        return self.writer_class.content_type

    def export_data(self, dataset, **kwargs):
        raise NotImplementedError("Writer formats export querysets: see QuestionAdmin.get_export_data.")


QUESTION_EXPORT_FORMATS = [
    type(f"{writer.__name__}Format", (WriterFormat,),
         {"writer_class": writer, "title": writer.name, "extension": writer.extension})
    for writer in WRITERS.values() if writer.single_file
]
QUESTION_IMPORT_FORMATS = [JSONL, CSV, Alpaca]


class IntentField(fields.Field):
    """Finds the row's intent in its topic by path, numbered path, number or name, as imports do."""

    def clean(self, row, **kwargs):
        from datasets.imports import IntentIndex

        topic = row["topic"]
        names, _ = intent_names_from_fields(_json_cells(row), topic.name)
        indexes = self.__dict__.setdefault("_indexes", {})  # one lookup table per topic and import
        if topic.pk not in indexes:
            indexes[topic.pk] = IntentIndex(topic)
        found = indexes[topic.pk].find(names)
        if found is None:
            raise ValueError(f"unknown intent {names[0] if names else '(none given)'!r} in topic {topic.name!r}: "
                             "give intent_path, intent_number or intent")
        return found


def _json_cells(row) -> dict:
    """Row cells as imports read them: a CSV cell holding a JSON list (intent_hierarchy) becomes a list."""
    cells = dict(row)
    hierarchy = cells.get("intent_hierarchy")
    if isinstance(hierarchy, str) and hierarchy.startswith("["):
        try:
            cells["intent_hierarchy"] = json.loads(hierarchy)
        except ValueError:
            pass
    return cells


class QuestionResource(resources.ModelResource):
    # Read-only: an import never loads or overwrites a question by id (see the module docstring).
    id = fields.Field(attribute="id", column_name="id", readonly=True)
    topic = fields.Field(attribute="topic", column_name="topic")
    intent = IntentField(attribute="intent", column_name="intent_number")
    intent_path = fields.Field(column_name="intent_path", readonly=True)

    class Meta:
        model = Question
        fields = ("id", "text", "topic", "intent", "intent_path", "language", "source", "status")
        export_order = fields
        # Every row is a new question: no instance is ever looked up to be updated.
        force_init_instance = True
        clean_model_instances = True
        use_transactions = True

    def __init__(self, default_topic: Topic | None = None, topics=None, **kwargs):
        """`topics`: the topics rows may go to (those the importing user may manage); none when not given."""
        super().__init__(**kwargs)
        self.default_topic = default_topic
        self.topics = topics if topics is not None else Topic.objects.none()

    def _row_topic(self, row) -> Topic:
        """The row's `topic` column, else the topic chosen on the import form, else the first
        element of the seed schema's intent_hierarchy (or intent_path); only among self.topics."""
        if row.get("topic"):
            topic = self.topics.filter(name=row["topic"]).first()
            if topic is None:
                raise ValueError(f"unknown topic {row['topic']!r}")
            return topic
        if self.default_topic is not None:
            if not self.topics.filter(pk=self.default_topic.pk).exists():
                raise ValueError(f"you may not import into topic {self.default_topic.name!r}")
            return self.default_topic
        hierarchy = _json_cells(row).get("intent_hierarchy")
        first = hierarchy[0] if isinstance(hierarchy, list) and hierarchy else str(row.get("intent_path") or "")
        topic = self.topics.filter(name=first.split("->")[0].strip()).first()
        if topic is None:
            raise ValueError("the row names no topic: add a 'topic' column or choose the topic on the import form")
        return topic

    def before_import_row(self, row, **kwargs):
        if not row.get("text") and row.get("question"):
            row["text"] = row["question"]
        row["topic"] = self._row_topic(row)
        if not row.get("source"):
            row["source"] = Question.Source.IMPORTED
        if not row.get("status"):
            row["status"] = Question.Status.PENDING

    def import_field(self, field, instance, row, is_m2m=False, **kwargs):
        if field.column_name == "topic":
            instance.topic = row["topic"]
            return
        if isinstance(field, IntentField):
            instance.intent_id = field.clean(row)
            return
        super().import_field(field, instance, row, is_m2m, **kwargs)

    def dehydrate_topic(self, question):
        return question.topic.name

    def dehydrate_intent(self, question):
        return question.intent.number

    def dehydrate_intent_path(self, question):
        return question.intent.intent_path
