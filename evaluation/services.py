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
import os
import secrets
import shutil
import time
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.storage import export_storage, storage_file_open, storage_file_put, storage_folder_delete, storage_is_local
from datasets.models import IntentNode, Question, Topic
from datasets.selectors import intent_infos
from datasets.services import DatasetError
from evaluation import metrics
from evaluation.backends import BACKENDS, MODEL_ARRAYS, MODEL_JSON, backend_load
from evaluation.models import Evaluation, LabelIssue
from evaluation.selectors import (
    QUEUE,
    evaluation_data,
    evaluation_data_check,
    evaluation_preflight,
    label_issues_current,
    question_texts,
    spec_parse,
)

log = logging.getLogger(__name__)

LEARNING_CURVE_SIZES = (10, 25, 50, 100, 200)
FOLDS = 5
LABEL_ISSUES_KEPT = 2000
# Above this many training questions an intent is trained on a seeded sample of this many (bottom-k by
# a seeded hash of the id): the fit, the cross-validation and the learning curve then cost at most
# cap x intents rows whatever the topic's size. CLINC150 (about 120 per intent) is far below it.
MAX_TRAIN_PER_INTENT = 500
# Test questions (and capped training ones) are scored this many at a time, their texts read by id.
SCORE_CHUNK = 20000
# Up to this many questions outside the training sample, their probabilities are held and ranked by
# cleanlab with the sample's; past it they are checked chunk by chunk (see _execute).
LABEL_ISSUES_HELD = 50000
PREDICT_MAX_TEXTS = 1000
TOP_K = 3
QUESTIONS_FILE = "questions.npz"
# Every file a finished evaluation stores (the same list the API offers for download).
STORED_FILES = (MODEL_JSON, MODEL_ARRAYS, QUESTIONS_FILE)


# Where an evaluation's files are ------------------------------------------------------------
# In the exports storage (config/storage.py: EXPORT_ROOT, or an S3-compatible bucket), beside the
# exports, as evaluations/<id>/<file>: the worker that trains is often not the web process that
# predicts or serves the files. EXPORT_ROOT on each machine only holds a work folder while training
# and, with an object store, a local copy of the models this machine has used.

def evaluation_stored_folder(evaluation_id: int) -> str:
    """The name of the folder holding an evaluation's files in the exports storage."""
    return f"evaluations/{evaluation_id}"


def evaluation_work_folder(evaluation_id: int) -> Path:
    """The local folder the job writes the model files in before they go to the storage."""
    return Path(settings.EXPORT_ROOT) / "evaluations" / f"{evaluation_id}.partial"


def evaluation_copy_folder(evaluation_id: int) -> Path:
    """This machine's copies of an evaluation's files fetched from an object store (unused when local):
    one subfolder named by the evaluation's finish time, so an id that a recreated database gives
    again never reads an old copy."""
    return Path(settings.EXPORT_ROOT) / "evaluation-copies" / str(evaluation_id)


def _stored_files_put(evaluation_id: int, work: Path) -> None:
    storage = export_storage()
    folder = evaluation_stored_folder(evaluation_id)
    storage_folder_delete(storage, folder)  # what an earlier attempt left
    for path in sorted(work.iterdir()):
        storage_file_put(storage, f"{folder}/{path.name}", path)


