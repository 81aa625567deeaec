"""Writes of the evaluation app: create an evaluation, run it (train, test, learning curve, label
errors), predict with its model, send likely label errors back to review.

The run reads the topic's questions once (evaluation.selectors.evaluation_data), fits the
backend on the training side, and computes from the same feature matrix:
- out-of-fold margins (k-fold over the training side), which calibrate the confidences
  (temperature) and, with the test side's margins from the final model, give every question an
  out-of-sample probability for cleanlab's find_label_issues;
- the test figures (evaluation.metrics);
- the learning curve (seeded per-intent subsamples, each a fresh fit, the same test set).
"""

import logging
import shutil
import time
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from datasets.models import IntentNode, Question, Topic
from datasets.selectors import intent_infos
from datasets.services import DatasetError
from evaluation import metrics
from evaluation.backends import BACKENDS, backend_load
from evaluation.models import Evaluation, LabelIssue
from evaluation.selectors import (
    QUEUE,
    evaluation_data,
    evaluation_data_check,
    evaluation_preflight,
    label_issues_current,
    spec_parse,
)

log = logging.getLogger(__name__)

LEARNING_CURVE_SIZES = (10, 25, 50, 100, 200)
FOLDS = 5
LABEL_ISSUES_KEPT = 2000
PREDICT_MAX_TEXTS = 1000
TOP_K = 3
QUESTIONS_FILE = "questions.npz"


def evaluation_folder(evaluation: Evaluation) -> Path:
    return Path(settings.EXPORT_ROOT) / "evaluations" / str(evaluation.pk)


def evaluation_create(*, topic: Topic, created_by=None, train_spec: str = "", test_spec: str = "",
                      include_out_of_scope: bool = False, seed: int = 42, learning_curve: bool = True,
                      label_issues: bool = True, folds: int = FOLDS, backend: str = "tfidf-svm",
                      enqueue: bool = True) -> Evaluation:
    """Check the request, record the evaluation and queue its job (after commit) on the evaluation queue.

    Raises DatasetError, with nothing created, for an unknown SPEC key or value, a topic with nothing
    reviewed, a single intent, an intent with fewer than two training examples or an empty test set.
    `folds` is the k of the cross-validation that calibrates the confidences and gives the
    out-of-fold probabilities label errors are found with (2 to 10).
    `enqueue=False` leaves it queued for the caller to run in-process (evaluation_run).
    """
    from rq import Callback

    from config.queues import enqueue as put_on_queue
    from evaluation.jobs import evaluation_job_failed, evaluation_run_job

    if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= 10:
        raise DatasetError(f"folds must be a whole number from 2 to 10, got {folds!r}.", code="invalid_folds")
    if backend not in BACKENDS:
        raise DatasetError(f"Unknown backend {backend!r}: use {', '.join(BACKENDS)}.", code="invalid_backend")
    train, test = spec_parse(train_spec, side="train"), spec_parse(test_spec, side="test")
    if (train is None) != (test is None):
        raise DatasetError("Give both --train and --test SPECs, or neither (the default plan).", code="invalid_spec")
    evaluation_preflight(topic=topic, train=train, test=test, include_out_of_scope=include_out_of_scope)
    with transaction.atomic():
        evaluation = Evaluation.objects.create(
            topic=topic, created_by=created_by, train_spec=(train_spec or "").strip(),
            test_spec=(test_spec or "").strip(), include_out_of_scope=include_out_of_scope, seed=seed,
            backend=backend, parameters={**BACKENDS[backend](seed=seed).params, "learning_curve": learning_curve,
                                         "label_issues": label_issues, "folds": folds},
        )
        if enqueue:
            evaluation.job_id = put_on_queue(evaluation_run_job, evaluation.pk, queue=QUEUE,
                                             job_id=f"evaluation-{evaluation.pk}",
                                             on_failure=Callback(evaluation_job_failed))
            evaluation.save(update_fields=["job_id"])
    return evaluation


# Who follows an evaluation running in this process (the CLI's --wait without a worker): id -> callback.
progress_listeners: dict = {}


def _progress(evaluation_id: int, stage: str, percent: int) -> None:
    Evaluation.objects.filter(pk=evaluation_id).update(stage=stage, percent=percent)
    listener = progress_listeners.get(evaluation_id)
    if listener is not None:
        listener(stage, percent)


