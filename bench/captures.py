"""Benchmark of POST /api/v1/labeling/captures/ at production rates: single and batched captures.

16 clients (threads, one HTTP connection per request) post over loopback HTTP to gunicorn
(4 sync workers) on a throwaway PostgreSQL: in the "single" phase one capture per request, in
the "batch" phase batches of 50; 20% of the texts repeat ones already posted (so batches
overlap and update the same rows concurrently), all below the topic's confidence threshold.
Reports captures per second, requests per second and p50/p95/p99 latency per phase, the count
of non-201 answers, and checks the stored rows and occurrence counts are exactly what was sent.
Not a test: run it inside tests/services.sh, which starts a throwaway PostgreSQL and Redis:

    DEBUG=1 bash tests/services.sh .venv/bin/python bench/captures.py
"""

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.review import PYTHON, log, percentile, start_server  # noqa: E402  (the same gunicorn setup)

SETUP = """
import json
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from datasets.models import Topic
from datasets.services import intent_create

topic = Topic.objects.create(name="Captures bench", levels=1, confidence_threshold=0.5)
intents = [intent_create(topic=topic, name=f"Intent {n}").pk for n in range(20)]
user = User.objects.create_user(username="prod-bot")
user.groups.add(Group.objects.get(name="capture client"))
print("SETUP" + json.dumps({"topic": topic.pk, "intents": intents, "token": Token.objects.create(user=user).key}))
"""


def prepare(admin_url: str) -> tuple[str, dict]:
    name = "bench_captures"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    url = urlparse(admin_url)._replace(path=f"/{name}").geturl()
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "1"}
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run([PYTHON, "manage.py", "shell", "-c", SETUP], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    return url, json.loads(out[out.index("SETUP") + 5:])


def post(port: int, token: str, body) -> tuple[int, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.perf_counter()
    conn.request("POST", "/api/v1/labeling/captures/", body=json.dumps(body),
                 headers={"Authorization": f"Token {token}", "Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - started
    conn.close()
    return response.status, elapsed


def phase(port: int, setup: dict, *, name: str, clients: int, requests: int, batch: int, repeat: float,
          sent: Counter) -> dict:
    """Each client posts `requests` requests of `batch` captures; `repeat` of the texts are ones posted before."""
    latencies, statuses, lock = [], Counter(), threading.Lock()
    posted = list(sent)  # texts to repeat, grown as answers come back (no copy per item)

    def client(number: int):
        rng = random.Random(f"{name}-{number}")
        for r in range(requests):
            items = []
            for i in range(batch):
                with lock:
                    text = rng.choice(posted) if posted and rng.random() < repeat else None
                text = text or f"{name} client {number} request {r} item {i}: where is my order"
                items.append({"topic": setup["topic"], "text": text, "confidence": round(rng.uniform(0.05, 0.45), 3),
                              "predicted_intent": rng.choice(setup["intents"])})
            status, elapsed = post(port, setup["token"], items if batch > 1 else items[0])
            with lock:
                statuses[status] += 1
                latencies.append(elapsed)
                if status == 201:
                    fresh = [item["text"] for item in items if item["text"] not in sent]
                    sent.update(item["text"] for item in items)
                    posted.extend(dict.fromkeys(fresh))

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ok = statuses[201]
    return {"phase": name, "clients": clients, "batch": batch, "requests": sum(statuses.values()),
            "statuses": dict(statuses), "captures_per_s": round(ok * batch / wall), "requests_per_s": round(ok / wall, 1),
            "p50_ms": round(percentile(latencies, 50) * 1000), "p95_ms": round(percentile(latencies, 95) * 1000),
            "p99_ms": round(percentile(latencies, 99) * 1000)}


def check(url: str, topic: int, sent: Counter) -> dict:
    with psycopg.connect(url) as conn:
        stored = dict(conn.execute("SELECT text, occurrences FROM datasets_question WHERE topic_id = %s",
                                   [topic]).fetchall())
    return {"rows": len(stored), "texts_sent": len(sent), "occurrences_sent": sum(sent.values()),
            "occurrences_stored": sum(stored.values()), "exact": stored == dict(sent)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--single-requests", type=int, default=100, help="per client, one capture each")
    parser.add_argument("--batch-requests", type=int, default=30, help="per client, --batch captures each")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--repeat", type=float, default=0.2, help="share of texts that repeat earlier ones")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    args = parser.parse_args()
    admin_url = os.environ.get("DATABASE_URL", "")
    if not admin_url.startswith("postgres"):
        raise SystemExit("Run inside tests/services.sh (it exports DATABASE_URL of a throwaway PostgreSQL).")
    admin_url = urlparse(admin_url)._replace(path="/postgres").geturl()
    url, setup = prepare(admin_url)
    # The 16 clients share one token (one deployed model): measure the endpoint, not the throttle.
    os.environ["CAPTURE_THROTTLE_RATE"] = "1000000/min"
    sent: Counter = Counter()
    server, port = start_server(url, args.workers)
    try:
        report = [phase(port, setup, name="single", clients=args.clients, requests=args.single_requests, batch=1,
                        repeat=args.repeat, sent=sent),
                  phase(port, setup, name="batch", clients=args.clients, requests=args.batch_requests,
                        batch=args.batch, repeat=args.repeat, sent=sent)]
    finally:
        server.terminate()
        server.wait(timeout=30)
    result = {"phases": report, "check": check(url, setup["topic"], sent)}
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS bench_captures WITH (FORCE)")
    log(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