def evaluation_files_local(evaluation: Evaluation) -> Path:
    """A local folder holding the stored files of a finished evaluation: the storage's own folder
    when it is local; otherwise a copy fetched once from the object store into this machine's
    EXPORT_ROOT (a finished evaluation's files never change).

    Raises DatasetError (not_found) when a file is missing from the storage."""
    storage = export_storage()
    folder = evaluation.model_folder or evaluation_stored_folder(evaluation.pk)
    if storage_is_local(storage):
        return Path(storage.path(folder))
    finished = evaluation.finished_at.strftime("%Y%m%dT%H%M%S%f") if evaluation.finished_at else "unfinished"
    copy = evaluation_copy_folder(evaluation.pk) / finished
    if all((copy / name).is_file() for name in STORED_FILES):
        return copy
    # Fetched into a folder of its own, renamed into place when complete: a process reading the copy
    # never sees half a file, and two processes fetching at once both end with a whole copy.
    fetching = copy.with_name(f"{copy.name}.{secrets.token_hex(4)}.partial")
    fetching.mkdir(parents=True)
    try:
        for name in STORED_FILES:
            with storage_file_open(storage, f"{folder}/{name}") as source, (fetching / name).open("wb") as out:
                shutil.copyfileobj(source, out, 1024 * 1024)
        shutil.rmtree(copy, ignore_errors=True)  # an incomplete copy (a machine that stopped mid-fetch)
        try:
            os.rename(fetching, copy)
        except OSError:  # another process put its whole copy there first
            pass
    except FileNotFoundError:
        raise DatasetError(f"The model files of evaluation {evaluation.pk} are missing.", code="not_found") from None
    finally:
        shutil.rmtree(fetching, ignore_errors=True)
    return copy


def evaluation_file_open(evaluation: Evaluation, name: str):
    """(size, stream) of one stored file of a finished evaluation, read from the storage (the caller
    closes the stream). Only the names of STORED_FILES: no path tricks. Raises DatasetError (not_found)."""
    if name not in STORED_FILES or evaluation.status != Evaluation.Status.SUCCEEDED:
        raise DatasetError(f"Evaluation {evaluation.pk} has no file {name!r}.", code="not_found")
    storage = export_storage()
    stored = f"{evaluation.model_folder or evaluation_stored_folder(evaluation.pk)}/{name}"
    try:
        return storage.size(stored), storage_file_open(storage, stored)
    except FileNotFoundError:
        raise DatasetError(f"Evaluation {evaluation.pk} has no file {name!r}.", code="not_found") from None


def evaluation_stored_files_count(*, evaluation_ids) -> int:
    """How many files the evaluations `evaluation_ids` have in the storage."""
    storage = export_storage()
    count = 0
    for evaluation_id in evaluation_ids:
        try:
            count += len(storage.listdir(evaluation_stored_folder(evaluation_id))[1])
        except FileNotFoundError:
            pass
    return count


def evaluation_stored_files_delete(*, evaluation_ids) -> int:
    """Delete the stored files of the evaluations `evaluation_ids`, with their work folder and local
    copy on this machine; returns how many stored files went. For callers that delete evaluation
    rows (one, or a topic's in bulk): call it once their transaction commits."""
    storage = export_storage()
    deleted = 0
    for evaluation_id in evaluation_ids:
        deleted += storage_folder_delete(storage, evaluation_stored_folder(evaluation_id))
        shutil.rmtree(evaluation_work_folder(evaluation_id), ignore_errors=True)
        shutil.rmtree(evaluation_copy_folder(evaluation_id), ignore_errors=True)
    return deleted


def evaluation_create(*, topic: Topic, created_by=None, train_spec: str = "", test_spec: str = "",
                      include_out_of_scope: bool = False, seed: int = 42, learning_curve: bool = True,
                      label_issues: bool = True, folds: int = FOLDS, backend: str = "tfidf-svm",
                      max_train_per_intent: int = MAX_TRAIN_PER_INTENT, enqueue: bool = True) -> Evaluation:
    """Check the request, record the evaluation and queue its job (after commit) on the evaluation queue.

    Raises DatasetError, with nothing created, for an unknown SPEC key or value, a topic with nothing
    reviewed, a single intent, an intent with fewer than two training examples or an empty test set.
    `folds` is the k of the cross-validation that calibrates the confidences and gives the
    out-of-fold probabilities label errors are found with (2 to 10). `max_train_per_intent` (at least 10)
    caps the training questions of an intent: above it the model is fitted on a seeded sample of that
    many, which bounds the job's memory (see docs/evaluation.md, "Large topics").
    `enqueue=False` leaves it queued for the caller to run in-process (evaluation_run).
    """
    from rq import Callback

    from config.queues import enqueue as put_on_queue
    from evaluation.jobs import evaluation_job_failed, evaluation_run_job

    if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= 10:
        raise DatasetError(f"folds must be a whole number from 2 to 10, got {folds!r}.", code="invalid_folds")
    if isinstance(max_train_per_intent, bool) or not isinstance(max_train_per_intent, int) \
            or max_train_per_intent < 10:
        raise DatasetError(f"max_train_per_intent must be a whole number of at least 10, got {max_train_per_intent!r}.",
                           code="invalid_cap")
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
                                         "label_issues": label_issues, "folds": folds,
                                         "max_train_per_intent": max_train_per_intent},
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
        evaluation_stored_files_delete(evaluation_ids=[evaluation_id])
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


