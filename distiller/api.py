"""REST API of distillation runs (dataset admins only). Views parse, call a service, render."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from datasets.models import LANGUAGE_CHOICES, Topic
from datasets.permissions import IsDatasetAdmin
from distiller.models import DistillationRun
from distiller.selectors import run_progress, run_unit_problems
from distiller.services import provider_resolve, run_cancel, run_resume, run_start


class RunStartSerializer(serializers.Serializer):
    topic = serializers.PrimaryKeyRelatedField(queryset=Topic.objects.all())
    kind = serializers.ChoiceField(choices=DistillationRun.Kind.choices, default=DistillationRun.Kind.AUTO)
    provider = serializers.CharField(required=False, allow_blank=True, help_text="id, name or kind; default: custom")
    levels = serializers.IntegerField(required=False, min_value=1, max_value=6)
    tags_per_level = serializers.IntegerField(required=False, min_value=1, max_value=50)
    questions_per_intent = serializers.IntegerField(required=False, min_value=1, max_value=10000)
    questions_per_call = serializers.IntegerField(required=False, min_value=1, max_value=50)
    language = serializers.ChoiceField(choices=LANGUAGE_CHOICES, required=False)
    leaf_only = serializers.BooleanField(required=False, allow_null=True, default=None)
    temperature = serializers.FloatField(required=False, min_value=0, max_value=2)
    seed = serializers.IntegerField(required=False, min_value=0)
    near_duplicate_threshold = serializers.FloatField(required=False, min_value=0.3, max_value=1)
    parent_id = serializers.IntegerField(required=False, help_text="taxonomy runs: grow under this intent")
    intent_id = serializers.IntegerField(required=False, help_text="questions runs: only this intent's subtree")
    mix = serializers.DictField(required=False, help_text='e.g. {"complexity": {"simple": 1, "complex": 1}}')


class RunSerializer(serializers.ModelSerializer):
    provider = serializers.CharField(source="provider.name")
    progress = serializers.SerializerMethodField()
    problems = serializers.SerializerMethodField()

    class Meta:
        model = DistillationRun
        fields = ["id", "topic", "kind", "provider", "status", "parameters", "estimate", "progress", "warnings",
                  "error", "problems", "created_at", "started_at", "finished_at"]

    def get_progress(self, run) -> dict:
        return run_progress(run=run)

    def get_problems(self, run) -> list[dict]:
        return run_unit_problems(run=run)


class RunListCreateApi(APIView):
    permission_classes = [IsDatasetAdmin]

    @extend_schema(operation_id="runs_list", responses=inline_serializer(
        "RunList", {"results": RunSerializer(many=True)}))
    def get(self, request):
        runs = DistillationRun.objects.select_related("provider").order_by("-created_at")[:50]
        return Response({"results": RunSerializer(runs, many=True).data})

    @extend_schema(operation_id="runs_create", request=RunStartSerializer, responses={201: RunSerializer})
    def post(self, request):
        form = RunStartSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        topic, kind = data.pop("topic"), data.pop("kind")
        provider = provider_resolve(data.pop("provider", None) or None)
        run = run_start(topic=topic, kind=kind, provider=provider, user=request.user, **data)
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)


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
