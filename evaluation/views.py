"""HTML pages of evaluations: a topic's evaluations, one evaluation's figures and charts, two side by side
(with whether their accuracy difference is significant).

Every page needs a login and shows only topics the user reviews (others answer 404). Charts are
plain HTML bars and inline SVG, drawn from geometry computed here: no CDN. The one script is the
static evaluation/progress.js, on the page of a queued or running evaluation, which follows it.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from config.input import id_parse
from datasets.permissions import is_dataset_admin, topics_for_reviewer
from datasets.services import DatasetError
from evaluation.comparison import accuracy_difference
from evaluation.documents import label_issue_rows
from evaluation.models import Evaluation
from evaluation.selectors import evaluations_visible_to
from evaluation.services import label_issues_send_to_review

CURVE_WIDTH, CURVE_HEIGHT, CURVE_PAD = 520, 220, 40


def _evaluation_or_404(user, pk) -> Evaluation:
    evaluation = evaluations_visible_to(user).filter(pk=pk).first()
    if evaluation is None:
        raise Http404("No such evaluation among the topics you review.")
    return evaluation


def learning_curve_chart(points: list[dict]) -> dict | None:
    """Geometry of the learning curve: accuracy (0-1, y) against training examples (x, log-spaced by index)."""
    if not points:
        return None
    inner_w, inner_h = CURVE_WIDTH - 2 * CURVE_PAD, CURVE_HEIGHT - 2 * CURVE_PAD
    step = inner_w / max(len(points) - 1, 1)
    dots = [{"x": round(CURVE_PAD + i * step, 1), "y": round(CURVE_PAD + (1 - p["accuracy"]) * inner_h, 1),
             "label": str(p["per_intent"]), "examples": p["examples"], "accuracy": p["accuracy"]}
            for i, p in enumerate(points)]
    return {"width": CURVE_WIDTH, "height": CURVE_HEIGHT, "dots": dots,
            "polyline": " ".join(f"{d['x']},{d['y']}" for d in dots),
            "axis_y": CURVE_HEIGHT - CURVE_PAD, "label_y": CURVE_HEIGHT - CURVE_PAD + 16,
            "grid": [{"y": round(CURVE_PAD + (1 - v) * inner_h, 1), "value": v} for v in (0.0, 0.5, 0.9, 1.0)],
            "x0": CURVE_PAD, "x1": CURVE_WIDTH - CURVE_PAD}


def f1_bar(row: dict, gate: float, more: dict[int, int | None]) -> dict:
    """One intent's F1 bar: its width, its verdict against the gate (an evaluation stored before the intervals
    has only pass or fail, from the F1 alone) and, with an interval, the whisker's position."""
    verdict = row.get("gate") or ("fail" if row["f1"] < gate else "pass")
    bar = {**row, "width": round(100 * row["f1"], 1), "verdict": verdict, "failing": verdict == "fail",
           "uncertain": verdict == "uncertain", "more_test_questions": more.get(row["id"])}
    interval = row.get("f1_interval")
    if interval:
        bar["whisker_left"] = round(100 * interval[0], 1)
        bar["whisker_width"] = round(100 * (interval[1] - interval[0]), 1)
    return bar


def _figures(evaluation: Evaluation) -> dict:
    m = evaluation.metrics or {}
    gate = evaluation.topic.gate_intent
    more = {row["id"]: row["more_test_questions"]
            for row in ((m.get("gates") or {}).get("intent") or {}).get("uncertain", [])}
    bars = [f1_bar(row, gate, more) for row in m.get("per_intent", [])]
    return {"evaluation": evaluation, "m": m, "bars": bars, "gate_left": round(100 * gate, 1),
            "curve": learning_curve_chart(m.get("learning_curve", []))}


@login_required
def evaluation_list(request, topic_id):
    topic = topics_for_reviewer(request.user).filter(pk=topic_id).first()
    if topic is None:
        raise Http404("No such topic among the ones you review.")
    evaluations = Evaluation.objects.filter(topic=topic).order_by("-created_at", "-id")[:100]
    return render(request, "evaluation/list.html", {"topic": topic, "evaluations": evaluations,
                                                    "is_dataset_admin": is_dataset_admin(request.user)})


@login_required
def evaluation_page(request, pk):
    evaluation = _evaluation_or_404(request.user, pk)
    others = Evaluation.objects.filter(topic=evaluation.topic, status=Evaluation.Status.SUCCEEDED).exclude(
        pk=evaluation.pk).order_by("-created_at")[:20]
    figures = _figures(evaluation)
    return render(request, "evaluation/page.html", {
        "figures": figures, "evaluation": evaluation, "m": figures["m"], "topic": evaluation.topic, "others": others,
        "issues": label_issue_rows(evaluation=evaluation, limit=50),
        "in_progress": evaluation.status in (Evaluation.Status.QUEUED, Evaluation.Status.RUNNING),
    })


@login_required
def evaluation_compare(request):
    """Two evaluations side by side (?a=ID&b=ID), e.g. before and after a review round."""
    try:  # ASCII digits within a bigint, as the API's compare (int() took "١" and 20-digit ids: a 500)
        a, b = id_parse(request.GET.get("a", ""), "a"), id_parse(request.GET.get("b", ""), "b")
    except DatasetError:
        raise Http404("Give two evaluation ids: ?a=1&b=2.") from None
    left, right = _evaluation_or_404(request.user, a), _evaluation_or_404(request.user, b)
    left_rows = {row["id"]: row for row in (left.metrics or {}).get("per_intent", [])}
    rows = []
    for row in (right.metrics or {}).get("per_intent", []):
        before = left_rows.get(row["id"])
        rows.append({"intent": row, "before": before["f1"] if before else None, "after": row["f1"],
                     "change": round(row["f1"] - before["f1"], 4) if before else None})
    rows.sort(key=lambda r: (r["change"] if r["change"] is not None else 0, r["intent"]["number"]))
    return render(request, "evaluation/compare.html", {"left": _figures(left), "right": _figures(right),
                                                       "rows": rows, "topic": right.topic,
                                                       "difference": accuracy_difference(a=left, b=right)})


@login_required
@require_POST
def label_issues_review(request, pk):
    """Send the top N likely label errors of the topic back to the review queue (reset to pending, audited)."""
    evaluation = _evaluation_or_404(request.user, pk)
    try:
        top = int(request.POST.get("top", "0"))
        result = label_issues_send_to_review(topic=evaluation.topic, actor=request.user, top=top, via="ui")
    except (DatasetError, ValueError) as exc:
        messages.error(request, getattr(exc, "message", "Give how many questions to send back, e.g. 50."))
        return redirect("evaluation:page", pk=evaluation.pk)
    messages.success(request, f"{result.changed} question(s) are back in the review queue; review them with "
                              "“likely label errors first”.")
    return redirect("evaluation:page", pk=evaluation.pk)
