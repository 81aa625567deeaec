"""The figures of an evaluation, computed from intent ids: per-intent scores, confusions, taxonomy levels, gates.

Pure functions of arrays and the topic's intent tree; the evaluation service stores what they return.
"""

from collections import Counter
from collections.abc import Callable

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from datasets.selectors import IntentInfo

CONFUSION_PAIRS = 20
CONFUSION_EXAMPLES = 3


def _ancestor_at(infos: dict[int, IntentInfo], intent_id: int, level: int) -> int:
    """The intent's ancestor at depth `level` (the intent itself when it is no deeper than that)."""
    node = infos.get(intent_id)
    while node is not None and node.depth > level and node.parent_id in infos:
        node = infos[node.parent_id]
    return node.id if node is not None else intent_id


def intent_entry(infos: dict[int, IntentInfo], intent_id: int) -> dict:
    info = infos.get(intent_id)
    if info is None:
        return {"id": int(intent_id), "number": "", "name": f"#{intent_id}", "path": ""}
    return {"id": info.id, "number": info.number, "name": info.name, "path": info.intent_path}


def per_intent_scores(y_true: np.ndarray, y_pred: np.ndarray, infos: dict[int, IntentInfo]) -> list[dict]:
    """Precision, recall, F1 and support of every intent of the test set, worst F1 first."""
    labels = np.unique(y_true)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    rows = [{**intent_entry(infos, int(label)), "precision": round(float(p), 4), "recall": round(float(r), 4),
             "f1": round(float(f), 4), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)]
    return sorted(rows, key=lambda row: (row["f1"], row["number"]))


def confusion_pairs(y_true: np.ndarray, y_pred: np.ndarray, ids: np.ndarray, infos: dict[int, IntentInfo], *,
                    texts_of: Callable[[list[int]], list[str]], limit: int = CONFUSION_PAIRS) -> list[dict]:
    """The most frequent (true intent, predicted intent) mistakes, with a few of the questions (the first
    ones of each pair in test order; only their texts are read, through `texts_of(ids)`)."""
    wrong = np.flatnonzero(y_true != y_pred)
    counts = Counter(zip(y_true[wrong].tolist(), y_pred[wrong].tolist(), strict=True))
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    examples: dict[tuple[int, int], list[int]] = {pair: [] for pair, _ in top}
    for i in wrong.tolist():
        pair = (int(y_true[i]), int(y_pred[i]))
        if pair in examples and len(examples[pair]) < CONFUSION_EXAMPLES:
            examples[pair].append(int(ids[i]))
    example_ids = [pk for chosen in examples.values() for pk in chosen]
    text_of = dict(zip(example_ids, texts_of(example_ids), strict=True))
    return [{"intent": intent_entry(infos, a), "predicted": intent_entry(infos, b), "count": n,
             "examples": [text_of[pk] for pk in examples[(a, b)]]} for (a, b), n in top]


def level_accuracy(y_true: np.ndarray, y_pred: np.ndarray, infos: dict[int, IntentInfo]) -> list[dict]:
    """Accuracy at each taxonomy level: at level 1 a wrong leaf under the right top-level intent is right."""
    depth = max((infos[i].depth for i in np.unique(y_true).tolist() if i in infos), default=1)
    result = []
    for level in range(1, depth + 1):
        cache: dict[int, int] = {}

        def up(intent_id, level=level, cache=cache):
            if intent_id not in cache:
                cache[intent_id] = _ancestor_at(infos, intent_id, level)
            return cache[intent_id]

        true_up = np.fromiter((up(i) for i in y_true.tolist()), dtype=np.int64, count=len(y_true))
        pred_up = np.fromiter((up(i) for i in y_pred.tolist()), dtype=np.int64, count=len(y_pred))
        result.append({"level": level, "accuracy": round(float((true_up == pred_up).mean()), 4)})
    return result


def gates(*, accuracy: float, per_intent: list[dict], gate_accuracy: float, gate_intent: float,
          accuracy_interval: list[float] | None = None) -> dict:
    """The topic's gates: overall accuracy and every intent's F1, each pass or fail with what fails.

    `passed` and `failing` are the point estimates against the thresholds (what the training guide's gates
    say). With intervals (rows carrying `f1_interval` and `gate`, see intent_gate_verdicts) the intent gate
    also lists the intents whose interval straddles the threshold (`uncertain`, with about how many more
    test questions would settle each) and counts every verdict; the accuracy gate carries its interval."""
    failing = [{"id": row["id"], "number": row["number"], "name": row["name"], "f1": row["f1"]}
               for row in per_intent if row["f1"] < gate_intent]
    result = {
        "accuracy": {"threshold": gate_accuracy, "value": round(accuracy, 4), "passed": accuracy >= gate_accuracy},
        "intent": {"threshold": gate_intent, "passed": not failing, "failing": failing,
                   "failing_count": len(failing)},
        "passed": accuracy >= gate_accuracy and not failing,
    }
    if accuracy_interval is not None:
        result["accuracy"]["interval"] = accuracy_interval
        result["accuracy"]["verdict"] = gate_verdict(accuracy_interval, gate_accuracy)
    if per_intent and all("gate" in row for row in per_intent):
        uncertain = [{"id": row["id"], "number": row["number"], "name": row["name"], "f1": row["f1"],
                      "f1_interval": row["f1_interval"], "support": row["support"],
                      "more_test_questions": more_test_questions(value=row["f1"], interval=row["f1_interval"],
                                                                 support=row["support"], threshold=gate_intent)}
                     for row in per_intent if row["gate"] == "uncertain"]
        result["intent"]["uncertain"] = uncertain
        result["intent"]["uncertain_count"] = len(uncertain)
        result["intent"]["verdicts"] = {verdict: sum(row["gate"] == verdict for row in per_intent)
                                        for verdict in ("pass", "uncertain", "fail")}
    return result


