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
