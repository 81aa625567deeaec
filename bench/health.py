"""Benchmark of the dataset health report and of the review screen's paraphrase lookups.

Not a test: run it inside tests/services.sh (a throwaway PostgreSQL and Redis):

    DEBUG=1 bash tests/services.sh .venv/bin/python bench/health.py --sizes 10000 1000000

Per size, in a database of its own (bench_health_<size>): a CLINC150-shaped topic (150 intents)
gets that many questions by COPY (CLINC150 sentences, each repeat made unique by a token like
"n40000", which the near-duplicate key folds: every sentence is a near-duplicate group of about
size/23,700 questions); the paraphrase index is filled (the same code the import runs per batch)
and timed; then
- **report**: `manage.py health --topic --json` in a fresh process, wall time and peak RSS
  (`ru_maxrss` of the child); `--skip-report` leaves it out.
Then
- **lookups**: `question_paraphrases` (the review screen's paraphrase pane) for 300 random
  questions per size, p50 and p95. The machine is shared, so the sizes are measured interleaved
  in time: rounds of 25 lookups, alternating between the sizes' databases (each on its own open
  connection, the first size first in even rounds, last in odd ones), after 25 untimed ones each.
Then, once: the import of 100,000 JSONL rows into a fresh topic, with and without the paraphrase
index write (the index's share of an import); `--import-rows 0` leaves it out.

`--reuse` keeps a size's database from an earlier run on the same cluster (load and fill skipped,
reported as null): for trying a change of the lookup without rebuilding a million questions.
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


def database_create(name: str, *, reuse: bool = False) -> bool:
    """Create database `name` on the cluster DATABASE_URL points at (the throwaway one of
    tests/services.sh), dropping an older one unless `reuse`; True when it was created."""
    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            if reuse:
                return False
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return True


def database_url(name: str) -> str:
    return os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + name


database_create(os.environ["DATABASE_URL"].rsplit("/", 1)[1], reuse=True)
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402

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
    from django.utils import timezone

    from datasets.imports import question_copy_defaults

    topic = Topic.objects.create(name=name)
    rows = sentences()
    intents = {label: intent_create(topic=topic, name=label).pk for label in sorted({label for _, label in rows})}
    # Every column with the model's default (question_copy_defaults), so a column added later
    # does not break the loader.
    columns, defaults = question_copy_defaults(timezone.now())
    fixed = {**defaults, "topic_id": topic.pk, "language": "en", "source": "generated"}
    with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY datasets_question ({', '.join(columns)}) FROM STDIN") as copy:
        for i in range(size):
            text, label = rows[i % len(rows)]
            if i >= len(rows):
                text = f"{text} n{i}"  # a token with a digit: folded away by the near key and the shingles
            copy.write_row(tuple({**fixed, "intent_id": intents[label], "text": text, "text_hash": text_hash(text),
                                  "near_key": near_duplicate_key(text),
                                  "status": "approved" if i % 10 else "pending"}.values()))
    return topic


def database_use(name: str):
    """Point the default connection at database `name`, keeping one open connection per database:
    the lookups switch between sizes without reconnecting (a new backend's first queries load its
    catalog caches, which would be timed)."""
    alias = f"bench_{name}"
    if alias not in connections.settings:
        connections.settings[alias] = {**connections.settings["default"], "NAME": name}
    connections["default"] = connections[alias]


def lookup_times(topic_id: int, ids: list[int]) -> list[float]:
    times = []
    for pk in ids:
        question = Question.objects.get(pk=pk, topic_id=topic_id)
        start = time.perf_counter()
        question_paraphrases(question=question)
        times.append((time.perf_counter() - start) * 1000)
    return times


def lookups_interleaved(topics: dict[int, tuple[str, int]], n: int = 300, batch: int = 25) -> dict:
    """p50 and p95 of `n` lookups per size ({size: (database, topic id)}), in rounds of `batch`
    lookups per size, alternating the sizes' order, so load on the machine hits every size alike."""
    samples, times = {}, {size: [] for size in topics}
    for size, (name, topic_id) in topics.items():
        database_use(name)
        ids = list(Question.objects.filter(topic_id=topic_id).values_list("pk", flat=True))
        samples[size] = random.Random(7).sample(ids, min(n + batch, len(ids)))
        lookup_times(topic_id, samples[size][n:])  # warm-up, untimed
    order = list(topics)
    for round_number, start in enumerate(range(0, n, batch)):
        for size in (order if round_number % 2 == 0 else order[::-1]):
            name, topic_id = topics[size]
            database_use(name)
            times[size] += lookup_times(topic_id, samples[size][start:start + batch])
    result = {}
    for size, values in times.items():
        values.sort()
        result[size] = {"p50_ms": round(statistics.median(values), 2),
                        "p95_ms": round(values[int(0.95 * len(values)) - 1], 2), "lookups": len(values)}
    return result


def report_in_child(topic: Topic, database: str) -> dict:
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "health", "--topic", str(topic.pk),
                                  "--json"], stdout=out, cwd=ROOT, env={**os.environ, "DATABASE_URL": database_url(database)})
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
    parser.add_argument("--import-rows", type=int, default=100_000, help="0: no import timing")
    parser.add_argument("--skip-report", action="store_true", help="no health report per size")
    parser.add_argument("--reuse", action="store_true", help="keep a size's database from an earlier run")
    args = parser.parse_args()
    results, topics = {}, {}
    for size in args.sizes:
        name = f"bench_health_{size}"
        created = database_create(name, reuse=args.reuse)
        database_use(name)
        call_command("migrate", verbosity=0)
        topic = Topic.objects.filter(name=f"Bench {size}").first()
        loaded = index_s = indexed = None
        if topic is None:
            start = time.perf_counter()
            topic = topic_load(f"Bench {size}", size)
            loaded = round(time.perf_counter() - start, 1)
            start = time.perf_counter()
            indexed = paraphrase_index_fill(questions=Question.objects.filter(topic=topic))
            index_s = round(time.perf_counter() - start, 1)
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE datasets_question")
                cursor.execute("VACUUM ANALYZE datasets_questionband")
        topics[size] = (name, topic.pk)
        results[size] = {"database_created": created, "load_s": loaded, "index_fill_s": index_s, "indexed": indexed,
                         "band_rows": QuestionBand.objects.filter(question__topic=topic).count(),
                         "report": None if args.skip_report else report_in_child(topic, name)}
        print(size, json.dumps(results[size]), flush=True)
    print("uptime", os.getloadavg(), flush=True)
    for size, figures in lookups_interleaved(topics).items():
        results[size]["lookups"] = figures
        print(size, "lookups", json.dumps(figures), flush=True)
    print("uptime", os.getloadavg(), flush=True)
    if args.import_rows:
        database_use(topics[args.sizes[0]][0])
        results["import"] = import_cost(args.import_rows)
        print("import", json.dumps(results["import"]), flush=True)
    assert IntentNode.objects.exists()


if __name__ == "__main__":
    main()