def intent_gate_verdicts(per_intent: list[dict], f1_intervals: dict[int, list[float]], gate_intent: float) -> None:
    """Add to every per-intent row its F1 interval and its verdict against the per-intent gate (in place)."""
    for row in per_intent:
        row["f1_interval"] = f1_intervals[row["id"]]
        row["gate"] = gate_verdict(row["f1_interval"], gate_intent)


def out_of_scope_recall(y_true: np.ndarray, y_pred: np.ndarray, oos_ids: set[int]) -> dict | None:
    """Of the out-of-scope test questions, the share predicted as out of scope (None when there are none)."""
    if not oos_ids:
        return None
    is_oos = np.isin(y_true, list(oos_ids))
    if not is_oos.any():
        return None
    caught = np.isin(y_pred[is_oos], list(oos_ids))
    in_scope = ~is_oos
    return {"recall": round(float(caught.mean()), 4), "support": int(is_oos.sum()),
            "in_scope_accuracy": round(float((y_true[in_scope] == y_pred[in_scope]).mean()), 4)
            if in_scope.any() else None}


# Uncertainty of the figures ------------------------------------------------------------------
# A figure on a test set is an estimate: each one gets a 95 % interval, and a gate verdict says when
# the interval straddles the threshold (the test set is too small to tell pass from fail).

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 1000


def wilson_interval(successes: int, n: int, *, confidence: float = CONFIDENCE) -> list[float] | None:
    """Wilson score interval of a proportion (successes of n), [low, high]; None when n is 0.

    Preferred to the normal (Wald) interval: it stays inside [0, 1] and keeps its coverage near 0 and 1,
    where good classifiers' accuracies are."""
    if n <= 0:
        return None
    low, high = _wilson_bounds(np.asarray(successes, dtype=float), np.asarray(n, dtype=float), confidence)
    return [float(low), float(high)]


