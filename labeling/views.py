"""HTML pages of the review UI: home, topic dashboard, review screen, question list.

Every page needs a login; a reviewer sees only the topics assigned to them (others answer 404).
The review screen is one page driven by labeling/static/labeling/review.js through the REST API.
"""

import functools

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods

from config.input import id_parse, ids_parse
from datasets.admin_lists import EstimatedCountPaginator
from datasets.models import LANGUAGE_CHOICES, Question
from datasets.permissions import is_dataset_admin, is_reviewer, is_topic_lead, topics_for_reviewer
from datasets.services import DatasetError
from labeling.selectors import (
    QuestionFilter,
    guidelines_html,
    intent_examples,
    questions_filtered,
    questions_outside_topic,
    questions_similar,
    reasons_by_intent,
    taxonomy_choices,
    topic_progress,
    topics_overview,
)
from labeling.services import BULK_ACTIONS, lease_seconds, questions_review_matching, queue_status

CHART_BAR = 16
CHART_LABEL = 260
CHART_WIDTH = 520


def role_required(view):
    """A signed-in reviewer or dataset admin. Anyone else signed in (a capture client's service
    account, a user given no role yet) gets a 403: the review UI is not theirs to read."""

    @login_required
    @functools.wraps(view)
    def checked(request, *args, **kwargs):
        if not (is_dataset_admin(request.user) or is_reviewer(request.user)):
            raise PermissionDenied("Your account has no reviewer or dataset admin role; ask an administrator.")
        return view(request, *args, **kwargs)

    return checked


def _topic_or_404(user, topic_id):
    topic = topics_for_reviewer(user).filter(pk=topic_id).first()
    if topic is None:
        raise Http404("No such topic among the ones you review.")
    return topic


@role_required
def home(request):
    return render(request, "labeling/home.html", {
        "topics": topics_overview(topics=topics_for_reviewer(request.user)),
        "is_dataset_admin": is_dataset_admin(request.user),
    })


def progress_chart(rows, target: int) -> dict:
    """Geometry of the dashboard's stacked bar chart (drawn as inline SVG by the template)."""
    scale_max = max([target, *(r.approved + r.pending + r.flagged + r.rejected for r in rows)] or [1])
    unit = CHART_WIDTH / scale_max
    bars = []
    for index, row in enumerate(rows):
        x, segments = CHART_LABEL, []
        for name, value in (("approved", row.approved), ("pending", row.pending), ("flagged", row.flagged),
                            ("rejected", row.rejected)):
            if value:
                segments.append({"name": name, "x": round(x, 1), "width": round(value * unit, 1), "value": value})
                x += value * unit
        bars.append({"row": row, "y": index * CHART_BAR, "segments": segments,
                     "text_y": index * CHART_BAR + CHART_BAR - 4, "end_x": round(x + 4, 1)})
    return {
        "bars": bars, "height": len(rows) * CHART_BAR + 24, "width": CHART_LABEL + CHART_WIDTH + 60,
        "target_x": round(CHART_LABEL + target * unit, 1), "label_x": CHART_LABEL - 6, "axis_y": len(rows) * CHART_BAR + 14,
    }


@role_required
def topic_dashboard(request, topic_id):
    topic = _topic_or_404(request.user, topic_id)
    rows = topic_progress(topic=topic)
    short = [r for r in rows if r.approved < r.target]
    return render(request, "labeling/dashboard.html", {
        "topic": topic, "rows": rows, "chart": progress_chart(rows, topic.target_per_intent),
        "short_count": len(short), "pending_total": sum(r.pending for r in rows),
        "approved_total": sum(r.approved for r in rows), "flagged_total": sum(r.flagged for r in rows),
        "is_lead": is_topic_lead(request.user, topic.pk), "reasons": reasons_by_intent(topic=topic)[:30],
    })


@role_required
def review_screen(request, topic_id):
    topic = _topic_or_404(request.user, topic_id)
    queue = request.GET.get("queue", "review") or "review"
    try:
        queue_status(queue)
        if queue == "second_opinion" and not is_topic_lead(request.user, topic.pk):
            raise PermissionDenied("Second opinions are given by the topic's leads and dataset admins.")
        queue_filter = QuestionFilter.for_queue(request.GET)
        queue_filter.apply(Question.objects.none(), topic=topic)
    except DatasetError as exc:
        messages.error(request, exc.message)
        return redirect("labeling:review", topic_id=topic.pk)
    config = {
        "queue": queue,
        "reasons": topic.review_reasons or [],
        "undoUrl": reverse("api-review-undo"),
        "examplesUrl": reverse("labeling:examples", args=[topic.pk]),
        "topic": topic.pk,
        "topicName": topic.name,
        "user": request.user.get_username(),
        "nextUrl": reverse("api-review-next"),
        "reviewUrl": reverse("api-question-review", args=[0]).replace("/0/", "/{id}/"),
        "leaseUrl": reverse("api-review-lease", args=[0]).replace("/0/", "/{id}/"),
        "leaseSeconds": lease_seconds(),
        "similarUrl": reverse("labeling:similar", args=[topic.pk, 0]).replace("/0/", "/{id}/"),
        "filter": {k: str(v) for k, v in queue_filter.as_params().items()},
        "taxonomy": taxonomy_choices(topic=topic),
    }
    return render(request, "labeling/review.html", {
        "topic": topic, "config": config, "filter_params": queue_filter.as_params(), "queue": queue,
        "guidelines": guidelines_html(topic=topic), "lease_minutes": max(1, round(lease_seconds() / 60)),
        "is_lead": is_topic_lead(request.user, topic.pk)})


