"""REST API of topics, intents, questions, exports and imports. Each view parses the request,
calls a service or selector, and renders; every one declares its permission."""

from django.db.models import Q
from django.http import FileResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from config.input import id_parse
from datasets.exports import (
    export_archive_name,
    export_archive_stream,
    export_create,
    export_delete,
    export_file_open,
    export_statuses_validate,
    export_stream,
)
from datasets.formats import WRITERS
from datasets.imports import questions_import
from datasets.lifecycle import (
    questions_remove,
    questions_restore,
    topic_archive,
    topic_deletion_start,
    topic_unarchive,
)
from datasets.models import Augmentation, Export, IntentNode, Question, Topic, TopicPreset
from datasets.permissions import IsDatasetAdmin, IsReviewerOrDatasetAdmin, topics_for_reviewer
from datasets.selectors import intent_subtree_ids, questions_visible_to, taxonomy_with_counts
from datasets.serializers import (
    AugmentationCreateSerializer,
    AugmentationSerializer,
    BulkResultSerializer,
    DataDeletionSerializer,
    ExportCreateSerializer,
    ExportSerializer,
    ImportResultSerializer,
    ImportSerializer,
    IntentCreateSerializer,
    IntentNodeSerializer,
    QuestionBulkSerializer,
    QuestionCreateSerializer,
    QuestionIdsSerializer,
    QuestionsChangedSerializer,
    QuestionSerializer,
    TopicPresetSerializer,
    TopicSerializer,
)
from datasets.services import DatasetError, augmentation_create, question_bulk_create

ERROR = OpenApiResponse(description='{"error": {"code", "message", "details"}}')


def _topic_for_admin(topic_id) -> Topic:
    topic = Topic.objects.filter(pk=topic_id).first()
    if topic is None:
        raise DatasetError(f"Topic {topic_id} does not exist.", code="invalid_topic")
    return topic


@extend_schema(parameters=[OpenApiParameter("archived", bool, description="List archived topics too.")])
class TopicViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                   viewsets.GenericViewSet):
    """Topics: dataset admins see, create, archive and delete all; reviewers see the topics assigned
    to them. Lists leave archived topics out unless `archived=true`; a topic being deleted is gone."""

    serializer_class = TopicSerializer
    lookup_value_regex = r"\d+"

    def get_permissions(self):
        if self.action in ("create", "destroy", "archive", "unarchive", "augment"):
            return [IsDatasetAdmin()]
        return [IsReviewerOrDatasetAdmin()]

    def get_queryset(self):
        archived = self.action != "list" or self.request.query_params.get("archived", "").lower() in ("true", "1")
        return topics_for_reviewer(self.request.user, include_archived=archived).order_by("name")

    def perform_create(self, serializer):
        serializer.save(owner=self.request.user)

    @extend_schema(request=None, responses={202: DataDeletionSerializer, 404: ERROR, 409: ERROR})
    def destroy(self, request, pk=None):
        """Delete the topic with everything it owns (intents, questions, review events, runs, exports,
        evaluations and their files): it is hidden and frozen now, and a job deletes it in batches.
        The answer is the deletion record to follow (GET /api/v1/deletions/{id}/)."""
        deletion = topic_deletion_start(topic=self.get_object(), actor=request.user)
        body = DataDeletionSerializer(deletion).data
        return Response({**body, "url": reverse("api-data-deletion", args=[deletion.pk])},
                        status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: TopicSerializer, 404: ERROR, 409: ERROR})
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        """Make the topic read-only and take it out of queues and lists (exports still work)."""
        return Response(TopicSerializer(topic_archive(topic=self.get_object())).data)

    @extend_schema(request=AugmentationCreateSerializer, responses={202: AugmentationSerializer, 400: ERROR,
                                                                     404: ERROR, 409: ERROR})
    @action(detail=True, methods=["post"])
    def augment(self, request, pk=None):
        """Offline augmentation: a job writes pending variants (typos, missing punctuation, casing, chat
        spelling, filler words) of the topic's approved questions, at most floor(share x approved) per
        intent, the same ones for the same seed. Follow it at GET /api/v1/augmentations/{id}/."""
        data = AugmentationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        augmentation = augmentation_create(topic=self.get_object(), requested_by=request.user, **data.validated_data)
        return Response(AugmentationSerializer(augmentation).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: TopicSerializer, 404: ERROR})
    @action(detail=True, methods=["post"])
    def unarchive(self, request, pk=None):
        """Make an archived topic writable and listed again."""
        return Response(TopicSerializer(topic_unarchive(topic=self.get_object())).data)


