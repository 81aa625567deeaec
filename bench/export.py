"""Benchmark of exports and imports against django-import-export's stock Resource, same run, same rows.

Not a test: run it inside tests/services.sh, which starts a throwaway PostgreSQL and Redis:

    DEBUG=1 bash tests/services.sh .venv/bin/python bench/export.py --rows 1000000

It creates a database `bench_export`, migrates it, builds a CLINC150-shaped topic (10 domains,
150 intents) and bulk-loads N questions with COPY (CLINC150 sentences made unique by a suffix
word; 80% approved, 10% relabeled, 10% pending, so 90% are exported). Then, each step in a fresh
Python process so peak RSS (ru_maxrss) belongs to that step alone:

- every export format through `export_write` (the job's body: queries, split plan, files), with
  an 80/10/10 split and without a split;
- stock django-import-export: `ModelResource.export()` + tablib's CSV on the first
  --stock-export-rows exported rows (the full set would take long; the rate is what compares);
- importing --import-rows JSONL rows with `questions_import` into a fresh topic, and stock
  `ModelResource.import_data()` on --stock-import-rows rows of the same file.

Prints one JSON line per step and a Markdown table to paste into docs/benchmarks.md.
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
BENCH_DB = "bench_export"
SPLIT = {"train": 0.8, "validation": 0.1, "test": 0.1}
FORMATS = ["jsonl", "json", "csv", "parquet", "alpaca", "sharegpt", "openai", "rasa", "huggingface", "huggingface_parquet"]


def bench_database_url() -> str:
    url = urlparse(os.environ["DATABASE_URL"])
    return urlunparse(url._replace(path="/" + BENCH_DB))


def django_setup():
    os.environ["DATABASE_URL"] = bench_database_url()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def report(**fields):
    print("RESULT " + json.dumps({**fields, "peak_rss_mb": peak_rss_mb()}), flush=True)


# --- steps (each runs in its own process) ---------------------------------------------------


def bench_database_create():
    """A fresh, migrated BENCH_DB, and Django set up on it."""
    import psycopg

    base = urlparse(os.environ["DATABASE_URL"])
    with psycopg.connect(urlunparse(base._replace(path="/postgres")), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        admin.execute(f"CREATE DATABASE {BENCH_DB}")
    django_setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def clinc_topic_rows(rows: int):
    """Create the CLINC150-shaped topic "Bench" (10 domains, 150 intents) and return the question
    columns and an iterator of `rows` questions' values in that order, for COPY: the CLINC150
    sentences, repeats made unique by a suffix word; 80 % approved, 10 % relabeled, 10 % pending."""
    from django.utils import timezone

    from datasets.clinc150 import DEFAULT_PATH, _title
    from datasets.imports import question_copy_defaults
    from datasets.models import Topic
    from datasets.normalize import near_duplicate_key, text_hash
    from datasets.services import intent_create

    domains = json.loads((DEFAULT_PATH / "domains.json").read_text())
    data = json.loads((DEFAULT_PATH / "data_full.json").read_text())
    topic = Topic.objects.create(name="Bench", levels=2, tags_per_level=15)
    intents = {}
    for domain, names in domains.items():
        parent = intent_create(topic=topic, name=_title(domain))
        for raw in names:
            intents[raw] = intent_create(topic=topic, parent=parent, name=_title(raw)).pk
    sentences = [(text, intents[label]) for split in ("train", "val", "test") for text, label in data[split]
                 if label in intents]
    columns, defaults = question_copy_defaults(timezone.now())
    fixed = {**defaults, "topic_id": topic.pk, "language": "en", "source": "generated", "provider": "deepseek",
             "model": "deepseek-chat", "temperature": 0.8, "prompt_version": "questions-v1", "style": "casual",
             "complexity": "simple", "audience": "consumer"}
    attnames = list(defaults)

    def values():
        seen = set()
        for i in range(rows):
            sentence, intent_id = sentences[i % len(sentences)]
            text = sentence if i < len(sentences) else f"{sentence} {letters(i // len(sentences))}"
            digest = text_hash(text)
            if digest in seen:  # CLINC150 has a few texts equal after normalization
                text, digest = f"{text} {letters(i)}z", text_hash(f"{text} {letters(i)}z")
            seen.add(digest)
            status = "approved" if i % 10 < 8 else "relabeled" if i % 10 == 8 else "pending"
            row = {**fixed, "intent_id": intent_id, "text": text, "text_hash": digest,
                   "near_key": near_duplicate_key(text), "status": status}
            yield [row[name] for name in attnames]

    return columns, values()


def step_setup(rows: int):
    bench_database_create()
    started = time.perf_counter()
    from django.db import connection

    from datasets.models import Topic

    columns, values = clinc_topic_rows(rows)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY datasets_question ({', '.join(columns)}) FROM STDIN") as copy:
            for value in values:
                copy.write_row(value)
        cursor.execute("VACUUM ANALYZE datasets_question")
    report(step="setup", rows=rows, seconds=round(time.perf_counter() - started, 1),
           topic=Topic.objects.get(name="Bench").pk)


def letters(number: int) -> str:
    word = ""
    while True:
        number, rest = divmod(number, 26)
        word += "abcdefghijklmnopqrstuvwxyz"[rest]
        if not number:
            return "x" + word


def step_export(format: str, split: bool):
    django_setup()
    from datasets.exports import export_write
    from datasets.models import Export, Topic

    topic = Topic.objects.get(name="Bench")
    export = Export.objects.create(topic=topic, format=format, filters={"statuses": ["approved", "relabeled"]},
                                   split=SPLIT if split else {}, seed=42)
    started = time.perf_counter()
    outcome = export_write(export=export)
    seconds = time.perf_counter() - started
    rows = sum(outcome.counts.values())
    folder = Path(os.environ["EXPORT_ROOT"]) / str(export.pk)
    size = sum(p.stat().st_size for p in folder.iterdir())
    report(step="export", format=format, split=split, rows=rows, seconds=round(seconds, 1),
           rows_per_second=round(rows / seconds), megabytes_written=round(size / 2**20))


def stock_resource(variant: str):
    from import_export import resources

    from datasets.models import Question

    class StockDefaultResource(resources.ModelResource):
        """django-import-export as its docs set it up: a ModelResource of the model, every field."""

        class Meta:
            model = Question

    class StockTrainerResource(resources.ModelResource):
        """Stock, given its best chance: only the fields a trainer needs, and no per-row queries
        (intent names come from select_related)."""

        class Meta:
            model = Question
            fields = ("id", "text", "intent__name", "intent__number", "status", "source", "created_at")

    return {"default": StockDefaultResource, "trainer": StockTrainerResource}[variant]


def step_stock_export(rows: int, variant: str):
    django_setup()
    from import_export.formats.base_formats import CSV

    from datasets.models import Question

    queryset = Question.objects.filter(topic__name="Bench", status__in=["approved", "relabeled"]).order_by("id")
    if variant == "trainer":
        queryset = queryset.select_related("intent")
    started = time.perf_counter()
    dataset = stock_resource(variant)().export(queryset=queryset[:rows])
    text = CSV().export_data(dataset)
    seconds = time.perf_counter() - started
    report(step="stock_export", variant=variant, rows=len(dataset), seconds=round(seconds, 1),
           rows_per_second=round(len(dataset) / seconds), megabytes_written=round(len(text.encode()) / 2**20))


def step_make_import_file(rows: int, path: str):
    """The first `rows` lines of a seed-schema JSONL export: the file both imports read."""
    django_setup()
    from datasets.exports import export_stream
    from datasets.models import Question

    questions = Question.objects.filter(topic__name="Bench", status__in=["approved", "relabeled"])
    written = 0
    with open(path, "w", encoding="utf-8") as out:
        for chunk in export_stream(questions=questions, format="jsonl"):
            lines = chunk.splitlines(keepends=True)
            out.write("".join(lines[: rows - written]))
            written += min(len(lines), rows - written)
            if written >= rows:
                break
    report(step="import_file", rows=written)


def _fresh_topic(name: str):
    from datasets.models import IntentNode, Topic
    from datasets.services import intent_create

    Topic.objects.filter(name=name).delete()
    topic = Topic.objects.create(name=name)
    source = Topic.objects.get(name="Bench")
    created = {}
    for node in IntentNode.objects.filter(topic=source).order_by("sort_key"):
        created[node.pk] = intent_create(topic=topic, name=node.name, parent=created.get(node.parent_id))
    return topic


def step_import(path: str):
    django_setup()
    from datasets.imports import questions_import

    topic = _fresh_topic("Bench import")
    started = time.perf_counter()
    with open(path, "rb") as stream:
        result = questions_import(topic=topic, stream=stream, format="jsonl", status="approved")
    seconds = time.perf_counter() - started
    report(step="import", rows=result.rows, created=result.created, seconds=round(seconds, 1),
           rows_per_second=round(result.rows / seconds))


def step_stock_import(path: str, rows: int):
    """Stock ModelResource.import_data() on the same file's first rows, intents given as ids
    (resolved before the clock starts, which only helps the stock side)."""
    django_setup()
    import tablib
    from import_export import resources

    from datasets.imports import IntentIndex
    from datasets.models import Question

    topic = _fresh_topic("Bench stock import")
    index = IntentIndex(topic)
    dataset = tablib.Dataset(headers=["topic", "intent", "text", "status", "source"])
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            if number >= rows:
                break
            record = json.loads(line)
            path_below_topic = " -> ".join(record["intent_hierarchy"][1:])
            dataset.append([topic.pk, index.find([path_below_topic]), record["question"], "approved", "imported"])

    class StockImportResource(resources.ModelResource):
        class Meta:
            model = Question
            fields = ("topic", "intent", "text", "status", "source")
            import_id_fields = ()

    started = time.perf_counter()
    result = StockImportResource().import_data(dataset, dry_run=False, raise_errors=True)
    seconds = time.perf_counter() - started
    created = Question.objects.filter(topic=topic).count()
    report(step="stock_import", rows=len(dataset), created=created, seconds=round(seconds, 1),
           rows_per_second=round(len(dataset) / seconds), errors=result.has_errors())


# --- orchestration ----------------------------------------------------------------------------


def run_step(*args, export_root: Path) -> dict:
    env = {**os.environ, "EXPORT_ROOT": str(export_root), "DEBUG": os.environ.get("DEBUG", "1")}
    done = subprocess.run([sys.executable, __file__, "--step", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"step {args} failed")
    result = json.loads(done.stdout.split("RESULT ", 1)[1].splitlines()[0])
    print(json.dumps(result), flush=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--stock-export-rows", type=int, default=20_000)
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument("--stock-import-rows", type=int, default=5_000)
    parser.add_argument("--formats", nargs="*", default=FORMATS)
    parser.add_argument("--step", nargs="*")
    args = parser.parse_args()
    if args.step:
        name, *rest = args.step
        steps = {"setup": lambda r: step_setup(int(r)), "export": lambda f, s: step_export(f, s == "split"),
                 "stock_export": lambda r, v: step_stock_export(int(r), v),
                 "import_file": lambda r, p: step_make_import_file(int(r), p), "import": step_import,
                 "stock_import": lambda p, r: step_stock_import(p, int(r))}
        steps[name](*rest)
        return

    export_root = Path(os.environ.get("TEST_SERVICES_DIR", "/tmp")) / "bench-exports"
    load_before = os.getloadavg()
    results = [run_step("setup", args.rows, export_root=export_root)]
    for format in args.formats:
        results.append(run_step("export", format, "split", export_root=export_root))
        results.append(run_step("export", format, "nosplit", export_root=export_root))
    for variant in ("default", "trainer"):
        results.append(run_step("stock_export", args.stock_export_rows, variant, export_root=export_root))
    import_file = export_root / "import.jsonl"
    results.append(run_step("import_file", args.import_rows, import_file, export_root=export_root))
    results.append(run_step("import", import_file, export_root=export_root))
    results.append(run_step("stock_import", import_file, args.stock_import_rows, export_root=export_root))
    print_table(results, load_before, os.getloadavg())


def print_table(results, load_before, load_after):
    stock = {r["variant"]: r["rows_per_second"] for r in results if r["step"] == "stock_export"}
    stock_import = next(r for r in results if r["step"] == "stock_import")
    print("\n| step | rows | seconds | rows/s | × stock (all fields) | × stock (trainer fields) | peak RSS (MB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        ratios = ["", ""]
        if r["step"] == "export":
            label = f"export {r['format']}" + (" 80/10/10" if r["split"] else " (no split)")
            ratios = [f"{r['rows_per_second'] / stock[v]:.1f}×" for v in ("default", "trainer")]
        elif r["step"] == "import":
            label = "import JSONL (questions_import)"
            ratios = [f"{r['rows_per_second'] / stock_import['rows_per_second']:.1f}×", ""]
        elif r["step"] == "stock_export":
            label = f"stock Resource.export() + CSV, {'every field' if r['variant'] == 'default' else 'trainer fields'}"
        elif r["step"] == "stock_import":
            label = "stock Resource.import_data()"
        else:
            continue
        print(f"| {label} | {r['rows']:,} | {r['seconds']} | {r['rows_per_second']:,} | {ratios[0]} | {ratios[1]} "
              f"| {r['peak_rss_mb']} |")
    print(f"\nload average (1 min) before {load_before[0]:.1f}, after {load_after[0]:.1f}, on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
