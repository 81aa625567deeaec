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


def gates(*, accuracy: float, per_intent: list[dict], gate_accuracy: float, gate_intent: float) -> dict:
    """The topic's gates: overall accuracy and every intent's F1, each pass or fail with what fails."""
    failing = [{"id": row["id"], "number": row["number"], "name": row["name"], "f1": row["f1"]}
               for row in per_intent if row["f1"] < gate_intent]
    return {
        "accuracy": {"threshold": gate_accuracy, "value": round(accuracy, 4), "passed": accuracy >= gate_accuracy},
        "intent": {"threshold": gate_intent, "passed": not failing, "failing": failing,
                   "failing_count": len(failing)},
        "passed": accuracy >= gate_accuracy and not failing,
    }


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
