"""Benchmark of the Django admin's pages (and the review list view) at two sizes (issue 18).

Not a test: run it inside tests/services.sh, which starts a throwaway PostgreSQL and Redis:

    DEBUG=1 bash tests/services.sh .venv/bin/python bench/admin.py --sizes 10000 1000000

For each size it creates a database `bench_admin`, migrates it and bulk-loads a CLINC150-shaped
topic by COPY with bench/export.py's loader (10 domains, 150 intents, the model's column
defaults from `datasets.imports.question_copy_defaults`; 80% approved, 10% relabeled, 10%
pending), then VACUUM ANALYZE. Then, in a fresh process, it requests every page below with the
Django test client in-process as the superuser: one warm-up request, then --repeat timed ones;
median and p95 (nearest rank: of 7 requests, the slowest), and the queries per page. Prints one JSON line per page and, at the end, a Markdown table with
the ratio between the sizes, to paste into docs/benchmarks.md.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import export as export_bench  # noqa: E402  (bench/export.py: the COPY loader)

export_bench.BENCH_DB = "bench_admin"


def pages(topic, intent, question) -> list[tuple[str, str]]:
    from django.urls import reverse

    questions = reverse("admin:datasets_question_changelist")
    topics = reverse("admin:datasets_topic_changelist")
    intents = reverse("admin:datasets_intentnode_changelist")
    review_list = reverse("labeling:questions", args=[topic.pk])
    return [
        ("Questions list", questions),
        ("Questions, status = pending", questions + "?status__exact=pending"),
        ('Questions, search "bank"', questions + "?q=bank"),
        ("Questions, topic + status filter", questions + f"?topic__id__exact={topic.pk}&status__exact=approved"),
        ("Questions, page 5,000 (capped: page 100)", questions + "?p=5000"),
        ("Questions, complexity filter", questions + "?complexity=simple"),
        ("Question change page", reverse("admin:datasets_question_change", args=[question.pk])),
        ("Topics list", topics),
        ("Topic change page", reverse("admin:datasets_topic_change", args=[topic.pk])),
        ("Topic taxonomy tree", reverse("admin:datasets_topic_taxonomy", args=[topic.pk])),
        ("Intents list", intents),
        ("Intents, topic filter", intents + f"?topic__id__exact={topic.pk}"),
        ("Intent change page", reverse("admin:datasets_intentnode_change", args=[intent.pk])),
        ("Intent delete page (refused: has questions)", reverse("admin:datasets_intentnode_delete", args=[intent.pk])),
        ("Taxonomy: delete a domain (move its questions)",
         reverse("admin:datasets_topic_intent_change", args=[topic.pk, intent.parent_id, "delete"])),
        ("Topic delete confirmation", reverse("admin:datasets_topic_delete", args=[topic.pk])),
        ("Review events list", reverse("admin:datasets_reviewevent_changelist")),
        ("Review list view (labeling)", review_list),
        ('Review list view, search "bank"', review_list + "?search=bank"),
    ]


def step_measure(rows: int, repeat: int):
    export_bench.django_setup()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    from datasets.models import IntentNode, Question, Topic

    user = User.objects.filter(username="bench-root").first() or User.objects.create_superuser(
        "bench-root", password="bench-root-pw")
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    topic = Topic.objects.get(name="Bench")
    intent = IntentNode.objects.filter(topic=topic, parent__isnull=False).order_by("sort_key").first()
    question = Question.objects.filter(topic=topic).order_by("-id").first()
    for name, url in pages(topic, intent, question):
        # Counted by an execute wrapper: it stays on the connection when Django reconnects, as it
        # does for every request (CONN_MAX_AGE 0, the project's setting, so the bench pays it too).
        executed = []
        with connection.execute_wrapper(lambda execute, sql, *rest, log=executed: log.append(sql) or execute(sql, *rest)):
            response = client.get(url)  # warm-up, and the query count
        assert response.status_code == 200, (url, response.status_code)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        p95 = times[math.ceil(0.95 * len(times)) - 1]
        print("RESULT " + json.dumps({"step": "page", "rows": rows, "page": name, "url": url,
                                      "median_ms": round(statistics.median(times)),
                                      "p95_ms": round(p95), "queries": len(executed)}),
              flush=True)


def run_step(*args) -> list[dict]:
    command = [sys.executable, __file__, "--step", *map(str, args)]
    finished = subprocess.run(command, capture_output=True, text=True, env=os.environ)
    if finished.returncode:
        sys.exit(f"step {args} failed:\n{finished.stderr[-3000:]}")
    output = finished.stdout
    results = [json.loads(line[7:]) for line in output.splitlines() if line.startswith("RESULT ")]
    for result in results:
        print(json.dumps(result), flush=True)
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--step", nargs="*")
    args = parser.parse_args()
    if args.step:
        kind, *rest = args.step
        if kind == "setup":
            export_bench.step_setup(int(rest[0]))
        else:
            step_measure(int(rest[0]), int(rest[1]))
        return
    by_size = {}
    for size in args.sizes:
        setup = run_step("setup", size)[0]
        print(f"# setup of {size:,} questions: {setup['seconds']} s", flush=True)
        by_size[size] = {r["page"]: r for r in run_step("measure", size, args.repeat)}
    sizes = args.sizes
    header = " | ".join(f"{s:,}: median / p95 (queries)" for s in sizes)
    print(f"\n| page | {header} | ratio of medians |")
    print("|---|" + "---|" * (len(sizes) + 1))
    for name in by_size[sizes[0]]:
        cells = [f"{by_size[s][name]['median_ms']} / {by_size[s][name]['p95_ms']} ms ({by_size[s][name]['queries']})"
                 for s in sizes]
        ratio = by_size[sizes[-1]][name]["median_ms"] / max(by_size[sizes[0]][name]["median_ms"], 1)
        print(f"| {name} | {' | '.join(cells)} | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
