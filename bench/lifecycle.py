"""Benchmark of a topic deletion (datasets/lifecycle.py): wall time, the longest single batch
transaction (the longest any row lock is held), and review latency on another topic meanwhile.

Not a test: run it inside tests/services.sh, which starts a throwaway PostgreSQL and Redis:

    DEBUG=1 bash tests/services.sh .venv/bin/python bench/lifecycle.py --sizes 100000 300000

Per size: a fresh database, migrated; a topic "Doomed" of SIZE questions under 150 intents (bulk
INSERT ... SELECT over generate_series), 60% of them approved with a ReviewEvent each, 8 paraphrase
band rows per question (as the real write paths store), and a topic "Live" of 20,000 pending
questions. VACUUM ANALYZE. Then:
- without deletion: question_lease_next + question_lease_release on "Live", for --seconds before the
  deletion and again for --seconds after it;
- with deletion: the same loop while another process runs the deletion job (topic_delete_run);
and the report: wall time of the job, batches, the longest batch, and the p50/p95 lease latency
without and during the deletion.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

QUESTIONS = """
INSERT INTO datasets_question (topic_id, intent_id, text, text_hash, near_key, language, source, split, provider,
    model, prompt_version, style, complexity, audience, edge_case, occurrences, status, original_text, version,
    judge_verdict, judge_reason, judge_model, judge_prompt_version, created_at, updated_at)
SELECT %(topic)s, (%(intents)s::bigint[])[1 + g.i %% 150],
       'how do i get help with thing number ' || g.i || ' of ' || %(name)s,
       md5(%(name)s || g.i), g.i, 'en', 'generated', '', 'deepseek', 'deepseek-chat', 'v1', '', '', '', '', 1,
       CASE WHEN g.i %% 100 < %(approved)s THEN 'approved' ELSE 'pending' END, '', 1, '', '', '', '', now(), now()
FROM generate_series(1, %(size)s) AS g(i)
"""
EVENTS = """
INSERT INTO datasets_reviewevent (question_id, action, from_status, to_status, from_intent_id, to_intent_id,
                                  from_text, to_text, via, changes, created_at)
SELECT id, 'approve', 'pending', 'approved', intent_id, intent_id, '', '', 'ui', '{}', now()
FROM datasets_question WHERE topic_id = %(topic)s AND status = 'approved'
"""
BANDS = """
INSERT INTO datasets_questionband (question_id, band, key)
SELECT q.id, b.band, (q.id * 8 + b.band) * 7919
FROM datasets_question q CROSS JOIN generate_series(0, 7) AS b(band) WHERE q.topic_id = %(topic)s
"""

SETUP = """
import json
from django.contrib.auth.models import User
from datasets.models import Topic
from datasets.services import intent_create
out = {}
for name in ("Doomed", "Live"):
    topic = Topic.objects.create(name=name)
    out[name] = {"topic": topic.pk, "intents": [intent_create(topic=topic, name=f"Intent {n}").pk for n in range(150)]}
out["actor"] = User.objects.create_user(username="bench-admin", is_superuser=True, is_staff=True).pk
print("SETUP" + json.dumps(out))
"""

START = """
from django.contrib.auth.models import User
from datasets.lifecycle import topic_deletion_start
from datasets.models import Topic
deletion = topic_deletion_start(topic=Topic.objects.get(name="Doomed"), actor=User.objects.get(username="bench-admin"))
print("DELETION", deletion.pk)
"""

RUN = """
import json, time
from datasets.jobs import topic_delete_run
from datasets.models import DataDeletion
print("BEGIN", flush=True)  # the measuring starts here, not while Django starts up
began = time.monotonic()
topic_delete_run({deletion})
wall = time.monotonic() - began
d = DataDeletion.objects.get(pk={deletion})
print("RESULT" + json.dumps({{"wall": wall, "status": d.status, "batches": d.batches,
                              "longest_batch_ms": d.longest_batch_ms, "deleted": d.deleted, "error": d.error}}))
