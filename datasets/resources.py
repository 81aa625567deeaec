"""django-import-export resources and the JSONL file format for the Question admin."""

import json

import tablib
from import_export import fields, resources
from import_export.formats.base_formats import CSV, JSON, TextFormat

from datasets.models import IntentNode, Question, Topic


class JSONL(TextFormat):
    """One JSON object per line (the seed tool's dataset format)."""

    CONTENT_TYPE = "application/jsonl"

    def get_title(self):
        return "jsonl"

    def get_format(self):
        return self

    @classmethod
    def is_available(cls):
        return True

    def get_extension(self):
        return "jsonl"

    def can_import(self):
        return True

    def can_export(self):
        return True

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


QUESTION_FORMATS = [CSV, JSON, JSONL]


class IntentField(fields.Field):
    """Reads an intent by `intent_number` (e.g. "2.1") or `intent_path` within the row's topic."""

    def clean(self, row, **kwargs):
        topic = Topic.objects.filter(name=row.get("topic")).first()
        if topic is None:
            raise ValueError(f"unknown topic {row.get('topic')!r}")
        number = str(row.get("intent_number") or "").strip()
        if number:
            node = IntentNode.objects.filter(topic=topic, number=number).first()
            if node:
                return node
            raise ValueError(f"unknown intent number {number!r} in topic {topic.name!r}")
        path = str(row.get("intent_path") or "").strip()
        for node in IntentNode.objects.filter(topic=topic, name__iexact=path.split(" -> ")[-1].strip()):
            if node.intent_path == path:
                return node
        raise ValueError(f"unknown intent {path!r} in topic {topic.name!r}: give intent_number or intent_path")


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

    def before_import_row(self, row, **kwargs):
        topic = Topic.objects.filter(name=row.get("topic")).first()
        if topic is None:
            raise ValueError(f"unknown topic {row.get('topic')!r}")
        row["topic"] = topic
        if not row.get("source"):
            row["source"] = Question.Source.IMPORTED
        if not row.get("status"):
            row["status"] = Question.Status.PENDING

    def import_field(self, field, instance, row, is_m2m=False, **kwargs):
        if field.column_name == "topic":
            instance.topic = row["topic"]
            return
        if isinstance(field, IntentField):
            instance.intent = field.clean({**row, "topic": row["topic"].name})
            return
        super().import_field(field, instance, row, is_m2m, **kwargs)

    def dehydrate_topic(self, question):
        return question.topic.name

    def dehydrate_intent(self, question):
        return question.intent.number

    def dehydrate_intent_path(self, question):
        return question.intent.intent_path
