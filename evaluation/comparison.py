"""Is the accuracy difference between two evaluations more than test-set noise?

Two evaluations tested on the same questions (the same `test_ids` in their questions.npz) are compared
question by question: McNemar's exact test on the questions one got right and the other wrong (the
questions both got right or both wrong say nothing about which model is better). Tested on different
questions, or stored before the per-question outcomes were kept, only the two accuracies can be
compared: a two-proportion z-test, which ignores the pairing and says so.
"""

import io
from dataclasses import dataclass

import numpy as np

from config.storage import export_storage, storage_file_open
from evaluation.models import Evaluation
from evaluation.services import QUESTIONS_FILE, evaluation_stored_folder

SIGNIFICANCE = 0.05


@dataclass
class TestOutcomes:
    """An evaluation's test questions (ids, sorted) and whether each was predicted right (None when the
    evaluation was stored before the predictions were kept)."""

    ids: np.ndarray
    correct: np.ndarray | None


def evaluation_test_outcomes(evaluation: Evaluation) -> TestOutcomes | None:
    """The test questions of a finished evaluation and, when stored, whether each was right; None when its
    questions.npz is not in the storage (a failed or deleted evaluation's)."""
    if evaluation.status != Evaluation.Status.SUCCEEDED:
        return None
    folder = evaluation.model_folder or evaluation_stored_folder(evaluation.pk)
    try:
        with storage_file_open(export_storage(), f"{folder}/{QUESTIONS_FILE}") as stream:
            content = io.BytesIO(stream.read())  # np.load needs to seek; 8-24 bytes per test question
    except FileNotFoundError:
        return None
    with np.load(content, allow_pickle=False) as stored:
        ids = stored["test_ids"]
        order = np.argsort(ids, kind="stable")
        correct = None
        if "test_predictions" in stored.files:
            correct = (stored["test_labels"] == stored["test_predictions"])[order]
        return TestOutcomes(ids=ids[order], correct=correct)


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int, float]:
    """McNemar's exact test on paired outcomes: (only A right, only B right, two-sided p-value), the p-value
    of the binomial test of the discordant pairs against 1/2 (1.0 when there are none)."""
    from scipy.stats import binomtest

    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    if only_a + only_b == 0:
        return only_a, only_b, 1.0
    return only_a, only_b, float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def two_proportion_p_value(correct_a: int, n_a: int, correct_b: int, n_b: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (1.0 when both proportions are 0 or 1)."""
    from scipy.stats import norm

    pooled = (correct_a + correct_b) / (n_a + n_b)
    spread = np.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if spread == 0:
        return 1.0
    z = (correct_b / n_b - correct_a / n_a) / spread
    return float(2 * norm.sf(abs(z)))


def _correct_count(evaluation: Evaluation, outcomes: TestOutcomes | None) -> tuple[int, int]:
    if outcomes is not None and outcomes.correct is not None:
        return int(outcomes.correct.sum()), len(outcomes.correct)
    m = evaluation.metrics
    return round(m["accuracy"] * m["test_count"]), m["test_count"]


def accuracy_difference(*, a: Evaluation, b: Evaluation) -> dict:
    """Whether B's accuracy differs from A's by more than test-set noise: the difference (B - A), the test
    used ("mcnemar", "two_proportion", or None when either has no figures), its p-value, whether it is
    significant at 0.05, whether the test sets are the same questions, and a sentence saying so."""
    result = {"a": a.pk, "b": b.pk, "difference": None, "same_test_set": None, "test": None, "p_value": None,
              "significant": None, "only_a_right": None, "only_b_right": None, "note": ""}
    missing = [e for e in (a, b) if "accuracy" not in (e.metrics or {})]
    if missing:
        result["note"] = f"Evaluation #{missing[0].pk} has no figures ({missing[0].status})."
        return result
    result["difference"] = round(b.metrics["accuracy"] - a.metrics["accuracy"], 4)
    outcomes_a, outcomes_b = evaluation_test_outcomes(a), evaluation_test_outcomes(b)
    if outcomes_a is not None and outcomes_b is not None:
        result["same_test_set"] = bool(np.array_equal(outcomes_a.ids, outcomes_b.ids))
    paired = result["same_test_set"] and outcomes_a.correct is not None and outcomes_b.correct is not None
    if paired:
        only_a, only_b, p_value = mcnemar_exact(outcomes_a.correct, outcomes_b.correct)
        result.update(test="mcnemar", p_value=round(p_value, 6), only_a_right=only_a, only_b_right=only_b)
        note = (f"Same {len(outcomes_a.ids):,} test questions: #{a.pk} alone got {only_a} right, #{b.pk} alone "
                f"{only_b}; McNemar's exact test p = {p_value:.4g}")
    else:
        (right_a, n_a), (right_b, n_b) = _correct_count(a, outcomes_a), _correct_count(b, outcomes_b)
        p_value = two_proportion_p_value(right_a, n_a, right_b, n_b)
        result.update(test="two_proportion", p_value=round(p_value, 6))
        if result["same_test_set"] is None:
            why = "The test questions of one of them are not stored"
        elif result["same_test_set"]:
            why = "Same test questions, but one was stored before per-question outcomes were kept"
        else:
            why = (f"The test sets differ ({len(outcomes_a.ids):,} and {len(outcomes_b.ids):,} questions, "
                   f"{len(np.intersect1d(outcomes_a.ids, outcomes_b.ids)):,} in common), so part of any "
                   "difference is the questions, not the models")
        note = f"{why}; two-proportion z-test (unpaired) p = {p_value:.4g}"
    result["significant"] = p_value < SIGNIFICANCE
    result["note"] = note + (": the difference is significant at 0.05." if result["significant"]
                             else ": the difference is within test-set noise (not significant at 0.05).")
    return result
