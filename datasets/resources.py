"""django-import-export resources and file formats for the Question admin.

Export: one admin format per writer in datasets.formats (the admin's export runs our streaming
writers over the filtered changelist, see QuestionAdmin.get_export_data). Import: JSONL, CSV and
Alpaca into QuestionResource, whose dry run lists every row's errors before anything is saved.
"""

import io
import json

import tablib
from import_export import fields, resources
from import_export.formats.base_formats import CSV, TextFormat

from datasets.formats import WRITERS
from datasets.formats.readers import AlpacaReader, ImportProblem, intent_names_from_fields
from datasets.models import Question, Topic


class ProjectFormat(TextFormat):
    """A text format of this project, not a tablib one: subclasses say their title, extension
    and which ways they go."""

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
        if isinstance(in_stream, bytes):
            in_stream = in_stream.decode(self.encoding or "utf-8")
        records = []
        for number, line in enumerate(in_stream.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"line {number}: invalid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"line {number}: expected a JSON object")
            records.append(record)
        headers = list(dict.fromkeys(key for record in records for key in record))
        dataset = tablib.Dataset(headers=headers)
        for record in records:
            dataset.append([record.get(h, "") for h in headers])
        return dataset

    def export_data(self, dataset, **kwargs):
        return "".join(json.dumps(dict(zip(dataset.headers, row, strict=True)), ensure_ascii=False) + "\n" for row in dataset)


class Alpaca(ProjectFormat):
    """Alpaca records (`input` = the question, `output` = the intent) as `text` and `intent` columns.
    Alpaca rows name no topic: choose it on the import form."""

    CONTENT_TYPE = "application/json"
    title = "alpaca"
    extension = "json"

    def create_dataset(self, in_stream, **kwargs):
        raw = in_stream.encode("utf-8") if isinstance(in_stream, str) else in_stream
        dataset = tablib.Dataset(headers=["text", "intent"])
        for item in AlpacaReader(topic_name="").read(io.BytesIO(raw)):
            if isinstance(item, ImportProblem):
                raise ValueError(f"line {item.line}: {item.message}" if item.line else item.message)
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
    topic = fields.Field(attribute="topic", column_name="topic")
    intent = IntentField(attribute="intent", column_name="intent_number")
    intent_path = fields.Field(column_name="intent_path", readonly=True)

    class Meta:
        model = Question
        fields = ("id", "text", "topic", "intent", "intent_path", "language", "source", "status")
        export_order = fields
        import_id_fields = ("id",)
        skip_unchanged = True
        clean_model_instances = True
        use_transactions = True

    def __init__(self, default_topic: Topic | None = None, **kwargs):
        super().__init__(**kwargs)
        self.default_topic = default_topic

    def _row_topic(self, row) -> Topic:
        """The row's `topic` column, else the topic chosen on the import form, else the first
        element of the seed schema's intent_hierarchy (or intent_path)."""
        if row.get("topic"):
            topic = Topic.objects.filter(name=row["topic"]).first()
            if topic is None:
                raise ValueError(f"unknown topic {row['topic']!r}")
            return topic
        if self.default_topic is not None:
            return self.default_topic
        hierarchy = _json_cells(row).get("intent_hierarchy")
        first = hierarchy[0] if isinstance(hierarchy, list) and hierarchy else str(row.get("intent_path") or "")
        topic = Topic.objects.filter(name=first.split("->")[0].strip()).first()
        if topic is None:
            raise ValueError("the row names no topic: add a 'topic' column or choose the topic on the import form")
        return topic

    def before_import(self, dataset, **kwargs):
        # Files of new questions (the seed schema, Alpaca) carry no id: every row is a new question.
        if "id" not in dataset.headers:
            dataset.insert_col(0, [None] * dataset.height, header="id")

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