class AugmentationView(APIView):
    """One augmentation's status and progress (dataset admins)."""

    permission_classes = [IsDatasetAdmin]

    @extend_schema(responses={200: AugmentationSerializer, 404: ERROR})
    def get(self, request, pk: int):
        return Response(AugmentationSerializer(get_object_or_404(Augmentation, pk=pk)).data)


class TopicPresetListView(APIView):
    """The domain presets a topic can start from (`preset` when creating a topic): the shipped ones
    and those dataset admins added in the admin."""

    permission_classes = [IsDatasetAdmin]

    @extend_schema(responses={200: TopicPresetSerializer(many=True)})
    def get(self, request):
        return Response(TopicPresetSerializer(TopicPreset.objects.order_by("name"), many=True).data)


class IntentTreeView(APIView):
    """A topic's taxonomy as a tree (GET, reviewers of the topic and dataset admins), and adding
    an intent to it (POST, dataset admins)."""

    def get_permissions(self):
        return [IsDatasetAdmin()] if self.request.method == "POST" else [IsReviewerOrDatasetAdmin()]

    @extend_schema(responses={200: IntentNodeSerializer(many=True), 404: ERROR})
    def get(self, request, topic_id: int):
        topic = get_object_or_404(topics_for_reviewer(request.user), pk=topic_id)
        nodes = taxonomy_with_counts(topic=topic)
        by_id = {}
        roots = []
        for node in nodes:  # tree order: a parent always comes before its children
            item = {"id": node.id, "number": node.number, "name": node.name,
                    "intent_full_name": node.intent_full_name, "intent_path": node.intent_path,
                    "depth": node.depth, "is_leaf": node.is_leaf, "counts": node.counts, "children": []}
            by_id[node.id] = item
            (by_id[node.parent_id]["children"] if node.parent_id in by_id else roots).append(item)
        return Response(roots)

    @extend_schema(request=IntentCreateSerializer, responses={201: IntentNodeSerializer, 400: ERROR, 409: ERROR})
    def post(self, request, topic_id: int):
        from datasets.services import intent_create

        topic = get_object_or_404(Topic, pk=topic_id)
        data = IntentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        parent = None
        if data.validated_data.get("parent"):
            parent = IntentNode.objects.filter(pk=data.validated_data["parent"], topic=topic).first()
            if parent is None:
                raise DatasetError(f"Intent {data.validated_data['parent']} is not in topic {topic.name!r}.")
        node = intent_create(topic=topic, name=data.validated_data["name"], parent=parent,
                             description=data.validated_data["description"])
        return Response({"id": node.pk, "number": node.number, "name": node.name,
                         "intent_full_name": node.intent_full_name, "intent_path": node.intent_path,
                         "depth": node.depth, "is_leaf": True, "counts": {}, "children": []},
                        status=status.HTTP_201_CREATED)


