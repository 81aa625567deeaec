"""Benchmark (not a test): the seed tool's headline job against the test teacher.

3 levels x 5 tags x 25 questions (125 leaves, 3,125 questions), teacher at 2 s per call, on
real RQ workers, PostgreSQL and Redis. Run it with the throwaway services:

    DEBUG=1 bash tests/services.sh .venv/bin/python bench/distill.py --workers 1,4 --concurrency 16

Prints wall time, questions per minute, calls and the ratio of wall time to the lower bound set
by latency and concurrency (taxonomy levels run one after another; calls within a level, and
all question calls, run in parallel up to the concurrency).

With --judge, each distillation is followed by a judged run: a judge run (`distill judge`) over
the topic's questions, 10 per call, on the same teacher (2 s per call): its wall time against
its lower bound ⌈judge calls / limit⌉ × latency (judge units per intent run in parallel, their
batches too).
"""

import argparse
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_database(url: str, name: str) -> str:
    import psycopg

    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name


def lower_bound(levels: int, tags: int, question_calls: int, concurrency: int, latency: float) -> float:
    taxonomy = sum(math.ceil(tags ** (level - 1) / concurrency) for level in range(1, levels + 1))
    return (taxonomy + math.ceil(question_calls / concurrency)) * latency


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,4", help="comma-separated worker counts to try")
    parser.add_argument("--concurrency", type=int, default=16, help="LLM calls in flight per worker")
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--tags", type=int, default=5)
    parser.add_argument("--questions", type=int, default=25)
    parser.add_argument("--per-call", type=int, default=10)
    parser.add_argument("--judge", action="store_true", help="then judge the questions (a judge run)")
    args = parser.parse_args()
    if "DATABASE_URL" not in os.environ or "REDIS_URL" not in os.environ:
        sys.exit("Run me under tests/services.sh (it provides PostgreSQL and Redis); see the docstring.")
    os.environ["DATABASE_URL"] = fresh_database(os.environ["DATABASE_URL"], "bench_distill")
    os.environ.setdefault("DEBUG", "1")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    # A long-running server has these loaded after its first request; do not time the imports.
    import distiller.jobs  # noqa: F401
    from datasets.models import Topic
    from distiller.models import LLMProvider
    from distiller.ratelimit import redis_connection
    from distiller.services import run_start

    port = free_port()
    teacher = subprocess.Popen([sys.executable, "manage.py", "teacher", "--port", str(port), "--latency",
                                str(args.latency)], cwd=ROOT, stdout=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/v1/models").read()
            break
        except OSError:
            time.sleep(0.1)
    results = []
    try:
        for count in [int(n) for n in args.workers.split(",")]:
            redis_connection().flushdb()
            env = {**os.environ, "DISTILL_WORKER_CONCURRENCY": str(args.concurrency), "LOG_LEVEL": "WARNING"}
            workers = [subprocess.Popen([sys.executable, "manage.py", "rqworker", "distill"], cwd=ROOT, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
                       for _ in range(count)]
            import django_rq
            from rq import Worker

            while Worker.count(queue=django_rq.get_queue("distill")) < count:
                time.sleep(0.2)
            concurrency = args.concurrency * count
            provider = LLMProvider.objects.get(kind="custom")
            LLMProvider.objects.filter(pk=provider.pk).update(
                base_url=url + "/v1", model="teacher-1", max_concurrency=concurrency, requests_per_minute=0,
                timeout_seconds=30)
            provider.refresh_from_db()
            topic = Topic.objects.create(name=f"Customer Support ({count} workers)")
            urllib.request.urlopen(urllib.request.Request(url + "/teacher/reset", method="POST")).read()
            started = time.monotonic()
            run = run_start(topic=topic, provider=provider, levels=args.levels, tags_per_level=args.tags,
                            questions_per_intent=args.questions, questions_per_call=args.per_call, workers=count)
            stages, last = {}, None
            while True:
                run.refresh_from_db()
                if run.stage != last:
                    stages[run.stage], last = round(time.monotonic() - started, 1), run.stage
                if not run.is_active:
                    break
                time.sleep(0.1)
            wall = time.monotonic() - started
            stats = json.loads(urllib.request.urlopen(url + "/teacher/stats").read())
            question_calls = run.estimate["question_calls"]
            bound = lower_bound(args.levels, args.tags, question_calls, concurrency, args.latency)
            result = {
                "workers": count, "concurrency": concurrency, "status": run.status, "wall_s": round(wall, 1),
                "intents": run.intents_created, "questions": run.questions_created,
                "questions_per_min": round(run.questions_created / wall * 60), "calls": run.calls,
                "planned_calls": run.estimate["calls"], "max_in_flight": stats["max_in_flight"],
                "lower_bound_s": bound, "ratio_to_bound": round(wall / bound, 2),
                "stage_started_s": stages,
                "queued_to_started_s": round((run.started_at - run.created_at).total_seconds(), 2), "near_duplicates_dropped": run.near_duplicates_dropped, "duplicates_dropped": run.duplicates_dropped,
            }
            results.append(result)
            print(json.dumps(result), flush=True)
            if args.judge:
                print(json.dumps(judged_run(run, provider, url, concurrency, args.latency)), flush=True)
            for worker in workers:
                os.killpg(worker.pid, signal.SIGTERM)
            for worker in workers:
                worker.wait(timeout=30)
    finally:
        os.killpg(teacher.pid, signal.SIGTERM)
        teacher.wait()
    if len(results) > 1:
        base = results[0]["questions_per_min"]
        for result in results[1:]:
            print(f"{result['workers']} workers: {result['questions_per_min'] / base:.2f}x the throughput of "
                  f"{results[0]['workers']}")


def judged_run(distilled, provider, url: str, concurrency: int, latency: float) -> dict:
    """A judge run over the distilled topic's questions (the teacher judges): wall time against its bound."""
    from distiller.models import LLMCall
    from distiller.services import run_start

    urllib.request.urlopen(urllib.request.Request(url + "/teacher/reset", method="POST")).read()
    started = time.monotonic()
    run = run_start(topic=distilled.topic, provider=provider, kind="judge", judge=provider.name,
                    workers=len(distilled.job_ids))
    while True:
        run.refresh_from_db()
        if not run.is_active:
            break
        time.sleep(0.1)
    wall = time.monotonic() - started
    judge_calls = LLMCall.objects.filter(run=run, kind="judge").count()
    bound = math.ceil(run.estimate["judge_calls"] / concurrency) * latency
    stats = json.loads(urllib.request.urlopen(url + "/teacher/stats").read())
    return {"judged_run": run.pk, "status": run.status, "questions_judged": run.questions_judged,
            "judge_calls": judge_calls, "planned_judge_calls": run.estimate["judge_calls"],
            "judge_units": run.units_total, "wall_s": round(wall, 1), "lower_bound_s": bound,
            "ratio_to_bound": round(wall / bound, 2), "max_in_flight": stats["max_in_flight"],
            "questions_judged_per_min": round(run.questions_judged / wall * 60)}


if __name__ == "__main__":
    main()
