"""Cost of an evaluation's 95 % intervals (evaluation.metrics) at CLINC150 size and at 200,000 test questions.

Not a test; needs no database:

    DEBUG=1 .venv/bin/python bench/evaluation_intervals.py

Real predictions: a TF-IDF (word 1-2-grams) + LinearSVC fitted on CLINC150's train + validation, predicting
its 4,500 in-scope test questions, so the confusion matrix has a real classifier's shape. 200,000 test
questions: those labels and predictions repeated (the same shape, 44x the rows), and a harder case where
the 8 % of errors are spread uniformly over all 150 intents (the most non-zero cells, the bootstrap's cost).
The naive bootstrap (resampling the rows themselves, 200 resamples) is timed beside it for comparison.
Prints one JSON line per measurement (milliseconds, the median of 5 runs; the naive one's of 1 to 3).
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CLINC = ROOT / "datasets" / "demo_data" / "clinc150" / "data_full.json"


def timed(function, *args, runs: int = 5, **kwargs) -> tuple[float, object]:
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        seconds.append(time.perf_counter() - start)
    return round(1000 * statistics.median(seconds), 1), result


def naive_bootstrap_f1(y_true: np.ndarray, y_pred: np.ndarray, *, seed: int, resamples: int) -> np.ndarray:
    """The same stratified bootstrap done the obvious way, for comparison: resample each intent's rows,
    count true positives and predictions with bincount. Cost: resamples x rows."""
    labels, true_index = np.unique(y_true, return_inverse=True)
    k = len(labels)
    position = np.minimum(np.searchsorted(labels, y_pred), k - 1)
    pred_index = np.where(labels[position] == y_pred, position, k)
    rows_of = [np.flatnonzero(true_index == i) for i in range(k)]
    support = np.bincount(true_index, minlength=k)
    rng = np.random.default_rng(seed)
    f1 = np.empty((resamples, k))
    for b in range(resamples):
        drawn = np.concatenate([rows[rng.integers(0, len(rows), len(rows))] for rows in rows_of])
        hits = true_index[drawn] == pred_index[drawn]
        true_positive = np.bincount(true_index[drawn][hits], minlength=k)
        predicted = np.bincount(pred_index[drawn], minlength=k + 1)[:k]
        f1[b] = 2 * true_positive / (predicted + support)
    return np.percentile(f1, [2.5, 97.5], axis=0)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    from evaluation import metrics

    data = json.loads(CLINC.read_text())
    train = data["train"] + data["val"]
    names = sorted({label for _, label in train})
    index = {name: i for i, name in enumerate(names)}
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    model = LinearSVC(random_state=0).fit(vectorizer.fit_transform([t for t, _ in train]),
                                          [index[label] for _, label in train])
    y_true = np.array([index[label] for _, label in data["test"]], dtype=np.int64)
    y_pred = model.predict(vectorizer.transform([t for t, _ in data["test"]])).astype(np.int64)
    rng = np.random.default_rng(0)
    big_true, big_pred = np.tile(y_true, 45)[:200_000], np.tile(y_pred, 45)[:200_000]
    wrong = rng.random(200_000) < 0.08
    spread_pred = np.where(wrong, rng.integers(0, len(names), 200_000), big_true)
    cases = [("clinc150 test", y_true, y_pred), ("200,000 rows, clinc150's confusions", big_true, big_pred),
             ("200,000 rows, errors spread over all intents", big_true, spread_pred)]
    for name, truth, predicted in cases:
        for resamples in (200, metrics.BOOTSTRAP_RESAMPLES):
            ms, (_, macro) = timed(metrics.bootstrap_f1_intervals, truth, predicted, seed=42, resamples=resamples)
            cells = len(np.unique(truth * (len(names) + 1) + predicted))
            print(json.dumps({"case": name, "rows": len(truth), "confusion_cells": cells, "resamples": resamples,
                              "bootstrap_ms": ms, "accuracy": round(float((truth == predicted).mean()), 4),
                              "macro_f1_interval": macro}))
        runs = 1 if len(truth) > 10_000 else 3
        ms, _ = timed(naive_bootstrap_f1, truth, predicted, seed=42, resamples=200, runs=runs)
        print(json.dumps({"case": name, "rows": len(truth), "resamples": 200, "naive_row_resampling_ms": ms}))
        ms, interval = timed(metrics.wilson_interval, int((truth == predicted).sum()), len(truth))
        print(json.dumps({"case": name, "wilson_ms": ms, "accuracy_interval": [round(b, 4) for b in interval]}))
    print(json.dumps({"load_average": os.getloadavg()}))


if __name__ == "__main__":
    main()
