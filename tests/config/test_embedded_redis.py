"""Commands on the embedded defaults from any terminal: no `make demo` running, REDIS_URL unset."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from datasets.models import Export, Question

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_export_without_the_demo_writes_in_process_and_prints_no_traceback(topic, make_intent, make_question,
                                                                              tmp_path):
    make_question(make_intent(topic, "Refunds"), "refund please", status="approved")
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update(DATABASE_URL=database_url(), DEBUG="1", VAR_DIR=str(tmp_path / "var"))
    output = tmp_path / "out.jsonl"
    done = subprocess.run([sys.executable, "manage.py", "export", "--topic", topic.name, "--format", "jsonl",
                           "--output", str(output)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert '"question": "refund please"' in output.read_text()
    assert Export.objects.get().status == "succeeded"
    assert Question.objects.count() == 1


def test_distill_auto_waits_to_the_end_on_the_embedded_defaults_without_the_demo(tmp_path):
    """SQLite and the embedded Redis, as `make demo` uses them, but no demo running: the command
    starts a Redis of its own, works in this process, and prints no traceback."""
    from distiller.teacher.server import TeacherConfig, start_in_thread

    teacher = start_in_thread(TeacherConfig())
    try:
        env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "DATABASE_URL")}
        env.update(DEBUG="1", VAR_DIR=str(tmp_path / "var"), LLM_BASE_URL=f"http://127.0.0.1:{teacher.server_address[1]}/v1",
                   LLM_MODEL="teacher-1", LLM_DEFAULT_PROVIDER="Custom")

        def manage(*args):
            return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                                  text=True, timeout=300)

        assert manage("migrate", "-v0").returncode == 0
        done = manage("distill", "auto", "--topic", "Pets", "--levels", "1", "--tags-per-level", "2",
                      "--questions-per-tag", "3", "--provider", "custom", "--wait")
    finally:
        teacher.shutdown()
        teacher.server_close()
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr + done.stdout
    assert "succeeded" in done.stdout.lower()
    assert not (tmp_path / "var" / "redis.sock").exists()  # this process's Redis stopped with it