def _wilson_bounds(successes: np.ndarray, n: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    z = _z_of(confidence)
    n = np.maximum(n, 1e-12)  # callers mask n == 0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def _harmonic(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    total = precision + recall
    return np.where(total > 0, 2 * precision * recall / np.where(total > 0, total, 1), 0.0)


def bootstrap_f1_intervals(y_true: np.ndarray, y_pred: np.ndarray, *, seed: int,
                           resamples: int = BOOTSTRAP_RESAMPLES,
                           confidence: float = CONFIDENCE) -> tuple[dict[int, list[float]], list[float]]:
    """95 % percentile intervals of every test intent's F1 and of the macro-F1, by a seeded bootstrap of the
    test set stratified by the given intent: ({intent id: [low, high]}, [macro low, macro high]).

    Resampling an intent's n test questions with replacement draws its row of the confusion matrix from a
    multinomial (n, that row's observed shares), so each resample is drawn as one multinomial per intent
    over the cells it actually has: the cost is resamples x non-zero cells of the confusion matrix, not
    resamples x test questions, and the result is the same bootstrap as resampling the label arrays.
    Each interval is then widened to contain
    - its point estimate (a percentile interval of a skewed distribution can miss it by a hair);
    - the F1 at the Wilson bounds of the intent's recall (precision held) and of its precision (recall held):
      a bootstrap cannot draw an error it never saw, so an intent with 5 of 5 test questions right and
      nothing else predicted as it would get [1, 1]; the Wilson interval of 5/5 (0.57-1) says what 5
      questions can tell. On intents with a few hundred test questions this changes next to nothing.
    The macro-F1 interval is widened likewise to cover the per-intent intervals combined as independent
    errors."""
    labels, true_index = np.unique(y_true, return_inverse=True)
    k = len(labels)
    pred_index = _labels_position(labels, y_pred)  # k: a predicted intent that is no test intent
    support = np.bincount(true_index, minlength=k)
    cells = true_index.astype(np.int64) * (k + 1) + pred_index
    cell_ids, cell_counts = np.unique(cells, return_counts=True)
    cell_true, cell_pred = cell_ids // (k + 1), cell_ids % (k + 1)
    rng = np.random.default_rng(seed)
    true_positive = np.zeros((resamples, k), dtype=np.int64)
    predicted = np.zeros((resamples, k + 1), dtype=np.int64)
    starts = np.searchsorted(cell_true, np.arange(k + 1))
    for intent in range(k):
        row = slice(starts[intent], starts[intent + 1])
        columns, counts = cell_pred[row], cell_counts[row]
        drawn = rng.multinomial(support[intent], counts / support[intent], size=resamples)
        predicted[:, columns] += drawn  # columns are distinct within a row
        hit = np.flatnonzero(columns == intent)
        if len(hit):
            true_positive[:, intent] = drawn[:, hit[0]]
    # F1 = 2TP / (2TP + FP + FN) = 2TP / (predicted + support); support > 0 for every test intent.
    f1 = 2 * true_positive / (predicted[:, :k] + support)
    point_positive, point_predicted = _counts_of_cells(cell_true, cell_pred, cell_counts, k)
    point = 2 * point_positive / (point_predicted + support)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(f1, [tail, 100 - tail], axis=0)
    precision = np.where(point_predicted > 0, point_positive / np.maximum(point_predicted, 1), 0.0)
    recall = point_positive / support
    recall_low, recall_high = _wilson_bounds(point_positive, support, confidence)
    low, high = np.minimum(low, _harmonic(precision, recall_low)), np.maximum(high, _harmonic(precision, recall_high))
    predicted_any = point_predicted > 0
    precision_low, precision_high = _wilson_bounds(point_positive, point_predicted, confidence)
    low = np.where(predicted_any, np.minimum(low, _harmonic(precision_low, recall)), low)
    high = np.where(predicted_any, np.maximum(high, _harmonic(precision_high, recall)), high)
    macro = f1.mean(axis=1)
    macro_low, macro_high = np.percentile(macro, [tail, 100 - tail])
    low, high = np.minimum(low, point), np.maximum(high, point)
    intervals = {int(label): [round(float(lo), 4), round(float(hi), 4)]
                 for label, lo, hi in zip(labels, low, high, strict=True)}
    # The macro-F1 gets the same guard: the per-intent intervals read as independent normal errors
    # (sigma_i = width / 2z) give the mean's sigma = sqrt(sum sigma_i^2) / k. On CLINC150 it is about the
    # bootstrap's own width; on a small test set where every intent is all right or all wrong the bootstrap's
    # is zero and this is not.
    z = float(_z_of(confidence))
    macro_point = float(point.mean())
    spread = z * np.sqrt(np.sum(((high - low) / (2 * z)) ** 2)) / k
    macro = [max(0.0, min(float(macro_low), macro_point - spread)), min(1.0, max(float(macro_high), macro_point + spread))]
    return intervals, [round(float(bound), 4) for bound in macro]


def _z_of(confidence: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - (1 - confidence) / 2))


def _labels_position(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value in the sorted `labels`, len(labels) where it is none of them."""
    position = np.minimum(np.searchsorted(labels, values), len(labels) - 1)
    return np.where(labels[position] == values, position, len(labels))


def _counts_of_cells(cell_true, cell_pred, cell_counts, k) -> tuple[np.ndarray, np.ndarray]:
    """(true positives, times predicted) of each of the k test intents, from the confusion matrix's cells."""
    true_positive = np.zeros(k, dtype=np.int64)
    diagonal = cell_true == cell_pred
    true_positive[cell_true[diagonal]] = cell_counts[diagonal]
    predicted = np.bincount(cell_pred, weights=cell_counts, minlength=k + 1)[:k]
    return true_positive, predicted


def gate_verdict(interval: list[float], threshold: float) -> str:
    """"pass" when the whole interval is at or above the threshold, "fail" when it is all below, "uncertain"
    when it straddles it: the test set cannot tell which side the intent is on."""
    low, high = interval
    if low >= threshold:
        return "pass"
    if high < threshold:
        return "fail"
    return "uncertain"


def more_test_questions(*, value: float, interval: list[float], support: int, threshold: float) -> int | None:
    """About how many more test questions would move an uncertain interval off the threshold, if the figure
    stayed where it is: an interval's half-width shrinks as 1/sqrt(n), so the side facing the threshold
    (h = its distance from the figure) must shrink to the figure's distance d from it: n' = n (h/d)^2.
    None when the figure is exactly on the threshold (no number of questions would settle it)."""
    distance = abs(threshold - value)
    if distance == 0:
        return None
    facing = (interval[1] - value) if threshold > value else (value - interval[0])
    needed = int(np.ceil(round(support * (facing / distance) ** 2, 6)))  # 80.00000000000003 is 80
    return max(needed - support, 1)