def evaluation_run(*, evaluation_id: int) -> bool:
    """Run a queued evaluation: queued -> running -> succeeded or failed (error stored).

    The queued -> running step is a conditional UPDATE, so a job delivered twice (or the CLI and
    a worker) runs it once; returns False when it was not queued any more. A DatasetError fails
    the evaluation with its message; any other exception also re-raises (a bug, for the logs).
    """
    claimed = Evaluation.objects.filter(pk=evaluation_id, status=Evaluation.Status.QUEUED).update(
        status=Evaluation.Status.RUNNING, started_at=timezone.now(), error="", stage="reading", percent=0)
    if not claimed:
        log.info("evaluation %s is not queued any more; nothing to do", evaluation_id)
        return False
    evaluation = Evaluation.objects.select_related("topic").get(pk=evaluation_id)
    try:
        _execute(evaluation)
    except Exception as exc:
        message = exc.message if isinstance(exc, DatasetError) else f"{type(exc).__name__}: {exc}"
        Evaluation.objects.filter(pk=evaluation_id).update(status=Evaluation.Status.FAILED, error=message,
                                                           stage="failed", finished_at=timezone.now())
        shutil.rmtree(evaluation_folder(evaluation), ignore_errors=True)
        if not isinstance(exc, DatasetError):
            raise
    return True


