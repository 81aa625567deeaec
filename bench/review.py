"""Benchmark of the review queue: p95 latency of "next item" and "submit review".

8 concurrent reviewers (threads, one HTTP connection per request) work a topic over loopback
HTTP against gunicorn, at each database size: 10,000 and 1,000,000 questions in PostgreSQL.
Each reviewer loops: GET /api/v1/review/next/ ("next item"), then POST the decision to
/api/v1/questions/{id}/review/ ("submit review"): 70% approve, 10% each reject, flag, relabel.
The sizes alternate over several rounds (the machine is shared) and the report gives the median
of the rounds' p95. The possible-duplicates lookup, which the review screen makes off the
decision path, is timed on its own (its SQL, straight on the database).
Not a test: run it inside tests/services.sh, which starts a throwaway PostgreSQL and Redis:

    DEBUG=1 bash tests/services.sh .venv/bin/python bench/review.py --sizes 10000 1000000

Per size it creates a database, migrates it, creates a CLINC150-shaped topic (10 domains,
150 intents) with 8 reviewers, bulk-loads the questions with one INSERT ... SELECT over
generate_series (CLINC150 sentences, made unique by a suffix), with 60% approved (each with its
ReviewEvent), 35% pending (1 in 100 of them a captured low-confidence query), the rest rejected
or flagged; VACUUM ANALYZE; then starts gunicorn (4 sync workers) and measures.
"""

import argparse
import http.client
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import psycopg

ROOT = Path(__file__).resolve().parent.parent
CLINC = ROOT / "datasets" / "demo_data" / "clinc150"
PYTHON = sys.executable
SIMILARITY_FLOOR = 0.3  # labeling.selectors.SIMILARITY_FLOOR (no Django in this process)

SETUP = """
import json
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from datasets.clinc150 import _title
from datasets.models import Topic
from datasets.services import intent_create

domains = json.load(open({domains!r}))
topic = Topic.objects.create(name="Bench", levels=2, overlap_share={overlap}, overlap_reviewers=2)
intents = {{}}
for domain, names in domains.items():
    parent = intent_create(topic=topic, name=_title(domain))
    for raw in names:
        intents[raw] = intent_create(topic=topic, parent=parent, name=_title(raw)).pk
group = Group.objects.get(name="reviewer")
tokens = []
for n in range({reviewers}):
    user = User.objects.create_user(username=f"reviewer{{n}}")
    user.groups.add(group)
    topic.reviewers.add(user)
    tokens.append(Token.objects.create(user=user).key)
print("SETUP" + json.dumps({{"topic": topic.pk, "intents": intents, "tokens": tokens, "actor": user.pk}}))
"""

LOAD = """
INSERT INTO datasets_question (
    topic_id, intent_id, text, text_hash, language, source, provider, model, temperature, prompt_version,
    style, complexity, audience, edge_case, confidence, predicted_intent_id, occurrences, status, reviewed_by_id,
    reviewed_at, original_text, version, created_at, updated_at, split, judge_verdict, judge_reason, judge_model,
    judge_prompt_version)
SELECT %(topic)s, b.intent_id, t.text, encode(digest(t.normalized, 'sha1'), 'hex'), 'en',
       CASE WHEN g.i %% 100 = 61 THEN 'captured' ELSE 'generated' END,
       'deepseek', 'deepseek-chat', 0.8, 'v1',
       (ARRAY['casual', 'formal', 'terse', 'rambling'])[1 + g.i %% 4],
       (ARRAY['simple', 'medium', 'complex'])[1 + g.i %% 3], 'consumer', '',
       CASE WHEN g.i %% 100 = 61 THEN ((g.i::bigint * 7919) %% 690) / 1000.0 END,
       CASE WHEN g.i %% 100 = 61 THEN b.intent_id END,
       1, s.status, CASE WHEN s.status <> 'pending' THEN %(actor)s END,
       CASE WHEN s.status <> 'pending' THEN now() END, '', 1, now(), now(), '', '', '', '', ''
FROM generate_series(0, %(size)s - 1) AS g(i)
JOIN bench_base b ON b.n = g.i %% %(nbase)s
CROSS JOIN LATERAL (SELECT CASE WHEN g.i < %(nbase)s THEN b.text
                                ELSE b.text || ' (v' || (g.i / %(nbase)s) || ')' END AS text,
                           CASE WHEN g.i < %(nbase)s THEN b.normalized
                                ELSE b.normalized || ' v' || (g.i / %(nbase)s) END AS normalized) t
CROSS JOIN LATERAL (SELECT CASE WHEN g.i %% 100 < 60 THEN 'approved' WHEN g.i %% 100 < 95 THEN 'pending'
                                WHEN g.i %% 100 < 98 THEN 'rejected' ELSE 'flagged' END AS status) s
ON CONFLICT ON CONSTRAINT question_unique_text_per_topic DO NOTHING
"""

