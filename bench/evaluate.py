"""Benchmark of an evaluation (train, test, learning curve, label errors) against a plain scikit-learn script.

Not a test: run it inside tests/services.sh, which starts a throwaway PostgreSQL and Redis:

    DEBUG=1 bash tests/services.sh .venv/bin/python bench/evaluate.py --size 22500     # CLINC150 itself
    DEBUG=1 bash tests/services.sh .venv/bin/python bench/evaluate.py --size 100000
    DEBUG=1 bash tests/services.sh .venv/bin/python bench/evaluate.py --size 1000000   # CLINC-shaped, 1M

It creates a database `bench_evaluate`, migrates it and loads a CLINC150-shaped topic (10
domains, 150 intents): the in-scope CLINC150 sentences with their official split, then
(past 22,500) the same sentences made unique by a suffix word, each keeping its sentence's
split, written with COPY and the model's column defaults (datasets.imports.question_copy_defaults).
Each step runs in a fresh Python process so its peak RSS (ru_maxrss) is its own:
- `evaluate`: the evaluation job's body in-process (`evaluation_run`), train=split=train,validation,
  test=split=test, with the learning curve and the label errors; its stage timings;
- `plain`: a plain scikit-learn script fitted on the same arrays: the texts and labels the
  evaluation trained on (its questions.npz train_ids: every training question up to the cap of
  questions per intent, the seeded sample above it), the same two TfidfVectorizers and LinearSVC,
  fit once, predict the whole test set; for the ratio of the evaluation's training stage
  (features + SVM) to the same fit written by hand.
Prints one JSON line per step.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "bench_evaluate"
SPLIT_OF = {"train": "train", "val": "validation", "test": "test"}


def django_setup():
    url = urlparse(os.environ["DATABASE_URL"])
    os.environ["DATABASE_URL"] = urlunparse(url._replace(path="/" + BENCH_DB))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def report(**fields):
    print("RESULT " + json.dumps({**fields, "peak_rss_mb": peak_rss_mb()}), flush=True)


def letters(number: int) -> str:
    word = ""
    while True:
        number, rest = divmod(number, 26)
        word += "abcdefghijklmnopqrstuvwxyz"[rest]
        if not number:
            return "x" + word


def step_setup(size: int):
    import psycopg

    base = urlparse(os.environ["DATABASE_URL"])
    with psycopg.connect(urlunparse(base._replace(path="/postgres")), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        admin.execute(f"CREATE DATABASE {BENCH_DB}")
    django_setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from datasets.clinc150 import DEFAULT_PATH
    from datasets.imports import question_copy_defaults
    from datasets.models import Topic
    from datasets.normalize import near_duplicate_key, text_hash
    from datasets.services import intent_create

    call_command("migrate", verbosity=0)
    domains = json.loads((DEFAULT_PATH / "domains.json").read_text())
    data = json.loads((DEFAULT_PATH / "data_full.json").read_text())
    started = time.perf_counter()
    topic = Topic.objects.create(name="Bench", levels=2, tags_per_level=15)
    intents = {}
    for domain, names in domains.items():
        parent = intent_create(topic=topic, name=domain.replace("_", " ").title())
        for raw in names:
            intents[raw] = intent_create(topic=topic, parent=parent, name=raw.replace("_", " ").title()).pk
    sentences = [(text, intents[label], SPLIT_OF[split]) for split in SPLIT_OF for text, label in data[split]]
    # COPY with the model's defaults: the columns other features add are filled, as imports fill them.
    columns, defaults = question_copy_defaults(timezone.now())
    fixed = {**defaults, "topic_id": topic.pk, "source": "imported", "status": "approved"}
    attnames = list(defaults)
    seen = set()
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY datasets_question ({', '.join(columns)}) FROM STDIN") as copy:
            for i in range(size):
                sentence, intent_id, split = sentences[i % len(sentences)]
                text = sentence if i < len(sentences) else f"{sentence} {letters(i // len(sentences))}"
                digest = text_hash(text)
                if digest in seen:  # CLINC150 repeats a few texts (equal after normalization): keep the first
                    continue
                seen.add(digest)
                row = {**fixed, "intent_id": intent_id, "text": text, "text_hash": digest,
                       "near_key": near_duplicate_key(text), "split": split}
                copy.write_row([row[name] for name in attnames])
        cursor.execute("VACUUM ANALYZE datasets_question")
    report(step="setup", size=size, questions=len(seen), seconds=round(time.perf_counter() - started, 1))


def step_evaluate(label_issues: bool, learning_curve: bool, folds: int):
    django_setup()
    from datasets.models import Topic
    from evaluation.services import evaluation_create, evaluation_run

    topic = Topic.objects.get(name="Bench")
    started = time.perf_counter()
    evaluation = evaluation_create(topic=topic, enqueue=False, train_spec="split=train,validation",
                                   test_spec="split=test", label_issues=label_issues, learning_curve=learning_curve,
                                   folds=folds)
    evaluation_run(evaluation_id=evaluation.pk)
    evaluation.refresh_from_db()
    assert evaluation.status == "succeeded", evaluation.error
    m = evaluation.metrics
    report(step="evaluate", evaluation=evaluation.pk, seconds=round(time.perf_counter() - started, 1),
           folds=folds, train=evaluation.train_count, capped=m["cap"], test=evaluation.test_count, accuracy=m["accuracy"],
           timings=evaluation.timings, model_megabytes=round(m["model_bytes"] / 2**20, 1),
           label_issues=m.get("label_issues"), learning_curve=m["learning_curve"])


def step_plain(evaluation_id: int):
    django_setup()
    import numpy as np
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    from datasets.models import Question
    from evaluation.models import Evaluation
    from evaluation.services import evaluation_files_local

    started = time.perf_counter()
    with np.load(evaluation_files_local(Evaluation.objects.get(pk=evaluation_id)) / "questions.npz") as ids:
        train_ids, test_ids = ids["train_ids"].tolist(), ids["test_ids"].tolist()
    rows = dict(Question.objects.filter(pk__in=train_ids).values_list("pk", "text"))
    intents = dict(Question.objects.filter(pk__in=train_ids).values_list("pk", "intent_id"))
    texts, labels = [rows[pk] for pk in train_ids], np.array([intents[pk] for pk in train_ids])
    del rows, intents
    read = time.perf_counter() - started
    fit_started = time.perf_counter()
    word = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=20000, dtype=np.float32)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True, max_features=60000,
                           dtype=np.float32)
    X = sp.hstack([word.fit_transform(texts), char.fit_transform(texts)], format="csr")
    svm = LinearSVC(random_state=42).fit(X, labels)
    fit = time.perf_counter() - fit_started
    test = list(Question.objects.filter(pk__in=test_ids).values_list("text", "intent_id"))
    test_texts = [t for t, _ in test]
    X_test = sp.hstack([word.transform(test_texts), char.transform(test_texts)], format="csr")
    accuracy = float((svm.predict(X_test) == np.array([i for _, i in test])).mean())
    report(step="plain", train=len(train_ids), test=len(test), read_seconds=round(read, 1), fit_seconds=round(fit, 1),
           accuracy=round(accuracy, 4))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=22500)
    parser.add_argument("--no-label-issues", action="store_true")
    parser.add_argument("--no-learning-curve", action="store_true")
    parser.add_argument("--folds", type=int, default=5, help="k of the cross-validation (2-10; the product's default 5)")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--evaluation", type=int, help=argparse.SUPPRESS)
    o = parser.parse_args()
    if o.step:
        {"setup": lambda: step_setup(o.size), "plain": lambda: step_plain(o.evaluation),
         "evaluate": lambda: step_evaluate(not o.no_label_issues, not o.no_learning_curve, o.folds)}[o.step]()
        return
    os.environ.setdefault("EXPORT_ROOT", "/tmp/bench-evaluate-exports")
    results = []
    for step in ("setup", "evaluate", "plain"):
        args = [sys.executable, __file__, "--step", step, "--size", str(o.size), "--folds", str(o.folds)]
        args += ["--no-label-issues"] * o.no_label_issues + ["--no-learning-curve"] * o.no_learning_curve
        if step == "plain":
            args += ["--evaluation", str(results[-1]["evaluation"])]
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"step {step} failed:\n{done.stderr[-3000:]}")
        out = done.stdout
        for line in out.splitlines():
            if line.startswith("RESULT "):
                results.append(json.loads(line[7:]))
                print(line[7:], flush=True)
    evaluate, plain = results[1], results[2]
    train_stage = evaluate["timings"]["train"]
    print(json.dumps({"train_stage_over_plain_fit": round(train_stage / plain["fit_seconds"], 2)}))


if __name__ == "__main__":
    main()
