"""REST API of the data lifecycle (datasets/lifecycle.py), dataset admins only: the deletion
record of a topic deletion or purge, merging and deleting intents. Deleting, archiving and
unarchiving a topic, and removing and restoring questions, are actions of the topic and question
viewsets (datasets/api.py), which call the services below."""

from dataclasses import asdict

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from datasets.lifecycle import intent_delete, intent_merge
from datasets.models import DataDeletion, IntentNode, Topic
from datasets.permissions import IsDatasetAdmin
from datasets.serializers import (
    DataDeletionSerializer,
    IntentChangeResultSerializer,
    IntentDeleteSerializer,
    IntentMergeSerializer,
)
from datasets.services import DatasetError

ERROR = OpenApiResponse(description='{"error": {"code", "message", "details"}}')


def _intent_of_topic(topic_id: int, intent_id: int) -> IntentNode:
    topic = get_object_or_404(Topic.objects.filter(deletion_started_at__isnull=True), pk=topic_id)
    return get_object_or_404(IntentNode.objects.select_related("topic"), pk=intent_id, topic=topic)


def _other_intent(node: IntentNode, intent_id: int, field: str) -> IntentNode:
    other = IntentNode.objects.filter(pk=intent_id, topic_id=node.topic_id).first()
    if other is None:
        raise DatasetError(f"Intent {intent_id} is not an intent of {node.topic.name}.", code="invalid_intent",
                           details={"field": field})
    return other


class IntentMergeView(APIView):
    """Merge this intent into another of the topic (`into`): its questions relabeled (audited), its
    sub-intents moved or merged, the intent removed, the taxonomy renumbered."""

    permission_classes = [IsDatasetAdmin]

    @extend_schema(request=IntentMergeSerializer,
                   responses={200: IntentChangeResultSerializer, 400: ERROR, 404: ERROR, 409: ERROR})
    def post(self, request, topic_id: int, intent_id: int):
        node = _intent_of_topic(topic_id, intent_id)
        data = IntentMergeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        target = _other_intent(node, data.validated_data["into"], "into")
        result = intent_merge(source=node, target=target, actor=request.user, via="api")
        return Response(asdict(result))


class IntentDeleteView(APIView):
    """Delete this intent and its sub-intents, their questions first moved to `move_questions_to`
    (audited); an intent with questions and no `move_questions_to` is refused with the counts."""

    permission_classes = [IsDatasetAdmin]

    @extend_schema(request=IntentDeleteSerializer,
                   responses={200: IntentChangeResultSerializer, 400: ERROR, 404: ERROR, 409: ERROR})
    def post(self, request, topic_id: int, intent_id: int):
        node = _intent_of_topic(topic_id, intent_id)
        data = IntentDeleteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        target_id = data.validated_data.get("move_questions_to")
        target = _other_intent(node, target_id, "move_questions_to") if target_id else None
        result = intent_delete(node=node, move_questions_to=target, actor=request.user, via="api")
        return Response(asdict(result))


class DataDeletionView(APIView):
    """A topic deletion (the 202 of DELETE /topics/{id}/ links here) or a purge: its status, what
    it was to delete, what it deleted."""

    permission_classes = [IsDatasetAdmin]

    @extend_schema(responses={200: DataDeletionSerializer, 404: ERROR})
    def get(self, request, pk: int):
        return Response(DataDeletionSerializer(get_object_or_404(DataDeletion, pk=pk)).data)