EVENTS = """
INSERT INTO datasets_reviewevent (question_id, actor_id, action, from_status, to_status, from_intent_id,
                                  to_intent_id, from_text, to_text, via, created_at, changes, reason)
SELECT id, %(actor)s, CASE status WHEN 'approved' THEN 'approve' WHEN 'rejected' THEN 'reject' ELSE 'flag' END,
       'pending', status, intent_id, intent_id, '', '', 'ui', now(), '{}', ''
FROM datasets_question WHERE status <> 'pending'
"""


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_sentences(intents: dict[str, int]) -> list[tuple[int, str, str, int]]:
    """CLINC150's in-scope sentences, unique after the project's normalization, shuffled."""
    from datasets.normalize import normalize_text

    data = json.loads((CLINC / "data_full.json").read_text())
    seen, rows = set(), []
    for split in ("train", "val", "test"):
        for text, label in data[split]:
            normalized = normalize_text(text)
            if label in intents and normalized and normalized not in seen:
                seen.add(normalized)
                rows.append((text, normalized, intents[label]))
    random.Random(7).shuffle(rows)  # so consecutive ids are not all one intent
    return [(n, text, normalized, intent) for n, (text, normalized, intent) in enumerate(rows)]


def prepare(admin_url: str, size: int, reviewers: int, overlap: float = 0.0) -> tuple[str, dict]:
    name = f"bench_review_{size}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    url = urlparse(admin_url)._replace(path=f"/{name}").geturl()
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "1"}
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run([PYTHON, "manage.py", "shell", "-c",
                          SETUP.format(domains=str(CLINC / "domains.json"), reviewers=reviewers, overlap=overlap)],
                         cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    setup = json.loads(out[out.index("SETUP") + 5:])
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        # text_hash must be what Question.save() computes: sha1 of the normalized text, and
        # normalize("... (v31)") is normalize("...") + " v31".
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
        conn.execute("CREATE TEMP TABLE bench_base (n int PRIMARY KEY, text text, normalized text, intent_id bigint)")
        base = base_sentences(setup["intents"])
        with conn.cursor().copy("COPY bench_base (n, text, normalized, intent_id) FROM STDIN") as copy:
            for row in base:
                copy.write_row(row)
        params = {"topic": setup["topic"], "actor": setup["actor"], "size": size, "nbase": len(base)}
        conn.execute(LOAD, params)
        conn.execute(EVENTS, params)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        counts = dict(conn.execute("SELECT status, count(*) FROM datasets_question GROUP BY status").fetchall())
        counts["total"] = sum(counts.values())
    log(f"  loaded {size:,} questions in {time.perf_counter() - started:.0f}s: {counts}")
    return url, setup


def start_server(url: str, workers: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50),
           "ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING",
           # Plain HTTP over loopback: production settings would redirect it to HTTPS (301).
           "SECURE_SSL_REDIRECT": "0"}
    server = subprocess.Popen(
        [str(Path(PYTHON).parent / "gunicorn"), "config.wsgi", "-w", str(workers), "-b", f"127.0.0.1:{port}",
         "--log-level", "warning"], cwd=ROOT, env=env)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, port
        except OSError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("gunicorn did not start")