def _learning_curve(evaluation: Evaluation, data, y_train, y_curve, *, final_accuracy: float) -> list[dict]:
    """Accuracy when each intent has at most 10, 25, 50, 100, 200 training examples, then all, on the
    learning curve's test set (the test side, or its per-intent sample above the cap)."""
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
        accuracy = float((backend.predict(data.curve_test_texts) == y_curve).mean())
        points.append({"per_intent": size, "examples": int(len(rows)), "accuracy": round(accuracy, 4)})
    points.append({"per_intent": "all", "examples": int(len(y_train)), "accuracy": round(final_accuracy, 4)})
    return points


def _backend_params(evaluation: Evaluation) -> dict:
    backend_class = BACKENDS[evaluation.backend]
    known = backend_class(seed=evaluation.seed).params
    return {key: evaluation.parameters.get(key, value) for key, value in known.items()}


def _scored_in_chunks(backend, ids: np.ndarray):
    """(start, decision values) of `ids`, SCORE_CHUNK questions at a time, their texts read by id: the
    memory of scoring does not grow with the number of questions."""
    for start in range(0, len(ids), SCORE_CHUNK):
        chunk = ids[start:start + SCORE_CHUNK]
        yield start, backend.decision(question_texts(chunk.tolist()))


@dataclass
class IssueCandidates:
    """Likely label errors found so far, at most LABEL_ISSUES_KEPT, the least likely given label first:
    question ids, the given and suggested intents' columns of backend.classes and their probabilities."""

    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    given: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    suggested: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    given_p: np.ndarray = field(default_factory=lambda: np.zeros(0))
    suggested_p: np.ndarray = field(default_factory=lambda: np.zeros(0))
    found: int = 0

    def add(self, ids, given, suggested, given_p, suggested_p, *, found: int) -> None:
        self.found += found
        merged = [np.concatenate([a, b]) for a, b in zip(
            (self.ids, self.given, self.suggested, self.given_p, self.suggested_p),
            (ids, given, suggested, given_p, suggested_p), strict=True)]
        order = np.argsort(merged[3], kind="stable")[:LABEL_ISSUES_KEPT]
        self.ids, self.given, self.suggested, self.given_p, self.suggested_p = (a[order] for a in merged)

    def label_issues(self, evaluation: Evaluation, classes: np.ndarray) -> list[LabelIssue]:
        return [LabelIssue(evaluation=evaluation, question_id=int(pk), rank=rank,
                           given_intent_id=int(classes[g]), suggested_intent_id=int(classes[s]),
                           given_confidence=round(float(gp), 4), confidence=round(float(sp), 4))
                for rank, (pk, g, s, gp, sp) in enumerate(zip(
                    self.ids.tolist(), self.given.tolist(), self.suggested.tolist(), self.given_p.tolist(),
                    self.suggested_p.tolist(), strict=True), start=1)]


def _cleanlab_issues(candidates: IssueCandidates, classes: np.ndarray, ids: np.ndarray, labels: np.ndarray,
                     probabilities: np.ndarray) -> None:
    """cleanlab's confident-learning filter over out-of-sample probabilities, ranked by self-confidence."""
    from cleanlab.filter import find_label_issues

    columns = _labels_index(classes, labels)
    usable = columns >= 0
    ids, columns, probabilities = ids[usable], columns[usable], probabilities[usable]
    # cleanlab wants every class to occur among the labels: drop the columns of classes that do not.
    present = np.unique(columns)
    remap = np.full(len(classes), -1)
    remap[present] = np.arange(len(present))
    probabilities = probabilities[:, present]
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    given = remap[columns]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranked = find_label_issues(given, probabilities, return_indices_ranked_by="self_confidence")
    kept = ranked[:LABEL_ISSUES_KEPT]
    suggested = probabilities[kept].argmax(axis=1)
    candidates.add(ids[kept], present[given[kept]], present[suggested], probabilities[kept, given[kept]],
                   probabilities[kept, suggested], found=len(ranked))


