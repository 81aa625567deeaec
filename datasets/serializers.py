"""DRF serializers of the datasets API: they parse and render; the services decide."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from datasets.exports import export_files
from datasets.formats.readers import READERS
from datasets.models import Export, Question, Topic

MAX_BULK_QUESTIONS = 10_000
SEED_RANGE = {"min_value": -(2**31), "max_value": 2**31 - 1}


class TopicSerializer(serializers.ModelSerializer):
    class Meta:
        model = Topic
        fields = ["id", "name", "description", "language", "levels", "tags_per_level", "questions_per_intent",
                  "leaf_only", "target_per_intent", "confidence_threshold", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]


class IntentNodeSerializer(serializers.Serializer):
    """One intent with its subtree; `counts` holds its own questions by status."""

    id = serializers.IntegerField()
    number = serializers.CharField()
    name = serializers.CharField()
    intent_full_name = serializers.CharField()
    intent_path = serializers.CharField()
    depth = serializers.IntegerField()
    is_leaf = serializers.BooleanField()
    counts = serializers.DictField(child=serializers.IntegerField())
    children = serializers.ListField(child=serializers.DictField(), help_text="Intents below, in the same shape.")


class IntentCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    parent = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=2**63 - 1,
                                      help_text="Id of the parent intent; none for a root intent.")
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class QuestionSerializer(serializers.ModelSerializer):
    intent_full_name = serializers.CharField(source="intent.intent_full_name", read_only=True)

    class Meta:
        model = Question
        fields = ["id", "topic", "intent", "intent_full_name", "text", "language", "source", "status", "version",
                  "provider", "model", "prompt_version", "confidence", "created_at", "updated_at"]
        read_only_fields = fields


class QuestionInputSerializer(serializers.Serializer):
    intent = serializers.IntegerField(min_value=1, max_value=2**63 - 1, help_text="Id of an intent of the topic.")
    text = serializers.CharField(max_length=5000)
    status = serializers.ChoiceField(choices=Question.Status.choices, default=Question.Status.PENDING)
    language = serializers.CharField(max_length=8, required=False)


class QuestionCreateSerializer(QuestionInputSerializer):
    topic = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class QuestionBulkSerializer(serializers.Serializer):
    topic = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    questions = QuestionInputSerializer(many=True, allow_empty=False, max_length=MAX_BULK_QUESTIONS)


class BulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField(help_text="Rows skipped as exact duplicates (in the request or the topic).")


@extend_schema_field({"type": "object", "additionalProperties": {"type": "number", "minimum": 0, "exclusiveMinimum": True,
                                                                  "maximum": 1}})
class SplitField(serializers.JSONField):
    """The split as the client sent it. datasets.splits.split_ratios_validate decides what is valid:
    a DictField(FloatField) would turn `true` into 1.0 and "0.8" into 0.8, which the service refuses."""


class ExportCreateSerializer(serializers.Serializer):
    topic = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    format = serializers.ChoiceField(choices=Export.Format.choices)
    statuses = serializers.ListField(child=serializers.ChoiceField(choices=Question.Status.choices), required=False,
                                     help_text="Default: approved and relabeled.")
    intent = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=2**63 - 1,
                                      help_text="Export only this intent's subtree.")
    split = SplitField(required=False, allow_null=True,
                       help_text='Ratios that add up to 1, e.g. {"train": 0.8, "validation": 0.1, "test": 0.1}; '
                                 'none for one file.')
    seed = serializers.IntegerField(required=False, default=42, **SEED_RANGE)
    system_prompt = serializers.CharField(required=False, allow_blank=True, default="", max_length=20000)
    instruction = serializers.CharField(required=False, allow_blank=True, default="", max_length=20000)


class ExportFileSerializer(serializers.Serializer):
    name = serializers.CharField()
    size = serializers.IntegerField()
    url = serializers.CharField()


class ExportSerializer(serializers.ModelSerializer):
    files = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField(help_text="A zip of every file, made as it downloads.")

    class Meta:
        model = Export
        fields = ["id", "topic", "format", "status", "filters", "split", "seed", "system_prompt", "instruction",
                  "counts", "intent_counts", "warnings", "error", "created_at", "started_at", "finished_at",
                  "files", "download_url"]
        read_only_fields = fields

    def _url(self, name, *args):
        request = self.context.get("request")
        path = reverse(name, args=args)
        return request.build_absolute_uri(path) if request else path

    @extend_schema_field(ExportFileSerializer(many=True))
    def get_files(self, export):
        return [{"name": f.name, "size": f.size, "url": self._url("api-export-file", export.pk, f.name)}
                for f in export_files(export)]

    def get_download_url(self, export) -> str | None:
        if export.status != Export.Status.SUCCEEDED or not export.file:
            return None
        return self._url("api-export-download", export.pk)


class ImportSerializer(serializers.Serializer):
    topic = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    format = serializers.ChoiceField(choices=list(READERS))
    file = serializers.FileField(allow_empty_file=True)
    create_intents = serializers.BooleanField(default=False, help_text="Create intents missing from the taxonomy "
                                                                       "from the rows' paths.")
    status = serializers.ChoiceField(choices=Question.Status.choices, default=Question.Status.PENDING,
                                     help_text="For rows that carry no status of their own.")


class ImportResultSerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    intents_created = serializers.IntegerField()