def request(port, method, path, token, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
    payload = None
    if body is not None:
        payload, headers["Content-Type"] = json.dumps(body), "application/json"
    started = time.perf_counter()
    conn.request(method, path, body=payload, headers=headers)
    response = conn.getresponse()
    data = response.read()
    elapsed = time.perf_counter() - started
    conn.close()
    return response.status, json.loads(data) if data else None, elapsed


def reviewer_session(port, topic, token, leaf_ids, iterations, warmup, similar, results, errors, seen, lock, spans):
    rng = random.Random(token)
    measured_from = None
    path = f"/api/v1/review/next/?topic={topic}" + ("&similar=1" if similar else "")
    for n in range(warmup + iterations):
        status, body, t_next = request(port, "GET", path, token)
        if status != 200 or not body["question"]:
            errors.append(f"next {status} {body}")
            return
        question = body["question"]
        with lock:
            # With overlap, k = 2 reviewers get an overlapping question: never the same one twice.
            key = (token, question["id"]) if question.get("overlap") else question["id"]
            if key in seen:
                errors.append(f"question {question['id']} handed out twice")
            seen.add(key)
        roll = rng.random()
        action = "approve" if roll < 0.7 else "reject" if roll < 0.8 else "flag" if roll < 0.9 else "relabel"
        review = {"action": action, "version": question["version"]}
        if action == "relabel":
            review["intent"] = rng.choice([i for i in leaf_ids if i != question["intent"]["id"]])
        status, body, t_submit = request(port, "POST", f"/api/v1/questions/{question['id']}/review/", token, review)
        if status != 200:
            errors.append(f"review {status} {body}")
            return
        if n == warmup - 1:
            measured_from = time.perf_counter()
        if n >= warmup:
            results["next"].append(t_next)
            results["submit"].append(t_submit)
    spans.append((measured_from, time.perf_counter()))


RESET = """
WITH votes AS (DELETE FROM datasets_reviewvote RETURNING question_id),
touched AS (DELETE FROM datasets_reviewevent WHERE via = 'api' RETURNING question_id)
UPDATE datasets_question q
SET status = 'pending', intent_id = coalesce(q.original_intent_id, q.intent_id), original_intent_id = NULL,
    reviewed_by_id = NULL, reviewed_at = NULL, leased_by_id = NULL, lease_expires_at = NULL
WHERE q.id IN (SELECT question_id FROM touched)
"""


def reset(url):
    """Put back what a round decided, so every round starts from the same queue."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(RESET)
        conn.execute("VACUUM ANALYZE datasets_question, datasets_reviewevent, datasets_reviewvote")


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def measure(port, setup, reviewers, iterations, warmup, similar) -> dict:
    results = {"next": [], "submit": []}
    errors, seen, lock, spans = [], set(), threading.Lock(), []
    leaf_ids = list(setup["intents"].values())
    threads = [threading.Thread(target=reviewer_session, args=(
        port, setup["topic"], token, leaf_ids, iterations, warmup, similar, results, errors, seen, lock, spans))
        for token in setup["tokens"][:reviewers]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"errors: {errors[:5]}")
    # Throughput over the measured phase only (after every reviewer's warm-up).
    wall = max(end for _, end in spans) - max(start for start, _ in spans)
    summary = {"reviews_per_s": round(len(results["submit"]) / wall, 1), "samples": len(results["submit"])}
    for kind, values in results.items():
        summary[kind] = {name: round(1000 * value, 1) for name, value in (
            ("p50", statistics.median(values)), ("p95", percentile(values, 95)), ("p99", percentile(values, 99)),
            ("max", max(values)))}
    return summary


def explain(url, topic) -> dict:
    """Plans of the queue's pick and of the possible-duplicates lookup, for the report."""
    with psycopg.connect(url) as conn:
        def plan(sql, params):
            rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params).fetchall()
            conn.rollback()
            return "\n".join(r[0] for r in rows)

        pk, text, intent_id = conn.execute(
            "SELECT id, text, intent_id FROM datasets_question WHERE topic_id = %s AND status = 'pending' "
            "ORDER BY id DESC LIMIT 1", [topic]).fetchone()
        return {
            "queue": plan("SELECT id FROM datasets_question WHERE topic_id = %s AND status = 'pending' "
                          "AND (leased_by_id IS NULL OR lease_expires_at <= now()) "
                          "ORDER BY confidence ASC NULLS LAST, id ASC LIMIT 1 FOR UPDATE SKIP LOCKED", [topic]),
            "similar": plan("SELECT id, similarity(text, %s) AS score FROM datasets_question "
                            "WHERE intent_id = %s AND id <> %s AND similarity(text, %s) >= %s "
                            "ORDER BY score DESC, id LIMIT 5", [text, intent_id, pk, text, SIMILARITY_FLOOR]),
        }


