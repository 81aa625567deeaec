"""REST API of evaluations: start one (dataset admins), read its figures and label issues, try its
model, download its files (reviewers of the topic and dataset admins). Every view declares its permission;
an evaluation of a topic the user does not review answers 404."""

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.serializers import IdField, InputSerializer, StrictIntegerField
from datasets.models import Topic
from datasets.permissions import IsDatasetAdmin, IsReviewerOrDatasetAdmin
from datasets.services import DatasetError
from evaluation.comparison import accuracy_difference
from evaluation.documents import evaluation_document, label_issue_rows
from evaluation.models import Evaluation
from evaluation.selectors import evaluations_visible_to
from evaluation.services import (
    MAX_TRAIN_PER_INTENT,
    evaluation_create,
    evaluation_delete,
    evaluation_file_open,
    evaluation_predict,
)

ERROR = OpenApiResponse(description='{"error": {"code", "message", "details"}}')


class EvaluationCreateSerializer(InputSerializer):
    topic = IdField()
    train = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
    test = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
    include_out_of_scope = serializers.BooleanField(required=False, default=False)
    seed = StrictIntegerField(required=False, default=42, min_value=0, max_value=2**31 - 1)
    learning_curve = serializers.BooleanField(required=False, default=True)
    label_issues = serializers.BooleanField(required=False, default=True)
    max_train_per_intent = StrictIntegerField(
        required=False, default=MAX_TRAIN_PER_INTENT, min_value=10, max_value=10**6,
        help_text="Training questions per intent above which a seeded sample of this many is fitted on (default 500).")


class EvaluationSummarySerializer(serializers.ModelSerializer):
    topic_name = serializers.CharField(source="topic.name", read_only=True)

    class Meta:
        model = Evaluation
        fields = ["id", "topic", "topic_name", "status", "stage", "percent", "train_spec", "test_spec",
                  "include_out_of_scope", "seed", "train_count", "test_count", "error", "created_at",
                  "finished_at"]

    def to_representation(self, evaluation):
        # The same words as the document (evaluation/documents.py): a blank spec is the default plan.
        data = super().to_representation(evaluation)
        data["train_spec"], data["test_spec"] = data["train_spec"] or "default", data["test_spec"] or "default"
        return data


class PredictSerializer(InputSerializer):
    texts = serializers.JSONField(help_text="A list of at most 1,000 strings.")


class EvaluationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                        viewsets.GenericViewSet):
    """Evaluations: dataset admins start and delete them; reviewers of the topic read them."""

    serializer_class = EvaluationSummarySerializer
    lookup_value_regex = r"\d+"

    def get_permissions(self):
        if self.action in ("create", "destroy"):
            return [IsDatasetAdmin()]
        return [IsReviewerOrDatasetAdmin()]

    def get_queryset(self):
        evaluations = evaluations_visible_to(self.request.user).order_by("-created_at", "-id")
        topic = self.request.query_params.get("topic")
        if self.action == "list" and topic:
            from config.input import id_parse

            evaluations = evaluations.filter(topic_id=id_parse(topic, "topic"))
        return evaluations

    @extend_schema(request=EvaluationCreateSerializer, responses={202: OpenApiTypes.OBJECT, 400: ERROR})
    def create(self, request):
        data = EvaluationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        topic = Topic.objects.filter(pk=fields["topic"]).first()
        if topic is None:
            raise DatasetError(f"Topic {fields['topic']} does not exist.", code="invalid_topic")
        evaluation = evaluation_create(
            topic=topic, created_by=request.user, train_spec=fields["train"], test_spec=fields["test"],
            include_out_of_scope=fields["include_out_of_scope"], seed=fields["seed"],
            learning_curve=fields["learning_curve"], label_issues=fields["label_issues"],
            max_train_per_intent=fields["max_train_per_intent"])
        return Response(evaluation_document(evaluation), status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 404: ERROR})
    def retrieve(self, request, pk=None):
        """Everything about one evaluation: parameters, status, figures, learning curve, gates, timings."""
        return Response(evaluation_document(self.get_object()))

    def perform_destroy(self, instance):
        evaluation_delete(evaluation=instance)

    @extend_schema(parameters=[OpenApiParameter("a", int, required=True), OpenApiParameter("b", int, required=True)],
                   responses={200: OpenApiTypes.OBJECT, 400: ERROR, 404: ERROR})
    @action(detail=False, methods=["get"])
    def compare(self, request):
        """Whether evaluation b's accuracy differs from a's by more than test-set noise (?a=ID&b=ID): McNemar's
        exact test when both were tested on the same questions, a two-proportion test otherwise."""
        from config.input import id_parse

        visible = self.get_queryset()
        a = get_object_or_404(visible, pk=id_parse(request.query_params.get("a", ""), "a"))
        b = get_object_or_404(visible, pk=id_parse(request.query_params.get("b", ""), "b"))
        return Response(accuracy_difference(a=a, b=b))

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 404: ERROR})
    @action(detail=True, methods=["get"], url_path="label-issues")
    def label_issues(self, request, pk=None):
        """The likely label errors this evaluation found, most likely first (`?limit=`, default 100)."""
        from config.input import id_parse

        evaluation = self.get_object()
        limit = min(id_parse(request.query_params.get("limit", 100), "limit"), 2000)
        rows = label_issue_rows(evaluation=evaluation, limit=limit)
        return Response({"evaluation": evaluation.pk, "count": evaluation.label_issues.count(), "results": rows})

    @extend_schema(request=PredictSerializer, responses={200: OpenApiTypes.OBJECT, 400: ERROR, 404: ERROR})
    @action(detail=True, methods=["post"])
    def predict(self, request, pk=None):
        """The top 3 intents and confidences of each of up to 1,000 texts, by this evaluation's model."""
        evaluation = self.get_object()
        body = PredictSerializer(data=request.data)  # unknown fields and NUL bytes are a 400 naming them
        body.is_valid(raise_exception=True)
        texts = body.validated_data["texts"]
        return Response({"evaluation": evaluation.pk, "predictions": evaluation_predict(evaluation=evaluation,
                                                                                          texts=texts)})

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 404: ERROR})
    @action(detail=True, methods=["get"], url_path=r"files/(?P<name>[\w.]+)")
    def files(self, request, pk=None, name=None):
        """One file of the trained model: model.json, arrays.npz or questions.npz."""
        evaluation = self.get_object()
        size, stream = evaluation_file_open(evaluation, name)
        # Streamed from the storage (the object store's GET body, or the local file) in blocks.
        response = FileResponse(stream, as_attachment=True, filename=f"evaluation-{evaluation.pk}-{name}")
        response["Content-Length"] = str(size)
        return response


def evaluation_for_user(user, pk: int) -> Evaluation:
    return get_object_or_404(evaluations_visible_to(user), pk=pk)
