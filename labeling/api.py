"""REST endpoints of the review queue and the captures intake (mounted under /api/v1/)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from config.input import id_parse, ids_parse
from datasets.models import Question, Topic
from datasets.permissions import IsReviewerOrDatasetAdmin, is_topic_lead, topics_for_reviewer
from datasets.services import DatasetError
from labeling.agreement import reviewer_figures, topic_agreement
from labeling.permissions import CanPostCaptures
from labeling.selectors import QuestionFilter, queue_remaining, review_question
from labeling.serializers import (
    CaptureResultSerializer,
    CaptureSerializer,
    LeaseSerializer,
    NextQuestionSerializer,
    ReviewerFiguresSerializer,
    ReviewQuestionSerializer,
    ReviewRequestSerializer,
    ReviewResponseSerializer,
    UndoRequestSerializer,
)
from labeling.services import (
    captures_record,
    question_lease_next,
    question_lease_renew,
    question_review,
    queue_status,
    reviewer_undo_last,
)


def reviewable_topic(user, topic_id):
    """The topic if the user may review it; 404 otherwise, so other topics' ids are not confirmed."""
    topic = topics_for_reviewer(user).filter(pk=topic_id).first()
    if topic is None:
        raise DatasetError(f"Topic {topic_id} does not exist or is not assigned to you.", code="not_found")
    return topic


def review_question_data(question: Question, *, with_similar: bool) -> dict:
    return ReviewQuestionSerializer(review_question(question_id=question.pk, with_similar=with_similar)).data


class ReviewNextApi(APIView):
    """Reserve the next question of a topic's review queue for the caller."""

    permission_classes = [IsReviewerOrDatasetAdmin]

    @extend_schema(
        operation_id="review_next",
        parameters=[
            OpenApiParameter("topic", OpenApiTypes.INT, required=True),
            OpenApiParameter("queue", OpenApiTypes.STR, enum=["review", "second_opinion"],
                             description="review (default): pending questions. second_opinion: flagged questions, "
                                         "for the topic's leads and dataset admins."),
            OpenApiParameter("skip", OpenApiTypes.STR,
                             description="Comma-separated ids passed over, the one passed over longest ago "
                                         "first: released, and offered again only after every other question."),
            OpenApiParameter("similar", OpenApiTypes.BOOL,
                             description="Also look up possible duplicates (default false: it costs more than the "
                                         "rest of the request; the review screen loads them separately)."),
            OpenApiParameter("intent", OpenApiTypes.INT, description="Only this intent and its subtree."),
            OpenApiParameter("source", OpenApiTypes.STR),
            OpenApiParameter("language", OpenApiTypes.STR),
            OpenApiParameter("confidence_min", OpenApiTypes.FLOAT),
            OpenApiParameter("confidence_max", OpenApiTypes.FLOAT),
            OpenApiParameter("search", OpenApiTypes.STR),
        ],
        responses=NextQuestionSerializer,
    )
    def get(self, request):
        raw_topic = request.query_params.get("topic", "")
        if not raw_topic.strip():
            raise DatasetError("Give the topic id: ?topic=ID.", code="invalid_parameter")
        topic = reviewable_topic(request.user, id_parse(raw_topic, "topic"))
        queue = request.query_params.get("queue", "review").strip() or "review"
        status = queue_status(queue)
        queryset = QuestionFilter.for_queue(request.query_params).apply(Question.objects.all(), topic=topic)
        question = question_lease_next(topic=topic, actor=request.user, queryset=queryset, queue=queue,
                                       skip_ids=ids_parse(request.query_params.get("skip", ""), "skip", limit=200))
        with_similar = request.query_params.get("similar", "0").lower() in ("1", "true", "yes")
        shown = review_question(question_id=question.pk, with_similar=with_similar) if question else None
        remaining = queue_remaining(queryset=queryset, actor=request.user, status=status)
        return Response(NextQuestionSerializer({"question": shown, "remaining": remaining}).data)


def question_topic_of_reviewer(user, pk: int) -> Topic:
    """The question's topic; 404 unless the user reviews it (so other topics' ids are not confirmed)."""
    topic_id = Question.objects.filter(pk=pk).values_list("topic_id", flat=True).first()
    topic = topics_for_reviewer(user).filter(pk=topic_id).first() if topic_id is not None else None
    if topic is None:
        raise DatasetError(f"Question {pk} does not exist or is not in a topic assigned to you.", code="not_found")
    return topic


class LeaseRenewApi(APIView):
    """Keep the caller's reservation of a question while they work on it (the review screen's heartbeat)."""

    permission_classes = [IsReviewerOrDatasetAdmin]

    @extend_schema(operation_id="review_lease_renew", request=None, responses=LeaseSerializer)
    def post(self, request, pk: int):
        question_topic_of_reviewer(request.user, pk)
        question = question_lease_renew(question_id=pk, actor=request.user)
        return Response(LeaseSerializer(question).data)