def duplicates_latency(url, samples=100) -> dict:
    """The possible-duplicates lookup alone (labeling.selectors.questions_similar's SQL), in ms."""
    timings = []
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id, text, intent_id FROM datasets_question WHERE status = 'pending' "
                            "ORDER BY random() LIMIT %s", [samples]).fetchall()
        for pk, text, intent_id in rows:
            started = time.perf_counter()
            conn.execute("SELECT q.id, q.text, q.status, q.intent_id, similarity(q.text, %s) AS score "
                         "FROM datasets_question q WHERE q.intent_id = %s AND q.id <> %s "
                         "AND similarity(q.text, %s) >= %s ORDER BY score DESC, q.id LIMIT 5",
                         [text, intent_id, pk, text, SIMILARITY_FLOOR]).fetchall()
            timings.append(time.perf_counter() - started)
    return {"p50": round(1000 * statistics.median(timings), 1), "p95": round(1000 * percentile(timings, 95), 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--reviewers", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=100, help="Reviews per reviewer and round (after warm-up)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="Rounds, alternating the sizes, so load from elsewhere on the machine hits both alike")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--similar", action="store_true", help="Ask next for the possible duplicates too")
    parser.add_argument("--keep", action="store_true", help="Keep the benchmark databases")
    parser.add_argument("--overlap", type=float, default=0.0,
                        help="Share of questions two reviewers decide independently (the topic's overlap_share)")
    args = parser.parse_args()
    admin_url = os.environ.get("DATABASE_URL", "")
    if not admin_url.startswith("postgres"):
        raise SystemExit("Run inside tests/services.sh (it exports DATABASE_URL of a throwaway PostgreSQL).")
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    admin_url = urlparse(admin_url)._replace(path="/postgres").geturl()
    prepared = {}
    for size in args.sizes:
        log(f"size {size:,}: preparing")
        prepared[size] = prepare(admin_url, size, args.reviewers, args.overlap)
    report = {size: {"rounds": []} for size in args.sizes}
    try:
        for round_number in range(1, args.rounds + 1):
            for size in args.sizes:
                url, setup = prepared[size]
                server, port = start_server(url, args.workers)
                try:
                    log(f"round {round_number}, size {size:,}: {args.reviewers} reviewers x {args.iterations} reviews")
                    result = measure(port, setup, args.reviewers, args.iterations, args.warmup, args.similar)
                finally:
                    server.terminate()
                    server.wait(timeout=30)
                    reset(url)
                log("  " + json.dumps(result))
                report[size]["rounds"].append(result)
        for size in args.sizes:
            url, setup = prepared[size]
            rounds = report[size]["rounds"]
            for kind in ("next", "submit"):
                report[size][f"{kind}_p95_median"] = statistics.median(r[kind]["p95"] for r in rounds)
                report[size][f"{kind}_p50_median"] = statistics.median(r[kind]["p50"] for r in rounds)
            report[size]["reviews_per_s_median"] = statistics.median(r["reviews_per_s"] for r in rounds)
            report[size]["duplicates_lookup_ms"] = duplicates_latency(url)
            report[size]["plans"] = explain(url, setup["topic"])
    finally:
        if not args.keep:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                for size in args.sizes:
                    conn.execute(f"DROP DATABASE IF EXISTS bench_review_{size} WITH (FORCE)")
    print(json.dumps(report, indent=2))
    if len(args.sizes) >= 2:
        small, large = args.sizes[0], args.sizes[-1]
        for kind in ("next", "submit"):
            a, b = report[small][f"{kind}_p95_median"], report[large][f"{kind}_p95_median"]
            print(f"{kind}: p95 (median of {args.rounds} rounds) {a} ms at {small:,} vs {b} ms at {large:,}: "
                  f"{b / a:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
