"""Benchmark of the dataset health report and of the review screen's paraphrase lookups.

Not a test: run it inside tests/services.sh (a throwaway PostgreSQL and Redis):

    DEBUG=1 bash tests/services.sh .venv/bin/python bench/health.py --sizes 10000 1000000

Per size: a CLINC150-shaped topic (150 intents) gets that many questions by COPY (CLINC150
sentences, each repeat made unique by a token like "n40000", which the near-duplicate key folds: every
sentence is a near-duplicate group of about size/23,700 questions); the paraphrase index is
filled (the same code the import runs per batch) and timed; then
- **lookups**: `question_paraphrases` (the review screen's paraphrase pane) for 300 random
  questions, p50 and p95;
- **report**: `manage.py health --topic --json` in a fresh process, wall time and peak RSS
  (`ru_maxrss` of the child).
Then, once: the import of 100,000 JSONL rows into a fresh topic, with and without the paraphrase
index write (the index's share of an import).
"""

import argparse
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402
import psycopg  # noqa: E402


def database_create():
    """The throwaway cluster of tests/services.sh has no database yet: create the one DATABASE_URL names."""
    url = os.environ["DATABASE_URL"]
    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')


database_create()
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from datasets.clinc150 import DEFAULT_PATH  # noqa: E402
from datasets.health.index import paraphrase_index_fill, question_paraphrases  # noqa: E402
from datasets.models import IntentNode, Question, QuestionBand, Topic  # noqa: E402
from datasets.normalize import near_duplicate_key, text_hash  # noqa: E402
from datasets.services import intent_create  # noqa: E402


def sentences() -> list[tuple[str, str]]:
    data = json.loads((DEFAULT_PATH / "data_full.json").read_text())
    rows, seen = [], set()
    for part in ("train", "val", "test"):
        for text, label in data[part]:
            if text_hash(text) not in seen:  # CLINC150 repeats a few texts
                seen.add(text_hash(text))
                rows.append((text, label))
    return rows


def topic_load(name: str, size: int) -> Topic:
    topic = Topic.objects.create(name=name)
    rows = sentences()
    intents = {label: intent_create(topic=topic, name=label).pk for label in sorted({label for _, label in rows})}
    columns = ("topic_id", "intent_id", "text", "text_hash", "near_key", "language", "source", "split", "status",
               "provider", "model", "prompt_version", "style", "complexity", "audience", "edge_case", "occurrences",
               "original_text", "version", "judge_verdict", "judge_reason", "judge_model", "judge_prompt_version",
               "created_at", "updated_at")
    with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY datasets_question ({', '.join(columns)}) FROM STDIN") as copy:
        for i in range(size):
            text, label = rows[i % len(rows)]
            if i >= len(rows):
                text = f"{text} n{i}"  # a token with a digit: folded away by the near key and the shingles
            copy.write_row((topic.pk, intents[label], text, text_hash(text), near_duplicate_key(text), "en",
                            "generated", "", "approved" if i % 10 else "pending", "", "", "", "", "", "", "", 1, "",
                            1, "", "", "", "", "2026-01-01", "2026-01-01"))
    return topic


def lookups(topic: Topic, n: int = 300) -> dict:
    ids = list(Question.objects.filter(topic=topic).values_list("pk", flat=True))
    chance = random.Random(7)
    times = []
    for pk in chance.sample(ids, min(n, len(ids))):
        question = Question.objects.get(pk=pk)
        start = time.perf_counter()
        question_paraphrases(question=question)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(0.95 * len(times)) - 1], 2)}


def report_in_child(topic: Topic) -> dict:
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "health", "--topic", str(topic.pk),
                                  "--json"], stdout=out, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        report = json.loads(out.read())
    return {"wall_s": round(wall, 1), "peak_rss_mb": usage.ru_maxrss // 1024, "exit": status,
            "questions": report["subject"]["questions"],
            "near_groups_within": report["duplicates"]["near"]["within_intent"]["count"],
            "paraphrases_within": report["duplicates"]["paraphrases"]["within_intent"]["count"],
            "paraphrases_across": report["duplicates"]["paraphrases"]["across_intents"]["count"]}


def import_cost(rows: int = 100_000) -> dict:
    import datasets.imports as imports

    data = sentences()
    lines = []
    for i in range(rows):
        text, label = data[i % len(data)]
        lines.append(json.dumps({"question": f"{text} n{i}" if i >= len(data) else text,
                                 "intent": label}))
    payload = ("\n".join(lines) + "\n").encode()
    result = {}
    for label, index_on in (("with_index", True), ("without_index", False)):
        topic = Topic.objects.create(name=f"Import {label}")
        for name in sorted({lab for _, lab in data}):
            intent_create(topic=topic, name=name)
        original = imports.paraphrase_index_write_by_hash
        if not index_on:
            imports.paraphrase_index_write_by_hash = lambda **kwargs: 0
        try:
            start = time.perf_counter()
            imports.questions_import(topic=topic, stream=io.BytesIO(payload), format="jsonl")
            result[label + "_s"] = round(time.perf_counter() - start, 1)
        finally:
            imports.paraphrase_index_write_by_hash = original
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--import-rows", type=int, default=100_000)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    results = {}
    for size in args.sizes:
        start = time.perf_counter()
        topic = topic_load(f"Bench {size}", size)
        loaded = time.perf_counter() - start
        start = time.perf_counter()
        indexed = paraphrase_index_fill(questions=Question.objects.filter(topic=topic))
        index_s = time.perf_counter() - start
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE datasets_question")
            cursor.execute("VACUUM ANALYZE datasets_questionband")
        results[size] = {"load_s": round(loaded, 1), "index_fill_s": round(index_s, 1), "indexed": indexed,
                         "band_rows": QuestionBand.objects.filter(question__topic=topic).count(),
                         "lookups": lookups(topic), "report": report_in_child(topic)}
        print(size, json.dumps(results[size]), flush=True)
    results["import"] = import_cost(args.import_rows)
    print("import", json.dumps(results["import"]), flush=True)
    assert IntentNode.objects.exists()


if __name__ == "__main__":
    main()