class QuestionReviewApi(APIView):
    """Approve, reject, flag, relabel, edit or undo one question."""

    permission_classes = [IsReviewerOrDatasetAdmin]

    @extend_schema(operation_id="question_review", request=ReviewRequestSerializer,
                   responses=ReviewResponseSerializer)
    def post(self, request, pk: int):
        topic = question_topic_of_reviewer(request.user, pk)
        body = ReviewRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        queue = None
        if data["next"]:
            # Checked before the decision: a bad filter must answer 400 with nothing written, not
            # after the decision has committed.
            queue = QuestionFilter.for_queue(data.get("filter") or {}).apply(Question.objects.all(), topic=topic)
        question = question_review(question_id=pk, actor=request.user, action=data["action"],
                                   intent_id=data.get("intent"), text=data.get("text"), version=data["version"],
                                   via="api" if request.auth else "ui", reason=data.get("reason"))
        reply = {"question": review_question_data(question, with_similar=False), "next": None}
        if queue is not None:
            upcoming = question_lease_next(topic=topic, actor=request.user, queryset=queue,
                                           skip_ids=data.get("skip") or [], queue=data["queue"])
            reply["next"] = review_question_data(upcoming, with_similar=False) if upcoming else None
            reply["remaining"] = queue_remaining(queryset=queue, actor=request.user, status=queue_status(data["queue"]))
        return Response(reply)


class ReviewUndoApi(APIView):
    """Undo your latest action on a topic that is still in effect (the server keeps the stack, so it
    survives a reload); the question comes back to you, and the one you had on screen is released."""

    permission_classes = [IsReviewerOrDatasetAdmin]

    @extend_schema(operation_id="review_undo", request=UndoRequestSerializer, responses=ReviewQuestionSerializer)
    def post(self, request):
        body = UndoRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        topic = reviewable_topic(request.user, body.validated_data["topic"])
        release = body.validated_data.get("release")
        if release is not None:
            question_topic_of_reviewer(request.user, release)
        question = reviewer_undo_last(topic=topic, actor=request.user, release_id=release,
                                      via="api" if request.auth else "ui")
        return Response(review_question_data(question, with_similar=False))


class ReviewerFiguresApi(APIView):
    """Reviewer figures of a topic per reviewer and per day, and the agreement between reviewers.

    A topic lead or a dataset admin gets every reviewer and the agreement; a reviewer gets their
    own rows only (and no agreement, which names the others)."""

    permission_classes = [IsReviewerOrDatasetAdmin]

    @extend_schema(operation_id="topic_reviewers", parameters=[
        OpenApiParameter("days", OpenApiTypes.INT, description="How many days back (default 30, at most 366).")],
        responses=ReviewerFiguresSerializer)
    def get(self, request, topic_id: int):
        topic = reviewable_topic(request.user, topic_id)
        raw_days = request.query_params.get("days", "").strip()
        days = min(id_parse(raw_days, "days"), 366) if raw_days else 30
        everyone = is_topic_lead(request.user, topic.pk)
        rows = reviewer_figures(topic=topic, reviewers=None if everyone else [request.user], days=days)
        body = {"topic": topic.pk, "days": days, "scope": "topic" if everyone else "own", "reviewers": rows,
                "agreement": topic_agreement(topic=topic) if everyone else None}
        return Response(ReviewerFiguresSerializer(body).data)


class CaptureApi(APIView):
    """Take production queries with the deployed model's prediction; low-confidence ones enter review.

    The body is one capture object or a list of them (up to 1,000). The batch is atomic: when any
    item is invalid nothing is recorded and the 400 answer lists the errors by item index.
    """

    permission_classes = [CanPostCaptures]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "captures"
    max_batch = 1000

    @extend_schema(operation_id="captures_create", request=CaptureSerializer(many=True),
                   responses={201: CaptureResultSerializer})
    def post(self, request):
        items = request.data if isinstance(request.data, list) else [request.data]
        if not items:
            raise DatasetError("The batch is empty.")
        if len(items) > self.max_batch:
            raise DatasetError(f"At most {self.max_batch} captures per request; got {len(items)}.")
        valid, errors = [], {}
        for index, item in enumerate(items):
            capture = CaptureSerializer(data=item)
            if capture.is_valid():
                valid.append(capture.validated_data)
            else:
                errors[str(index)] = capture.errors
        if errors:
            raise serializers.ValidationError({"items": errors})
        result = captures_record(items=valid)
        body = {
            "results": result.outcomes,
            **{name: result.count(name) for name in ("queued", "repeat", "counted", "known")},
        }
        return Response(CaptureResultSerializer(body).data, status=status.HTTP_201_CREATED)

