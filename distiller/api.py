"""REST API of distillation runs (dataset admins only). Views parse, call a service, render."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.input import id_parse
from config.serializers import (
    IdField,
    InputSerializer,
    StrictFloatField,
    StrictIntegerField,
    StrictPrimaryKeyRelatedField,
)
from datasets.models import LANGUAGE_CHOICES, Topic
from datasets.permissions import IsDatasetAdmin
from datasets.services import DatasetError
from distiller.models import DistillationRun
from distiller.selectors import run_progress, run_unit_problems
from distiller.services import provider_resolve, run_cancel, run_estimate_for, run_resume, run_start


class RunStartSerializer(InputSerializer):
    renamed_fields = {"questions_per_tag": "questions_per_intent", "tags": "tags_per_level",
                      "questions": "questions_per_intent", "parent": "parent_id", "intent": "intent_id"}

    topic = StrictPrimaryKeyRelatedField(queryset=Topic.objects.all())
    kind = serializers.ChoiceField(choices=DistillationRun.Kind.choices, default=DistillationRun.Kind.AUTO)
    idempotency_key = serializers.CharField(
        required=False, allow_blank=True, max_length=128,
        help_text="starting: a retry with the same key (or Idempotency-Key header) gets the same run back")
    provider = serializers.CharField(required=False, allow_blank=True, help_text="id, name or kind; default: custom")
    levels = StrictIntegerField(required=False, min_value=1, max_value=6)
    tags_per_level = StrictIntegerField(required=False, min_value=1, max_value=50)
    questions_per_intent = StrictIntegerField(required=False, min_value=1, max_value=10000)
    questions_per_call = StrictIntegerField(required=False, min_value=1, max_value=50)
    language = serializers.ChoiceField(choices=LANGUAGE_CHOICES, required=False)
    # Codes are checked by the run's service, whose error lists the supported ones.
    languages = serializers.ListField(
        child=serializers.CharField(max_length=8), required=False, max_length=len(LANGUAGE_CHOICES),
        help_text='the questions\' languages, spread evenly over each intent, e.g. ["en", "es"]; default: the '
                  "topic's preset's languages, else [language]")
    leaf_only = serializers.BooleanField(required=False, allow_null=True, default=None)
    temperature = StrictFloatField(required=False, min_value=0, max_value=2)
    seed = StrictIntegerField(required=False, min_value=0, max_value=2**31)
    near_duplicate_threshold = StrictFloatField(required=False, min_value=0.3, max_value=1)
    parent_id = IdField(required=False, help_text="taxonomy runs: grow under this intent")
    intent_id = IdField(required=False, help_text="questions runs: only this intent's subtree")
    mix = serializers.DictField(required=False, help_text='e.g. {"complexity": {"simple": 1, "complex": 1}}')
    judge = serializers.CharField(required=False, allow_blank=True,
                                  help_text="the LLM judge: a provider's id, name or kind (also the teacher's own)")
    judge_threshold = StrictFloatField(required=False, min_value=0, max_value=1)
    judge_action = serializers.ChoiceField(choices=["mark", "reject", "refine"], required=False)
    judge_refine_rounds = StrictIntegerField(required=False, min_value=1, max_value=5)
    judge_batch = StrictIntegerField(required=False, min_value=1, max_value=50)
    hard_negatives = StrictIntegerField(required=False, min_value=0, max_value=1000,
                                        help_text="near-boundary questions per pair of neighbouring intents")
    out_of_scope = StrictIntegerField(required=False, min_value=0, max_value=10000,
                                      help_text="questions near the topic but outside every intent")
    pool = serializers.ListField(child=serializers.DictField(), required=False, max_length=20,
                                 help_text='a teacher pool, e.g. [{"provider": "deepseek", "weight": 3}, '
                                           '{"provider": "openrouter", "weight": 1}]')


class RunSerializer(serializers.ModelSerializer):
    provider = serializers.CharField(source="provider.name")
    judge = serializers.CharField(source="judge_provider.name", default="", read_only=True)
    progress = serializers.SerializerMethodField()
    problems = serializers.SerializerMethodField()

    class Meta:
        model = DistillationRun
        fields = ["id", "topic", "kind", "provider", "judge", "status", "parameters", "estimate", "progress", "warnings",
                  "error", "problems", "created_at", "started_at", "finished_at"]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_progress(self, run):
        return run_progress(run=run)

    @extend_schema_field({"type": "array", "items": {"type": "object"}})
    def get_problems(self, run):
        return run_unit_problems(run=run)


def run_request_parse(request):
    """The topic, kind, provider and other parameters of a start or estimate request (400 if invalid)."""
    form = RunStartSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    data = dict(form.validated_data)
    topic, kind = data.pop("topic"), data.pop("kind")
    return topic, kind, provider_resolve(data.pop("provider", None) or None), data


class RunListCreateApi(generics.ListAPIView):
    permission_classes = [IsDatasetAdmin]
    serializer_class = RunSerializer

    def get_queryset(self):
        runs = DistillationRun.objects.select_related("provider").order_by("-created_at")
        topic, run_status = self.request.query_params.get("topic"), self.request.query_params.get("status")
        if topic:
            runs = runs.filter(topic_id=id_parse(topic, "topic"))
        if run_status:
            if run_status not in DistillationRun.Status.values:
                raise DatasetError(f"Unknown status {run_status!r}: use {', '.join(DistillationRun.Status.values)}.",
                                   code="invalid_parameter")
            runs = runs.filter(status=run_status)
        return runs

    @extend_schema(operation_id="runs_list", parameters=[
        OpenApiParameter("topic", OpenApiTypes.INT, description="only this topic's runs"),
        OpenApiParameter("status", OpenApiTypes.STR, enum=DistillationRun.Status.values)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(operation_id="runs_start", request=RunStartSerializer, responses={201: RunSerializer})
    def post(self, request):
        topic, kind, provider, data = run_request_parse(request)
        key = data.pop("idempotency_key", "") or request.headers.get("Idempotency-Key", "")
        if len(key) > 128:
            raise DatasetError("The Idempotency-Key header is longer than 128 characters.", code="invalid_parameter")
        run = run_start(topic=topic, kind=kind, provider=provider, user=request.user, idempotency_key=key, **data)
        if getattr(run, "replayed", False):  # a retry: the run its first request started
            return Response(RunSerializer(run).data, status=status.HTTP_200_OK, headers={"Idempotent-Replayed": "true"})
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)


class RunEstimateApi(APIView):
    """What a run with this body would take: the same body as starting one, nothing is started."""

    permission_classes = [IsDatasetAdmin]

    @extend_schema(operation_id="runs_estimate", request=RunStartSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request):
        topic, kind, provider, data = run_request_parse(request)
        data.pop("idempotency_key", None)  # the same body as a start; nothing is started here
        return Response(run_estimate_for(topic=topic, kind=kind, provider=provider, **data))


class RunDetailApi(APIView):
    permission_classes = [IsDatasetAdmin]

    @extend_schema(operation_id="runs_retrieve", responses=RunSerializer)
    def get(self, request, run_id):
        return Response(RunSerializer(get_object_or_404(DistillationRun, pk=run_id)).data)


class RunCancelApi(APIView):
    permission_classes = [IsDatasetAdmin]

    @extend_schema(operation_id="runs_cancel", request=None, responses=RunSerializer)
    def post(self, request, run_id):
        run = run_cancel(run=get_object_or_404(DistillationRun, pk=run_id))
        return Response(RunSerializer(run).data)


class RunResumeApi(APIView):
    permission_classes = [IsDatasetAdmin]

    @extend_schema(operation_id="runs_resume", request=None, responses=RunSerializer)
    def post(self, request, run_id):
        run = run_resume(run=get_object_or_404(DistillationRun, pk=run_id))
        return Response(RunSerializer(run).data)
