"""An evaluation as one JSON document: what the API's GET returns and `evaluate --json` prints."""

from evaluation.models import Evaluation

DOWNLOADABLE = ("model.json", "arrays.npz", "questions.npz")  # evaluation.services.STORED_FILES


def evaluation_document(evaluation: Evaluation) -> dict:
    """Parameters, status and progress, the counts trained and tested on, the figures (metrics),
    warnings, timings and the model's files."""
    from django.urls import reverse

    succeeded = evaluation.status == Evaluation.Status.SUCCEEDED
    return {
        "id": evaluation.pk,
        "topic": {"id": evaluation.topic_id, "name": evaluation.topic.name},
        "status": evaluation.status,
        "stage": evaluation.stage,
        "percent": evaluation.percent,
        "error": evaluation.error,
        "train_spec": evaluation.train_spec or "default",
        "test_spec": evaluation.test_spec or "default",
        "include_out_of_scope": evaluation.include_out_of_scope,
        "backend": evaluation.backend,
        "parameters": evaluation.parameters,
        "seed": evaluation.seed,
        "train_count": evaluation.train_count,
        "test_count": evaluation.test_count,
        "intent_count": evaluation.intent_count,
        "metrics": evaluation.metrics,
        "warnings": evaluation.warnings,
        "timings": evaluation.timings,
        "files": [reverse("api-evaluation-files", args=[evaluation.pk, name]) for name in DOWNLOADABLE]
        if succeeded else [],
        "created_by": evaluation.created_by.get_username() if evaluation.created_by else None,
        "created_at": evaluation.created_at.isoformat() if evaluation.created_at else None,
        "started_at": evaluation.started_at.isoformat() if evaluation.started_at else None,
        "finished_at": evaluation.finished_at.isoformat() if evaluation.finished_at else None,
    }


def label_issue_rows(*, evaluation: Evaluation, limit: int) -> list[dict]:
    issues = (evaluation.label_issues.select_related("question", "given_intent", "suggested_intent")
              .order_by("rank")[:limit])
    return [{"rank": issue.rank, "question": issue.question_id, "text": issue.question.text,
             "status": issue.question.status,
             "given_intent": {"id": issue.given_intent_id, "name": issue.given_intent.name},
             "given_confidence": issue.given_confidence,
             "suggested_intent": {"id": issue.suggested_intent_id, "name": issue.suggested_intent.name},
             "confidence": issue.confidence} for issue in issues]