def _confident_thresholds(columns: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Confident learning's per-intent thresholds: the mean probability of an intent over the questions
    labelled with it (cleanlab.count.get_confident_thresholds), from the out-of-fold probabilities."""
    sums = np.zeros(probabilities.shape[1])
    np.add.at(sums, columns, probabilities[np.arange(len(columns)), columns])
    counts = np.bincount(columns, minlength=probabilities.shape[1])
    return np.where(counts > 0, sums / np.maximum(counts, 1), 1.0)


def _confident_learning_chunk(candidates: IssueCandidates, thresholds: np.ndarray, ids: np.ndarray,
                              columns: np.ndarray, probabilities: np.ndarray) -> None:
    """Confident learning's rule on one chunk scored by the final model (cleanlab's
    filter_by="confident_learning"): a question is a likely label error when, among the intents whose
    probability reaches their threshold, the most probable one is not its given intent."""
    usable = columns >= 0
    ids, columns, probabilities = ids[usable], columns[usable], probabilities[usable]
    above = probabilities >= thresholds
    confident = np.where(above, probabilities, -1.0).argmax(axis=1)
    flagged = np.flatnonzero(above.any(axis=1) & (confident != columns))
    suggested = probabilities[flagged].argmax(axis=1)
    candidates.add(ids[flagged], columns[flagged], suggested, probabilities[flagged, columns[flagged]],
                   probabilities[flagged, suggested], found=len(flagged))


def _execute(evaluation: Evaluation) -> None:
    topic = evaluation.topic
    timings: dict[str, float] = {}
    started = clock = time.perf_counter()

    def lap(name):
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    cap = evaluation.parameters.get("max_train_per_intent", MAX_TRAIN_PER_INTENT)
    train, test = spec_parse(evaluation.train_spec, side="train"), spec_parse(evaluation.test_spec, side="test")
    data = evaluation_data(topic=topic, train=train, test=test, include_out_of_scope=evaluation.include_out_of_scope,
                           seed=evaluation.seed, cap=cap)
    evaluation_data_check(topic=topic, data=data)
    infos = intent_infos(topic=topic)
    oos_ids = set(IntentNode.objects.filter(topic=topic, out_of_scope=True).values_list("pk", flat=True))
    y_train = np.asarray(data.train_labels, dtype=np.int64)
    test_ids = np.asarray(data.test_ids, dtype=np.int64)
    y_test = np.asarray(data.test_labels, dtype=np.int64)
    capped_ids = np.asarray(data.capped_ids, dtype=np.int64)
    Evaluation.objects.filter(pk=evaluation.pk).update(
        train_count=len(y_train), test_count=len(y_test), intent_count=len(np.unique(y_train)))
    lap("read")

    _progress(evaluation.pk, "training", 5)
    backend = BACKENDS[evaluation.backend](**_backend_params(evaluation))
    X_train = backend.features_fit(data.train_texts)
    backend.classifier_fit(X_train, y_train)
    lap("train")

    folds = evaluation.parameters.get("folds", FOLDS)
    _progress(evaluation.pk, "cross-validation", 20)
    oof = _out_of_fold_decision(backend, X_train, y_train, folds=folds, seed=evaluation.seed,
                                on_fold=lambda n: _progress(evaluation.pk, f"cross-validation: fold {n}/{folds}",
                                                            20 + 35 * n // folds))
    del X_train
    # Calibrate on the rows whose intent every fold trained on (an intent with fewer rows than folds may be
    # missing from a fold's training part, leaving its column at the floor).
    train_columns = _labels_index(backend.classes, y_train)
    has_margin = oof[np.arange(len(y_train)), train_columns] > -1e3
    backend.calibrate(oof[has_margin], y_train[has_margin])
    lap("cross_validation")

    # Label errors: every question gets out-of-sample probabilities (the training sample's out of fold,
    # the test side's and the capped rows' from the final model). Up to LABEL_ISSUES_HELD rows outside
    # the sample they are held and go to cleanlab together; past that, cleanlab ranks the sample and the
    # others are checked chunk by chunk with confident learning's rule and the sample's thresholds.
    find_issues = evaluation.parameters.get("label_issues", True)
    held = len(test_ids) + len(capped_ids) <= LABEL_ISSUES_HELD
    candidates = IssueCandidates()
    oof_probabilities = backend.probabilities(oof) if find_issues else None
    del oof
    thresholds = None
    if find_issues and not held:
        thresholds = _confident_thresholds(train_columns, oof_probabilities)
        _cleanlab_issues(candidates, backend.classes, np.asarray(data.train_ids, dtype=np.int64), y_train,
                         oof_probabilities)
        oof_probabilities = None
    held_probabilities = []

    _progress(evaluation.pk, "testing", 56)
    y_pred = np.empty(len(y_test), dtype=np.int64)
    for start, decision in _scored_in_chunks(backend, test_ids):
        stop = start + len(decision)
        y_pred[start:stop] = backend.classes[decision.argmax(axis=1)]
        if find_issues:
            probabilities = backend.probabilities(decision)
            if held:
                held_probabilities.append(probabilities)
            else:
                _confident_learning_chunk(candidates, thresholds, test_ids[start:stop],
                                          _labels_index(backend.classes, y_test[start:stop]), probabilities)
    correct = int((y_pred == y_test).sum())
    accuracy = correct / len(y_test)
    per_intent = metrics.per_intent_scores(y_test, y_pred, infos)
    # 95 % intervals: Wilson for the accuracy; a seeded bootstrap stratified by intent, on the label arrays,
    # for the F1s (tens of milliseconds on CLINC150; see docs/evaluation.md, "How sure are the figures").
    f1_intervals, macro_f1_interval = metrics.bootstrap_f1_intervals(y_test, y_pred, seed=evaluation.seed)
    metrics.intent_gate_verdicts(per_intent, f1_intervals, topic.gate_intent)
    accuracy_interval = [round(bound, 4) for bound in metrics.wilson_interval(correct, len(y_test))]
    figures = {
        "accuracy": round(accuracy, 4),
        "accuracy_interval": accuracy_interval,
        "macro_f1": round(float(np.mean([row["f1"] for row in per_intent])), 4),
        "macro_f1_interval": macro_f1_interval,
        "intervals": {"confidence": metrics.CONFIDENCE, "accuracy": "wilson",
                      "f1": "bootstrap, stratified by intent", "resamples": metrics.BOOTSTRAP_RESAMPLES,
                      "seed": evaluation.seed},
        "train_count": len(y_train), "test_count": len(y_test), "intent_count": int(len(backend.classes)),
        "per_intent": per_intent,
        "confusion_pairs": metrics.confusion_pairs(y_test, y_pred, test_ids, infos, texts_of=question_texts),
        "levels": metrics.level_accuracy(y_test, y_pred, infos),
        "out_of_scope": metrics.out_of_scope_recall(y_test, y_pred, oos_ids),
        "gates": metrics.gates(accuracy=accuracy, per_intent=per_intent, gate_accuracy=topic.gate_accuracy,
                               gate_intent=topic.gate_intent, accuracy_interval=accuracy_interval),
        "cap": {"max_train_per_intent": cap, "capped_intents": data.capped_intents,
                "left_out": len(capped_ids), "curve_test_count": len(data.curve_test_positions)},
    }
    untrained = sorted(set(y_test.tolist()) - set(backend.classes.tolist()))
    if untrained:
        data.warnings.append(f"{len(untrained)} intent(s) of the test set have no training questions; their test "
                             "questions count as errors.")
    lap("test")

    if evaluation.parameters.get("learning_curve", True):
        curve = np.asarray(data.curve_test_positions, dtype=np.int64)
        curve_accuracy = float((y_pred[curve] == y_test[curve]).mean())
        figures["learning_curve"] = _learning_curve(evaluation, data, y_train, y_test[curve],
                                                    final_accuracy=curve_accuracy)
    else:
        figures["learning_curve"] = []
    data.curve_test_texts = []
    lap("learning_curve")

    issues = []
    if find_issues:
        _progress(evaluation.pk, "looking for label errors", 88)
        for start, decision in _scored_in_chunks(backend, capped_ids):
            stop = start + len(decision)
            probabilities = backend.probabilities(decision)
            if held:
                held_probabilities.append(probabilities)
            else:
                _confident_learning_chunk(candidates, thresholds, capped_ids[start:stop],
                                          _labels_index(backend.classes, np.asarray(data.capped_labels[start:stop])),
                                          probabilities)
        if held:
            _cleanlab_issues(candidates, backend.classes,
                             np.concatenate([np.asarray(data.train_ids, dtype=np.int64), test_ids, capped_ids]),
                             np.concatenate([y_train, y_test, np.asarray(data.capped_labels, dtype=np.int64)]),
                             np.vstack([oof_probabilities, *held_probabilities]))
        issues = candidates.label_issues(evaluation, backend.classes)
        figures["label_issues"] = {"found": candidates.found, "kept": len(issues),
                                   "checked": len(y_train) + len(y_test) + len(capped_ids)}
    lap("label_issues")

    _progress(evaluation.pk, "saving the model", 95)
    work = evaluation_work_folder(evaluation.pk)
    shutil.rmtree(work, ignore_errors=True)
    try:
        backend.save(work)
        with (work / QUESTIONS_FILE).open("wb") as out:
            # The test questions' given and predicted intents, in test_ids' order: two evaluations tested on the
            # same questions are compared question by question (McNemar's test, evaluation.comparison).
            np.savez_compressed(out, train_ids=np.asarray(data.train_ids, dtype=np.int64), test_ids=test_ids,
                                capped_ids=capped_ids, test_labels=y_test, test_predictions=y_pred)
        figures["model_bytes"] = sum(p.stat().st_size for p in work.iterdir())
        _stored_files_put(evaluation.pk, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lap("save")
    timings["total"] = round(time.perf_counter() - started, 3)
    with transaction.atomic():
        LabelIssue.objects.bulk_create(issues, batch_size=1000)
        finished = Evaluation.objects.filter(pk=evaluation.pk, status=Evaluation.Status.RUNNING).update(
            status=Evaluation.Status.SUCCEEDED, metrics=figures, timings=timings, warnings=data.warnings,
            model_folder=evaluation_stored_folder(evaluation.pk), stage="done", percent=100,
            finished_at=timezone.now())
        if not finished:  # deleted (or failed by its callback) meanwhile
            transaction.set_rollback(True)
    if not finished:
        evaluation_stored_files_delete(evaluation_ids=[evaluation.pk])


# Using a finished evaluation ----------------------------------------------------------------

@lru_cache(maxsize=4)
def _model_cached(folder: str, modified: float):
    return backend_load(Path(folder))


def evaluation_model(evaluation: Evaluation):
    """The trained backend of a succeeded evaluation (a few recently used ones stay loaded)."""
    if evaluation.status != Evaluation.Status.SUCCEEDED or not evaluation.model_folder:
        raise DatasetError(f"Evaluation {evaluation.pk} has no model: it is {evaluation.status}.",
                           code="not_ready")
    folder = evaluation_files_local(evaluation)
    try:
        return _model_cached(str(folder), (folder / MODEL_ARRAYS).stat().st_mtime)
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
    """Delete an evaluation, its label issues and (after commit) its stored files."""
    evaluation_id = evaluation.pk
    with transaction.atomic():
        evaluation.delete()
        transaction.on_commit(lambda: evaluation_stored_files_delete(evaluation_ids=[evaluation_id]))
