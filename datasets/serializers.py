"""DRF serializers of the datasets API: they parse and render; the services decide."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.serializers import IdField, InputModelSerializer, InputSerializer, StrictFloatField, StrictIntegerField
from datasets.augment import KINDS
from datasets.exports import export_files
from datasets.formats.readers import READERS
from datasets.imports import ON_CONFLICT_CHOICES
from datasets.models import QUESTION_TEXT_MAX_CHARS, Augmentation, DataDeletion, Export, Question, Topic, TopicPreset
from datasets.splits import SPLIT_ALIASES

MAX_BULK_QUESTIONS = 10_000
SEED_RANGE = {"min_value": -(2**31), "max_value": 2**31 - 1}


class TopicSerializer(InputModelSerializer):
    preset = serializers.SlugRelatedField(
        slug_field="name", queryset=TopicPreset.objects.all(), required=False, allow_null=True,
        help_text="A domain preset's name (GET /api/v1/presets/): fills the description and language when they "
                  "are not given, and the runs' styles and audiences.")

    class Meta:
        model = Topic
        fields = ["id", "name", "description", "language", "levels", "tags_per_level", "questions_per_intent",
                  "leaf_only", "target_per_intent", "confidence_threshold", "preset", "archived_at", "created_at",
                  "updated_at"]
        read_only_fields = ["archived_at", "created_at", "updated_at"]

    def validate(self, attrs):
        # The preset fills what the request left out: what was given wins.
        preset = attrs.get("preset")
        if preset is not None and self.instance is None:
            if not attrs.get("description"):
                attrs["description"] = preset.description
            if "language" not in self.initial_data and preset.languages:
                attrs["language"] = preset.languages[0]
        return attrs


class TopicPresetSerializer(serializers.ModelSerializer):
    class Meta:
        model = TopicPreset
        fields = ["id", "name", "description", "languages", "styles", "audiences", "builtin"]
        read_only_fields = fields


class AugmentationCreateSerializer(InputSerializer):
    share = StrictFloatField(min_value=0.0, max_value=1.0,
                             help_text="Up to floor(share x approved questions) new variants per intent, e.g. 0.2.")
    seed = StrictIntegerField(default=1, min_value=-(2**31), max_value=2**31 - 1,
                              help_text="The same seed gives the same variants.")
    kinds = serializers.ListField(child=serializers.ChoiceField(choices=list(KINDS)), required=False,
                                  allow_empty=False, max_length=len(KINDS), help_text=f"Default: all of {', '.join(KINDS)}.")

    def validate_share(self, value):
        if value <= 0:
            raise serializers.ValidationError("The share must be above 0 (0.2: up to a fifth of an intent's "
                                              "approved questions).")
        return value


class AugmentationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Augmentation
        fields = ["id", "topic", "share", "seed", "kinds", "status", "intents_total", "intents_done", "created",
                  "per_kind", "error", "created_at", "started_at", "finished_at"]
        read_only_fields = fields


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


class IntentCreateSerializer(InputSerializer):
    name = serializers.CharField(max_length=200)
    parent = IdField(required=False, allow_null=True,
                     help_text="Id of the parent intent; none for a root intent.")
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class QuestionSerializer(serializers.ModelSerializer):
    intent_full_name = serializers.CharField(source="intent.intent_full_name", read_only=True)

    class Meta:
        model = Question
        fields = ["id", "topic", "intent", "intent_full_name", "text", "language", "source", "status", "version",
                  "provider", "model", "prompt_version", "confidence", "transformation", "augmented_from",
                  "removed_at", "created_at", "updated_at"]
        read_only_fields = fields


class QuestionInputSerializer(InputSerializer):
    intent = IdField(help_text="Id of an intent of the topic.")
    text = serializers.CharField(max_length=QUESTION_TEXT_MAX_CHARS)
    status = serializers.ChoiceField(choices=Question.Status.choices, default=Question.Status.PENDING)
    language = serializers.CharField(max_length=8, required=False)


class QuestionCreateSerializer(QuestionInputSerializer):
    topic = IdField()


class QuestionBulkSerializer(InputSerializer):
    topic = IdField()
    questions = QuestionInputSerializer(many=True, allow_empty=False, max_length=MAX_BULK_QUESTIONS)


class BulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField(help_text="Rows skipped as exact duplicates (in the request or the topic).")


@extend_schema_field({"oneOf": [
    {"type": "object", "additionalProperties": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1}},
    {"type": "string", "enum": ["assigned"]},
    {"type": "object", "properties": {"mode": {"type": "string", "enum": ["assigned"]}, "unassigned": {
        "type": "object", "additionalProperties": {"type": "number"}}}, "required": ["mode"]},
]})
class SplitField(serializers.JSONField):
    """The split as the client sent it. datasets.splits.export_split_validate decides what is valid:
    a DictField(FloatField) would turn `true` into 1.0 and "0.8" into 0.8, which the service refuses."""


class ExportCreateSerializer(InputSerializer):
    topic = IdField()
    format = serializers.ChoiceField(choices=Export.Format.choices)
    statuses = serializers.ListField(child=serializers.ChoiceField(choices=Question.Status.choices), required=False,
                                     help_text="Default: approved and relabeled.")
    intent = IdField(required=False, allow_null=True, help_text="Export only this intent's subtree.")
    split = SplitField(required=False, allow_null=True,
                       help_text='Ratios that add up to 1, e.g. {"train": 0.8, "validation": 0.1, "test": 0.1}; '
                                 '"assigned": questions keep their own split, the others are placed 0.8/0.1/0.1 '
                                 '(or {"mode": "assigned", "unassigned": {"train": 1}}); none for one file.')
    include_out_of_scope = serializers.BooleanField(
        required=False, default=False, help_text="Also export the questions of out-of-scope intents (CLINC150's oos).")
    judge_passed = serializers.BooleanField(
        required=False, default=False, help_text="Only questions the LLM judge passed (see distillation runs' judge).")
    agreed_only = serializers.BooleanField(
        required=False, default=False,
        help_text="Only questions the topic's overlap gave to k reviewers who all decided alike (docs/labeling.md).")
    seed = StrictIntegerField(required=False, default=42, **SEED_RANGE)
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


class ImportSerializer(InputSerializer):
    topic = IdField()
    format = serializers.ChoiceField(choices=list(READERS))
    file = serializers.FileField(allow_empty_file=True)
    create_intents = serializers.BooleanField(default=False, help_text="Create intents missing from the taxonomy "
                                                                       "from the rows' paths (or plain names).")
    status = serializers.ChoiceField(choices=Question.Status.choices, default=Question.Status.PENDING,
                                     help_text="For rows that carry no status of their own.")
    split = serializers.ChoiceField(choices=list(SPLIT_ALIASES), required=False, allow_blank=True, default="",
                                    help_text="One split for every row (val, valid and dev mean validation); it "
                                              "overrides the rows' own `split`.")
    text_column = serializers.CharField(required=False, allow_blank=True, default="", max_length=200,
                                        help_text="The file's column (or JSON field) that holds the question.")
    intent_column = serializers.CharField(required=False, allow_blank=True, default="", max_length=200,
                                          help_text="The file's column (or JSON field) that names the intent.")
    on_conflict = serializers.ChoiceField(choices=list(ON_CONFLICT_CHOICES.items()), default="keep_first",
                                          help_text="The same text under two intents: " + "; ".join(
                                              f"{k}: {v}" for k, v in ON_CONFLICT_CHOICES.items()) + ".")
    dry_run = serializers.BooleanField(default=False, help_text="Report what the import would do; write nothing.")


class ImportConflictSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    text = serializers.CharField()
    intent = serializers.CharField(help_text="The intent this line gives.")
    other_intent = serializers.CharField(help_text="The intent the text already has.")
    other_line = serializers.IntegerField(allow_null=True, help_text="Its line; null when it is already in the topic.")


class ImportProblemSerializer(serializers.Serializer):
    line = serializers.IntegerField(allow_null=True)
    message = serializers.CharField()


class ImportResultSerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    created = serializers.IntegerField(help_text="Questions created (in a dry run: that would be).")
    duplicates = serializers.IntegerField(help_text="Rows skipped: the same text under the same intent earlier in "
                                                    "the file or in the topic.")
    conflicts = serializers.IntegerField(help_text="Rows whose text is under another intent earlier in the file or "
                                                   "in the topic.")
    conflict_texts = serializers.IntegerField()
    flagged = serializers.IntegerField(help_text="With on_conflict=flag: rows created with status flagged.")
    intents_created = serializers.IntegerField()
    splits = serializers.DictField(child=serializers.IntegerField(), help_text="Created rows per split; none: no split.")
    split_overridden = serializers.IntegerField(help_text="Rows whose own split the file-wide split replaced.")
    on_conflict = serializers.CharField()
    dry_run = serializers.BooleanField()
    error_count = serializers.IntegerField(help_text="Problems found (a dry run only; otherwise the import is a 400).")
    errors = ImportProblemSerializer(many=True)
    conflict_details = ImportConflictSerializer(many=True, help_text="The first 100 conflicts.")
    intents_to_create = serializers.ListField(child=serializers.CharField(), help_text="Paths, the first 100.")


# The data lifecycle (datasets/lifecycle.py) --------------------------------------------------

class DataDeletionSerializer(serializers.ModelSerializer):
    """A topic deletion or purge: what was to go, what went, and how the job is doing."""

    # A plain string: another "kind" enum (runs, providers) would collide in the schema's names.
    kind = serializers.CharField(read_only=True, help_text='"topic" (a topic deletion) or "purge".')

    class Meta:
        model = DataDeletion
        fields = ["id", "kind", "topic_id", "topic_name", "status", "planned", "deleted", "batches",
                  "longest_batch_ms", "error", "created_at", "started_at", "finished_at"]
        read_only_fields = fields


class QuestionIdsSerializer(InputSerializer):
    questions = serializers.ListField(child=IdField(), min_length=1, max_length=MAX_BULK_QUESTIONS,
                                      help_text="Ids of the questions to remove or restore.")


class QuestionsChangedSerializer(serializers.Serializer):
    changed = serializers.IntegerField(help_text="Questions removed (or restored); those already so are not counted.")


class IntentMergeSerializer(InputSerializer):
    into = IdField(help_text="Id of the intent of the same topic to merge this one into.")


class IntentDeleteSerializer(InputSerializer):
    move_questions_to = IdField(required=False, allow_null=True,
                                help_text="Id of the intent that takes the questions first; without it an intent "
                                          "with questions is refused.")


class IntentChangeResultSerializer(serializers.Serializer):
    questions_moved = serializers.IntegerField()
    intents_moved = serializers.IntegerField()
    intents_merged = serializers.IntegerField()
    intents_deleted = serializers.IntegerField()
    renumbered = serializers.IntegerField()