@role_required
def reviewer_figures_page(request, topic_id):
    """Reviewer figures: every reviewer's for the topic's leads and dataset admins, one's own otherwise."""
    from labeling.agreement import reviewer_figures, topic_agreement

    topic = _topic_or_404(request.user, topic_id)
    everyone = is_topic_lead(request.user, topic.pk)
    return render(request, "labeling/reviewers.html", {
        "topic": topic, "everyone": everyone,
        "rows": reviewer_figures(topic=topic, reviewers=None if everyone else [request.user]),
        "agreement": topic_agreement(topic=topic) if everyone else None,
    })


@role_required
def intent_examples_json(request, topic_id):
    """The review screen's examples pane (key x): a few approved questions of the given intents."""
    topic = _topic_or_404(request.user, topic_id)
    try:
        intent_ids = ids_parse(request.GET.get("intents", ""), "intents", limit=5)
    except DatasetError as exc:
        return JsonResponse({"error": {"code": exc.code, "message": exc.message}}, status=400)
    return JsonResponse({"intents": intent_examples(topic=topic, intent_ids=intent_ids)})


@role_required
def question_similar(request, topic_id, question_id):
    """The review screen's possible-duplicates pane, loaded after the question is on screen."""
    topic = _topic_or_404(request.user, topic_id)
    question = Question.objects.filter(pk=question_id, topic=topic).first()
    if question is None:
        raise Http404("No such question in this topic.")
    similar = questions_similar(question=question)
    return JsonResponse({"question": question.pk, "similar": similar or [], "timed_out": similar is None})


@role_required
@require_http_methods(["GET", "POST"])
def question_list(request, topic_id):
    topic = _topic_or_404(request.user, topic_id)
    params = request.POST if request.method == "POST" else request.GET
    try:
        question_filter = QuestionFilter.from_params(params)
        queryset = questions_filtered(topic=topic, question_filter=question_filter)
    except DatasetError as exc:
        messages.error(request, exc.message)
        return redirect("labeling:questions", topic_id=topic.pk)
    if request.method == "POST":
        return _bulk_review(request, topic, question_filter, queryset)
    # Counted exactly up to 10,000 rows, estimated past them ("about"); at most 100 pages.
    page = EstimatedCountPaginator(queryset, 50).get_page(request.GET.get("page"))
    reviewers = get_user_model().objects.filter(
        pk__in=Question.objects.filter(topic=topic, reviewed_by__isnull=False)
        .values("reviewed_by").distinct()).order_by("username")
    return render(request, "labeling/list.html", {
        "topic": topic, "page": page, "filter": question_filter, "filter_params": question_filter.as_params(),
        "filter_query": urlencode(question_filter.as_params()), "statuses": Question.Status.choices,
        "sources": Question.Source.choices, "languages": LANGUAGE_CHOICES,
        "judge_verdicts": [*Question.JudgeVerdict.choices, ("disagrees", "Judge disagrees"), ("unjudged", "Not judged")],
        "intents": taxonomy_choices(topic=topic), "reviewers": reviewers, "bulk_actions": BULK_ACTIONS,
        "reasons": list(dict.fromkeys([*(topic.review_reasons or []), *([question_filter.reason] if question_filter.reason else [])])),
    })


def _bulk_review(request, topic, question_filter, queryset):
    action = request.POST.get("action", "")
    scope = request.POST.get("scope", "selected")
    intent = request.POST.get("to_intent") or None
    back = reverse("labeling:questions", args=[topic.pk]) + "?" + urlencode(question_filter.as_params())
    try:
        if action == "relabel" and not intent:
            raise DatasetError("Choose the intent to relabel to.")
        intent_id = id_parse(intent, "to_intent") if intent else None
        if scope != "all":
            ids = [id_parse(i, "ids") for i in request.POST.getlist("ids")]
            if not ids:
                raise DatasetError("Select some questions first, or choose 'everything the filter matches'.")
            foreign = questions_outside_topic(topic=topic, question_ids=ids)
            if foreign:
                raise DatasetError(f"Question(s) {', '.join(map(str, foreign))} are not in topic {topic.name}; "
                                   "nothing was changed.")
            # Still narrowed by the filter: the service re-checks it under the lock.
            queryset = queryset.filter(pk__in=ids)
        result = questions_review_matching(queryset=queryset, actor=request.user, action=action,
                                           intent_id=intent_id, via="ui")
    except (DatasetError, ValueError) as exc:
        messages.error(request, getattr(exc, "message", "Invalid selection."))
        return redirect(back)
    messages.success(request, f"{action.capitalize()}: {result.changed} question(s).")
    for note in result.notes():
        messages.warning(request, note)
    return redirect(back)