def _labels_index(classes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Column of each label in `classes`, -1 where the label is not a class."""
    columns = np.searchsorted(classes, labels)
    columns = np.minimum(columns, len(classes) - 1)
    return np.where(classes[columns] == labels, columns, -1)


def _out_of_fold_decision(backend, X, y: np.ndarray, *, folds: int, seed: int, on_fold) -> np.ndarray:
    """Margins of every training row from an SVM fitted without its fold (columns = backend.classes)."""
    from sklearn.model_selection import StratifiedKFold

    decision = np.full((X.shape[0], len(backend.classes)), np.float32(-1e4), dtype=np.float32)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # intents with fewer rows than folds: expected
        for number, (fit_rows, held_rows) in enumerate(splitter.split(np.zeros(len(y)), y), start=1):
            classes, coef, intercept = backend.svm_fit(X[fit_rows], y[fit_rows])
            decision[np.ix_(held_rows, np.searchsorted(backend.classes, classes))] = backend.svm_decision(
                X[held_rows], coef, intercept)
            on_fold(number)
    return decision


def _learning_curve(evaluation: Evaluation, data, y_train, y_test, *, final_accuracy: float) -> list[dict]:
    """Accuracy when each intent has at most 10, 25, 50, 100, 200 training examples, then all."""
    counts = np.bincount(np.unique(y_train, return_inverse=True)[1])
    largest = int(counts.max())
    sizes = [size for size in LEARNING_CURVE_SIZES if size < largest]
    rng = np.random.default_rng(evaluation.seed)
    order = rng.permutation(len(y_train))  # one seeded order: each subsample contains the smaller ones
    rank_in_intent = np.empty(len(y_train), dtype=np.int64)
    seen: dict[int, int] = {}
    for i in order.tolist():
        label = int(y_train[i])
        rank_in_intent[i] = seen.get(label, 0)
        seen[label] = rank_in_intent[i] + 1
    points = []
    for number, size in enumerate(sizes):
        _progress(evaluation.pk, f"learning curve: {size} per intent", 60 + 25 * number // max(len(sizes), 1))
        rows = np.flatnonzero(rank_in_intent < size)
        backend = BACKENDS[evaluation.backend](**_backend_params(evaluation))
        backend.fit([data.train_texts[i] for i in rows], y_train[rows])
        accuracy = float((backend.predict(data.test_texts) == y_test).mean())
        points.append({"per_intent": size, "examples": int(len(rows)), "accuracy": round(accuracy, 4)})
    points.append({"per_intent": "all", "examples": int(len(y_train)), "accuracy": round(final_accuracy, 4)})
    return points


def _backend_params(evaluation: Evaluation) -> dict:
    backend_class = BACKENDS[evaluation.backend]
    known = backend_class(seed=evaluation.seed).params
    return {key: evaluation.parameters.get(key, value) for key, value in known.items()}


def _label_issues(evaluation: Evaluation, backend, ids: np.ndarray, labels: np.ndarray,
                  probabilities: np.ndarray) -> tuple[list[LabelIssue], int]:
    """cleanlab's confident-learning filter over out-of-sample probabilities, ranked by self-confidence."""
    from cleanlab.filter import find_label_issues

    columns = _labels_index(backend.classes, labels)
    usable = columns >= 0
    ids, columns, probabilities = ids[usable], columns[usable], probabilities[usable]
    # cleanlab wants every class to occur among the labels: drop the columns of classes that do not.
    present = np.unique(columns)
    remap = np.full(len(backend.classes), -1)
    remap[present] = np.arange(len(present))
    probabilities = probabilities[:, present]
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    given = remap[columns]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranked = find_label_issues(given, probabilities, return_indices_ranked_by="self_confidence")
    kept = ranked[:LABEL_ISSUES_KEPT]
    suggested = probabilities[kept].argmax(axis=1)
    issues = [
        LabelIssue(evaluation=evaluation, question_id=int(ids[i]), rank=rank,
                   given_intent_id=int(backend.classes[present[given[i]]]),
                   suggested_intent_id=int(backend.classes[present[s]]),
                   given_confidence=round(float(probabilities[i, given[i]]), 4),
                   confidence=round(float(probabilities[i, s]), 4))
        for rank, (i, s) in enumerate(zip(kept.tolist(), suggested.tolist(), strict=True), start=1)
    ]
    return issues, len(ranked)


def _execute(evaluation: Evaluation) -> None:
    topic = evaluation.topic
    timings: dict[str, float] = {}
    started = clock = time.perf_counter()

    def lap(name):
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    train, test = spec_parse(evaluation.train_spec, side="train"), spec_parse(evaluation.test_spec, side="test")
    data = evaluation_data(topic=topic, train=train, test=test, include_out_of_scope=evaluation.include_out_of_scope,
                           seed=evaluation.seed)
    evaluation_data_check(topic=topic, data=data)
    infos = intent_infos(topic=topic)
    oos_ids = set(IntentNode.objects.filter(topic=topic, out_of_scope=True).values_list("pk", flat=True))
    y_train = np.asarray(data.train_labels, dtype=np.int64)
    y_test = np.asarray(data.test_labels, dtype=np.int64)
    Evaluation.objects.filter(pk=evaluation.pk).update(
        train_count=len(y_train), test_count=len(y_test), intent_count=len(np.unique(y_train)))
    lap("read")

    _progress(evaluation.pk, "training", 5)
    backend = BACKENDS[evaluation.backend](**_backend_params(evaluation))
    X_train = backend.features_fit(data.train_texts)
    backend.classifier_fit(X_train, y_train)
    X_test = backend.features(data.test_texts)
    test_decision = backend.decision(X_test)
    lap("train")

    folds = evaluation.parameters.get("folds", FOLDS)
    _progress(evaluation.pk, "cross-validation", 20)
    oof = _out_of_fold_decision(backend, X_train, y_train, folds=folds, seed=evaluation.seed,
                                on_fold=lambda n: _progress(evaluation.pk, f"cross-validation: fold {n}/{folds}",
                                                            20 + 35 * n // folds))
    # Calibrate on the rows whose intent every fold trained on (an intent with fewer rows than folds may be
    # missing from a fold's training part, leaving its column at the floor).
    columns = _labels_index(backend.classes, y_train)
    has_margin = oof[np.arange(len(y_train)), columns] > -1e3
    backend.calibrate(oof[has_margin], y_train[has_margin])
    lap("cross_validation")

    y_pred = backend.classes[test_decision.argmax(axis=1)]
    accuracy = float((y_pred == y_test).mean())
    per_intent = metrics.per_intent_scores(y_test, y_pred, infos)
    figures = {
        "accuracy": round(accuracy, 4),
        "macro_f1": round(float(np.mean([row["f1"] for row in per_intent])), 4),
        "train_count": len(y_train), "test_count": len(y_test), "intent_count": int(len(backend.classes)),
        "per_intent": per_intent,
        "confusion_pairs": metrics.confusion_pairs(y_test, y_pred, data.test_texts, infos),
        "levels": metrics.level_accuracy(y_test, y_pred, infos),
        "out_of_scope": metrics.out_of_scope_recall(y_test, y_pred, oos_ids),
        "gates": metrics.gates(accuracy=accuracy, per_intent=per_intent, gate_accuracy=topic.gate_accuracy,
                               gate_intent=topic.gate_intent),
    }
    untrained = sorted(set(y_test.tolist()) - set(backend.classes.tolist()))
    if untrained:
        data.warnings.append(f"{len(untrained)} intent(s) of the test set have no training questions; their test "
                             "questions count as errors.")
    lap("test")

    if evaluation.parameters.get("learning_curve", True):
        figures["learning_curve"] = _learning_curve(evaluation, data, y_train, y_test, final_accuracy=accuracy)
    else:
        figures["learning_curve"] = []
    lap("learning_curve")

    issues = []
    if evaluation.parameters.get("label_issues", True):
        _progress(evaluation.pk, "looking for label errors", 88)
        ids = np.asarray(data.train_ids + data.test_ids, dtype=np.int64)
        labels = np.concatenate([y_train, y_test])
        probabilities = np.vstack([backend.probabilities(oof), backend.probabilities(test_decision)])
        issues, found = _label_issues(evaluation, backend, ids, labels, probabilities)
        figures["label_issues"] = {"found": found, "kept": len(issues), "checked": len(ids)}
    lap("label_issues")

    _progress(evaluation.pk, "saving the model", 95)
    folder = evaluation_folder(evaluation)
    backend.save(folder)
    with (folder / QUESTIONS_FILE).open("wb") as out:
        np.savez_compressed(out, train_ids=np.asarray(data.train_ids, dtype=np.int64),
                            test_ids=np.asarray(data.test_ids, dtype=np.int64))
    figures["model_bytes"] = sum(p.stat().st_size for p in folder.iterdir())
    lap("save")
    timings["total"] = round(time.perf_counter() - started, 3)
    with transaction.atomic():
        LabelIssue.objects.bulk_create(issues, batch_size=1000)
        finished = Evaluation.objects.filter(pk=evaluation.pk, status=Evaluation.Status.RUNNING).update(
            status=Evaluation.Status.SUCCEEDED, metrics=figures, timings=timings, warnings=data.warnings,
            model_folder=str(folder.relative_to(settings.EXPORT_ROOT)), stage="done", percent=100,
            finished_at=timezone.now())
        if not finished:  # deleted (or failed by its callback) meanwhile
            transaction.set_rollback(True)
    if not finished:
        shutil.rmtree(folder, ignore_errors=True)


# Using a finished evaluation ----------------------------------------------------------------

@lru_cache(maxsize=4)
def _model_cached(folder: str, modified: float):
    return backend_load(Path(folder))


def evaluation_model(evaluation: Evaluation):
    """The trained backend of a succeeded evaluation (a few recently used ones stay loaded)."""
    if evaluation.status != Evaluation.Status.SUCCEEDED or not evaluation.model_folder:
        raise DatasetError(f"Evaluation {evaluation.pk} has no model: it is {evaluation.status}.",
                           code="not_ready")
    folder = Path(settings.EXPORT_ROOT) / evaluation.model_folder
    try:
        return _model_cached(str(folder), (folder / "arrays.npz").stat().st_mtime)
    except OSError:
        raise DatasetError(f"The model files of evaluation {evaluation.pk} are missing.", code="not_found") from None


def texts_validate(texts) -> list[str]:
    """A predict request's texts: a non-empty list of at most PREDICT_MAX_TEXTS strings."""
    if not isinstance(texts, list) or not texts:
        raise DatasetError('Send {"texts": ["...", ...]}: a non-empty list of strings.', code="invalid_texts")
    if len(texts) > PREDICT_MAX_TEXTS:
        raise DatasetError(f"At most {PREDICT_MAX_TEXTS:,} texts per request; got {len(texts):,}.",
                           code="too_many_texts")
    wrong = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if wrong is not None:
        raise DatasetError(f"texts[{wrong}] is not a string.", code="invalid_texts", details={"index": wrong})
    return texts


def evaluation_predict(*, evaluation: Evaluation, texts) -> list[dict]:
    """The top 3 intents, with calibrated confidences, of each text."""
    texts = texts_validate(texts)
    backend = evaluation_model(evaluation)
    probabilities = backend.predict_proba(texts)
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :TOP_K]
    names = dict(IntentNode.objects.filter(pk__in=backend.classes.tolist()).values_list("pk", "name"))
    return [{"text": text, "intents": [{"id": int(backend.classes[j]), "name": names.get(int(backend.classes[j]), ""),
                                        "confidence": round(float(probabilities[i, j]), 4)} for j in row]}
            for i, (text, row) in enumerate(zip(texts, top.tolist(), strict=True))]


def label_issues_send_to_review(*, topic: Topic, actor, top: int, via: str = "ui"):
    """Reset the `top` most likely label errors (current evaluation) that are still reviewed to pending,
    through the audited bulk review service, so a reviewer decides on them again. Returns its result."""
    from labeling.services import questions_review_matching

    if top < 1:
        raise DatasetError("Send at least one question back to review.")
    ids = list(label_issues_current(topic_id=topic.pk).values_list("question_id", flat=True)[:top])
    queryset = Question.objects.filter(pk__in=ids, topic=topic,
                                       status__in=[Question.Status.APPROVED, Question.Status.RELABELED])
    return questions_review_matching(queryset=queryset, actor=actor, action="reset", via=via)


def evaluation_delete(*, evaluation: Evaluation) -> None:
    """Delete an evaluation, its label issues and (after commit) its model files."""
    folder = evaluation_folder(evaluation)
    evaluation.delete()
    transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))
