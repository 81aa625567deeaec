"""Ctrl-C on `make demo` in the middle of its sample run: web, worker, then Redis stop with no
traceback, the run is left resumable, and the next `make demo` finishes it with exact counts."""

import os
import secrets
import signal
import subprocess
import sys
import time

import psycopg
import pytest
from django.conf import settings

from distiller.teacher.server import TeacherConfig, start_in_thread
from tests.ops.processes import ROOT, free_port

PROVIDER_VARIABLES = ("DEEPSEEK_API_KEY", "OPENROUTER_API_KEY", "OPENAI_API_KEY", "LLM_API_KEY", "LLM_BASE_URL",
                      "LLM_DEFAULT_PROVIDER", "LLM_MODEL", "REDIS_URL", "DATABASE_URL")


@pytest.fixture
def demo_database():
    """A database of its own in the test's PostgreSQL cluster: the demo migrates it as a user's would be."""
    db = settings.DATABASES["default"]
    name = f"demo_{secrets.token_hex(4)}"
    server = dict(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname="postgres", autocommit=True)
    with psycopg.connect(**server) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    yield f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{name}", dict(server, dbname=name)
    with psycopg.connect(**server) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def slow_teacher():
    # Each completion takes a second, so Ctrl-C lands while the run still has calls in flight.
    server = start_in_thread(TeacherConfig(latency=1.0))
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def run_row(connection_args) -> tuple | None:
    with psycopg.connect(**connection_args) as connection:
        return connection.execute(
            "SELECT r.status, r.units_done, r.units_total, "
            "(SELECT count(*) FROM distiller_distillationunit u WHERE u.run_id = r.id AND u.status = 'running'), "
            "(SELECT count(*) FROM datasets_question q WHERE q.topic_id = r.topic_id), "
            "(SELECT count(*) FROM datasets_intentnode i WHERE i.topic_id = r.topic_id) "
            "FROM distiller_distillationrun r ORDER BY r.id").fetchone()


def wait_for_run(connection_args, demo, log, condition, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert demo.poll() is None, log.read_text()[-3000:]
        try:
            row = run_row(connection_args)
        except (psycopg.errors.UndefinedTable, psycopg.errors.DeadlockDetected):
            # Still migrating: a table not made yet, or this read deadlocked with a migration's
            # lock on a table it alters (the kept-counts triggers); ask again.
            row = None
        if row and condition(row):
            return row
        time.sleep(0.2)
    raise AssertionError(f"run never got there: {row}\n{log.read_text()[-3000:]}")


def ctrl_c(demo: subprocess.Popen) -> int:
    """What a terminal does on Ctrl-C: SIGINT to the foreground process group."""
    os.killpg(demo.pid, signal.SIGINT)
    return demo.wait(timeout=90)


def test_ctrl_c_leaves_the_sample_run_resumable_and_the_next_demo_finishes_it(tmp_path, demo_database,
                                                                            slow_teacher):
    database_url, connection_args = demo_database
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARIABLES and not k.startswith("PYTEST")}
    env.update(DEBUG="1", VAR_DIR=str(tmp_path), DATABASE_URL=database_url, LLM_BASE_URL=slow_teacher,
               DEMO_ADDR=f"127.0.0.1:{free_port()}", DISTILL_UNIT_LEASE_SECONDS="60")
    command = [sys.executable, "manage.py", "demo", "--no-clinc150"]

    first_log = tmp_path / "first.log"
    first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=first_log.open("wb"), stderr=subprocess.STDOUT,
                             start_new_session=True)
    # The root's four intents exist and their children are being asked for: mid-run.
    wait_for_run(connection_args, first, first_log, lambda row: row[0] == "running" and row[1] >= 1)
    assert ctrl_c(first) == 0
    output = first_log.read_text()
    assert "Traceback" not in output, output[-3000:]
    assert "stopping the web server, then the worker, then Redis" in output
    assert "Run #1 (Customer Support) interrupted; the next `make demo` resumes it." in output
    status, done, total, running_units, _, _ = run_row(connection_args)
    assert (status, running_units) == ("running", 0)  # resumable: no unit held by the dead job
    assert done < 21

    second_log = tmp_path / "second.log"
    second = subprocess.Popen(command, cwd=ROOT, env=env, stdout=second_log.open("wb"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    finished = wait_for_run(connection_args, second, second_log, lambda row: row[0] != "running")
    assert ctrl_c(second) == 0
    output = second_log.read_text()
    assert "Resumed run #1 (Customer Support), interrupted when the demo last stopped." in output
    assert "Traceback" not in output, output[-3000:]
    # 2 levels x 4 intents: 1 + 4 taxonomy units and 16 question units; 16 leaves x 10 questions.
    assert finished == ("succeeded", 21, 21, 0, 160, 20)
