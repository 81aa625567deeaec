"""What the kept-count triggers (datasets/question_counts.py) cost writers (issue 18).

Not a test: run it inside tests/services.sh, which starts a throwaway PostgreSQL and Redis:

    DEBUG=1 bash tests/services.sh .venv/bin/python bench/counts.py --rows 1000000

It creates a database `bench_counts`, migrates it, builds a CLINC150-shaped topic (10 domains,
150 intents) and writes N questions shaped like bench/export.py's (80% approved, 10% relabeled,
10% pending) to a file once. Then, alternately without and with the triggers, it times:

- `COPY datasets_question FROM` that file (every index of the table maintained, as in an import);
- one UPDATE of the status of 10% of the rows (a bulk review);
- 500 single-row status UPDATEs, each its own transaction (reviews one at a time).

With the triggers it checks that the kept counts equal a GROUP BY. Prints one JSON line per step.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import export as export_bench  # noqa: E402  (bench/export.py: database setup helpers)

export_bench.BENCH_DB = "bench_counts"


def report(**fields):
    print("RESULT " + json.dumps(fields), flush=True)


def build(rows: int, path: str) -> int:
    """The database, the topic and the questions file (COPY text, written by the server)."""
    export_bench.bench_database_create()
    from django.db import connection

    columns, values = export_bench.clinc_topic_rows(rows)
    with connection.cursor() as cursor:
        cursor.execute("CREATE UNLOGGED TABLE bench_staging (LIKE datasets_question INCLUDING DEFAULTS INCLUDING IDENTITY)")
        with cursor.cursor.copy(f"COPY bench_staging ({', '.join(columns)}) FROM STDIN") as copy:
            for value in values:
                copy.write_row(value)
        cursor.execute(f"COPY bench_staging ({', '.join(columns)}) TO %s", [path])
        cursor.execute("DROP TABLE bench_staging")
    return len(columns)


def measure(rows: int, path: str, rounds: int):
    from django.db import connection, transaction
    from django.utils import timezone

    from datasets.imports import question_copy_defaults
    from datasets.question_counts import (
        kept_counts,
        question_count_triggers_drop,
        question_count_triggers_install,
        question_counts_rebuild,
    )

    columns, _ = question_copy_defaults(timezone.now())
    for round_number in range(rounds):
        for triggers in (False, True):
            with connection.cursor() as cursor:
                cursor.execute("TRUNCATE datasets_question CASCADE")
                cursor.execute("DELETE FROM datasets_questioncount")
                if triggers:
                    question_count_triggers_install(connection)
                else:
                    question_count_triggers_drop(connection)
                started = time.perf_counter()
                cursor.execute(f"COPY datasets_question ({', '.join(columns)}) FROM %s", [path])
                copy_seconds = time.perf_counter() - started
                cursor.execute("VACUUM ANALYZE datasets_question")
                started = time.perf_counter()
                cursor.execute("UPDATE datasets_question SET status = 'rejected' WHERE mod(id, 10) = 3")
                bulk_seconds = time.perf_counter() - started
                cursor.execute("SELECT id FROM datasets_question WHERE mod(id, 10) = 5 ORDER BY id LIMIT 500")
                ids = [row[0] for row in cursor.fetchall()]
            singles = []
            for question_id in ids:
                started = time.perf_counter()
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("UPDATE datasets_question SET status = 'flagged', version = version + 1 "
                                   "WHERE id = %s", [question_id])
                singles.append((time.perf_counter() - started) * 1000)
            exact = None
            if triggers:
                kept = {(r.intent_id, r.status): r.n for r in kept_counts(topic_ids=None, include_removed=True)}
                with connection.cursor() as cursor:
                    cursor.execute("SELECT intent_id, status, count(*) FROM datasets_question GROUP BY 1, 2")
                    exact = kept == {(i, s): n for i, s, n in cursor.fetchall()}
            report(step="writes", round=round_number + 1, triggers=triggers, rows=rows,
                   copy_seconds=round(copy_seconds, 1), rows_per_second=round(rows / copy_seconds),
                   bulk_update_seconds=round(bulk_seconds, 2), bulk_update_rows=rows // 10,
                   single_update_ms_median=round(statistics.median(singles), 2),
                   single_update_ms_p95=round(sorted(singles)[int(0.95 * len(singles)) - 1], 2),
                   kept_counts_exact=exact)
    question_count_triggers_install(connection)
    question_counts_rebuild()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    path = str(Path(os.environ.get("TEST_SERVICES_DIR", "/tmp")) / "bench_counts_questions.copy")
    started = time.perf_counter()
    build(args.rows, path)
    report(step="build", rows=args.rows, seconds=round(time.perf_counter() - started, 1))
    measure(args.rows, path, args.rounds)
    if os.path.exists(path):
        os.unlink(path)


if __name__ == "__main__":
    main()