@extend_schema(parameters=[
    OpenApiParameter("topic", int, description="Only this topic's questions."),
    OpenApiParameter("status", str, description="A status, or several separated by commas."),
    OpenApiParameter("intent", int, description="Only this intent and the intents below it."),
    OpenApiParameter("search", str, description="Questions whose text contains this (case-insensitive)."),
    OpenApiParameter("removed", bool, description="Only removed questions (default: only those not removed)."),
])
class QuestionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Questions: reviewers read their topics' questions; dataset admins read all and create."""

    serializer_class = QuestionSerializer
    lookup_value_regex = r"\d+"

    def get_permissions(self):
        if self.action in ("create", "bulk", "remove", "restore"):
            return [IsDatasetAdmin()]
        return [IsReviewerOrDatasetAdmin()]

    def get_queryset(self):
        questions = questions_visible_to(self.request.user).select_related("intent").order_by("id")
        if self.action != "list":
            return questions
        params = self.request.query_params
        removed = params.get("removed", "").lower() in ("true", "1")
        questions = questions.filter(removed_at__isnull=not removed)
        if not params.get("topic"):  # archived topics' questions only when asked for by topic
            questions = questions.filter(topic__archived_at__isnull=True)
        if params.get("topic"):
            questions = questions.filter(topic_id=id_parse(params["topic"], "topic"))
        if params.get("status"):
            statuses = [s.strip() for s in params["status"].split(",") if s.strip()]
            unknown = [s for s in statuses if s not in Question.Status.values]
            if unknown:
                raise DatasetError(f"Unknown status {unknown[0]!r}: use {', '.join(Question.Status.values)}.",
                                   code="invalid_parameter")
            questions = questions.filter(status__in=statuses)
        if params.get("intent"):
            node = IntentNode.objects.filter(pk=id_parse(params["intent"], "intent")).first()
            questions = questions.filter(intent_id__in=intent_subtree_ids(node=node)) if node else questions.none()
        if params.get("search"):
            questions = questions.filter(Q(text__icontains=params["search"].replace("\x00", "")))
        return questions

    def _create(self, topic_id, rows) -> tuple[Topic, object]:
        topic = _topic_for_admin(topic_id)
        intents = {i for i in IntentNode.objects.filter(topic=topic, pk__in={r["intent"] for r in rows})
                   .values_list("pk", flat=True)}
        for number, row in enumerate(rows):
            if row["intent"] not in intents:
                raise DatasetError(f"Intent {row['intent']} is not in topic {topic.name!r}.", code="invalid_intent",
                                   details={"row": number})
        result = question_bulk_create(topic=topic, rows=(
            dict(text=row["text"], intent_id=row["intent"], status=row["status"],
                 language=row.get("language") or topic.language, source=Question.Source.MANUAL)
            for row in rows))
        return topic, result

    @extend_schema(request=QuestionCreateSerializer, responses={201: QuestionSerializer, 400: ERROR, 409: ERROR})
    def create(self, request):
        data = QuestionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        row = dict(data.validated_data)
        topic, result = self._create(row.pop("topic"), [row])
        if not result.created:
            raise DatasetError("This topic already has this question (ignoring case and punctuation), or it is "
                               "empty.", code="duplicate")
        from datasets.normalize import text_hash

        question = Question.objects.get(topic=topic, text_hash=text_hash(row["text"].strip()))
        return Response(QuestionSerializer(question).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=QuestionBulkSerializer, responses={201: BulkResultSerializer, 400: ERROR})
    @action(detail=False, methods=["post"])
    def bulk(self, request):
        """Create up to 10,000 questions in one request; exact duplicates are skipped and counted."""
        data = QuestionBulkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        _, result = self._create(data.validated_data["topic"], data.validated_data["questions"])
        return Response({"created": result.created, "duplicates": result.duplicates}, status=status.HTTP_201_CREATED)

    @extend_schema(request=QuestionIdsSerializer, responses={200: QuestionsChangedSerializer, 400: ERROR, 409: ERROR})
    @action(detail=False, methods=["post"])
    def remove(self, request):
        """Remove questions: out of queues, lists and exports, their history kept, a `remove` event each."""
        data = QuestionIdsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        questions = questions_visible_to(request.user).filter(pk__in=data.validated_data["questions"])
        return Response({"changed": questions_remove(questions=questions, actor=request.user, via="api")})

    @extend_schema(request=QuestionIdsSerializer, responses={200: QuestionsChangedSerializer, 400: ERROR, 409: ERROR})
    @action(detail=False, methods=["post"])
    def restore(self, request):
        """Bring removed questions back as they were, a `restore` event each."""
        data = QuestionIdsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        questions = questions_visible_to(request.user).filter(pk__in=data.validated_data["questions"])
        return Response({"changed": questions_restore(questions=questions, actor=request.user, via="api")})


class ExportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                    viewsets.GenericViewSet):
    """Exports, dataset admins only: create one (a job writes the files), follow its status and
    counts, download its files, delete it with its files."""

    serializer_class = ExportSerializer
    permission_classes = [IsDatasetAdmin]
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        return Export.objects.select_related("topic").order_by("-created_at", "-id")

    @extend_schema(request=ExportCreateSerializer, responses={202: ExportSerializer, 400: ERROR})
    def create(self, request):
        data = ExportCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        topic = _topic_for_admin(fields.pop("topic"))
        export = export_create(topic=topic, created_by=request.user, **fields)
        return Response(ExportSerializer(export, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)

    def perform_destroy(self, instance):
        export_delete(export=instance)

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY, 404: ERROR})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The zip archive of every file of a finished export."""
        export = self.get_object()
        response = StreamingHttpResponse(export_archive_stream(export), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{export_archive_name(export)}"'
        return response


class ExportFileView(APIView):
    """One file of a finished export (a split file, labels.json, README.md...)."""

    permission_classes = [IsDatasetAdmin]

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 404: ERROR})
    def get(self, request, pk: int, name: str):
        export = get_object_or_404(Export, pk=pk)
        item, stream = export_file_open(export, name)
        # Streamed from the storage (an object store's GET body, or the local file) in blocks.
        response = FileResponse(stream, as_attachment=True, filename=item.name)
        response["Content-Length"] = str(item.size)
        return response


class ImportView(APIView):
    """Import a JSONL, CSV or Alpaca file into a topic: all rows or none, with every problem listed
    by line number in `error.details.errors`. With `dry_run`, the report of what it would do
    (problems in `errors`), nothing written."""

    permission_classes = [IsDatasetAdmin]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": ImportSerializer},
                   responses={201: ImportResultSerializer, 200: ImportResultSerializer, 400: ERROR})
    def post(self, request):
        data = ImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        topic = _topic_for_admin(fields.pop("topic"))
        report = questions_import(topic=topic, stream=fields.pop("file"), actor=request.user, **fields)
        return Response(ImportResultSerializer(report).data,
                        status=status.HTTP_200_OK if report.dry_run else status.HTTP_201_CREATED)


class FormatParameterNegotiation(DefaultContentNegotiation):
    """`?format=` names the export format here, not one of DRF's renderers."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


STREAM_FORMATS = [name for name, writer in WRITERS.items() if writer.streamable()]


class LabelingExportView(APIView):
    """The training guide's endpoint: approved (and relabeled) questions streamed as one file, for
    `Authorization: Bearer <token>` of a dataset admin. No job, no size limit: rows are read from a
    server-side cursor as the client reads the response."""

    permission_classes = [IsDatasetAdmin]
    content_negotiation_class = FormatParameterNegotiation

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=STREAM_FORMATS, default="jsonl"),
            OpenApiParameter("topic", int, description="One topic; default: every topic, one after another."),
            OpenApiParameter("status", str, description="Statuses separated by commas; default approved,relabeled."),
            OpenApiParameter("include_out_of_scope", bool, default=False,
                             description="Also the questions of out-of-scope intents (CLINC150's oos)."),
        ],
        responses={(200, "application/jsonl"): OpenApiTypes.BINARY, 400: ERROR, 401: ERROR, 403: ERROR},
    )
    def get(self, request):
        format = request.query_params.get("format") or "jsonl"
        topics = Topic.objects.filter(deletion_started_at__isnull=True)
        if request.query_params.get("topic"):
            topics = topics.filter(pk=id_parse(request.query_params["topic"], "topic"))
            if not topics.exists():
                raise DatasetError(f"Topic {request.query_params['topic']} does not exist.", code="not_found")
        statuses = export_statuses_validate(request.query_params.get("status"))
        questions = Question.objects.filter(topic__in=topics, status__in=statuses, removed_at__isnull=True)
        if request.query_params.get("include_out_of_scope", "").lower() not in ("true", "1", "yes"):
            questions = questions.exclude(intent__out_of_scope=True)
        chunks = export_stream(questions=questions, format=format)
        writer = WRITERS[format]
        response = StreamingHttpResponse((c.encode("utf-8") for c in chunks),
                                         content_type=f"{writer.content_type}; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="questions.{writer.extension}"'
        return response