"""


def django_env(database_url: str) -> dict:
    return {**os.environ, "DATABASE_URL": database_url, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "config.settings"}


def shell(env: dict, code: str) -> str:
    done = subprocess.run([PYTHON, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True)
    return done.stdout


def database_for(size: int) -> str:
    base = urlparse(os.environ["DATABASE_URL"])
    name = f"bench_lifecycle_{size}"
    admin_url = base._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return base._replace(path=f"/{name}").geturl()


def load(url: str, env: dict, size: int) -> dict:
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    setup = json.loads(next(line for line in shell(env, SETUP).splitlines() if line.startswith("SETUP"))[5:])
    began = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        for name, count, approved in (("Doomed", size, 60), ("Live", 20000, 0)):
            params = {"topic": setup[name]["topic"], "intents": setup[name]["intents"], "size": count,
                      "name": name, "approved": approved}
            conn.execute(QUESTIONS, params)
            columns = {row[0] for row in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'datasets_reviewevent'")}
            # A column other work may have added to the audit trail (a text, not null, no database default).
            events = EVENTS.replace("changes, created_at)", "changes, created_at, reason)").replace(
                "'{}', now()", "'{}', now(), ''") if "reason" in columns else EVENTS
            conn.execute(events, params)
            conn.execute(BANDS, params)
        conn.execute("VACUUM ANALYZE")
    print(f"  loaded {size:,} + 20,000 questions in {time.monotonic() - began:.0f}s", flush=True)
    return setup


def lease_latencies(seconds: float, until=None) -> list[float]:
    """question_lease_next + release on "Live" in this process, for `seconds` or until `until()`."""
    from django.contrib.auth.models import User

    from datasets.models import Topic
    from labeling.services import question_lease_next, question_lease_release

    topic = Topic.objects.get(name="Live")
    actor = User.objects.get(username="bench-admin")
    times = []
    end = time.monotonic() + seconds
    while (until() if until else time.monotonic() < end) or len(times) < 20:
        began = time.monotonic()
        question = question_lease_next(topic=topic, actor=actor)
        question_lease_release(question_id=question.pk, actor=actor)
        times.append((time.monotonic() - began) * 1000)
        time.sleep(0.01)  # a reviewer is not a tight loop; keeps this process from starving the job
    return times


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def bench(size: int, seconds: float, rest_percent: int) -> dict:
    print(f"size {size:,}, the job resting {rest_percent}% of each batch's time", flush=True)
    url = database_for(size)
    env = {**django_env(url), "DELETION_REST_PERCENT": str(rest_percent)}
    load(url, env, size)
    os.environ["DATABASE_URL"] = url
    import django
    from django.db import connections

    if not getattr(bench, "ready", False):
        django.setup()
        bench.ready = True
    connections.close_all()
    from django.conf import settings

    settings.DATABASES["default"]["NAME"] = url.rsplit("/", 1)[1]
    connections.close_all()
    before = lease_latencies(seconds)
    deletion = int(next(line for line in shell(env, START).splitlines() if line.startswith("DELETION")).split()[1])
    job = subprocess.Popen([PYTHON, "manage.py", "shell", "-c", RUN.format(deletion=deletion)], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, text=True)
    while (line := job.stdout.readline()) and not line.startswith("BEGIN"):
        pass
    during = lease_latencies(0, until=lambda: job.poll() is None)
    out = job.stdout.read()
    result = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT"))[6:])
    # The same loop again once the topic is gone: the baseline is before and after, so a load that
    # changed on the machine over the deletion's minutes weighs on both sides.
    after = lease_latencies(seconds)
    connections.close_all()
    without = before + after
    row = {"size": size, "rest_percent": rest_percent, **result, "without_p50": p(without, 50), "without_p95": p(without, 95),
           "before_p95": p(before, 95), "after_p95": p(after, 95),
           "during_p50": p(during, 50), "during_p95": p(during, 95), "samples": [len(without), len(during)]}
    print(json.dumps(row), flush=True)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100000, 300000])
    parser.add_argument("--seconds", type=float, default=20, help="Length of the baseline latency run.")
    parser.add_argument("--rest-percents", type=int, nargs="+", default=[100],
                        help="DELETION_REST_PERCENT values to measure (a fresh database for each).")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DEBUG"] = "1"
    rows = [bench(size, args.seconds, rest) for size in args.sizes for rest in args.rest_percents]
    print("\n| questions | rest | wall time | batches | longest batch | lease p50 / p95 without | during | p95 ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']:,} | {r['rest_percent']} % | {r['wall']:.0f} s | {r['batches']} | {r['longest_batch_ms']} ms | "
              f"{r['without_p50']:.1f} / {r['without_p95']:.1f} ms | {r['during_p50']:.1f} / {r['during_p95']:.1f} ms | "
              f"{r['during_p95'] / r['without_p95']:.2f} |")


if __name__ == "__main__":
    main()
