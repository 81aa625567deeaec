"""One configuration per run: the endpoint a run calls is fixed when it starts, not read again
from each worker's environment."""

import io
import json
import urllib.request

import pytest
from django.core.management import call_command

from distiller.llm import Endpoint, LLMFatalError
from distiller.models import DistillationRun, LLMProvider
from distiller.selectors import run_progress
from distiller.teacher.server import TeacherConfig, start_in_thread
from tests.distiller.conftest import WORKERS, wait_until_ended


def requests_of(server) -> int:
    url = f"http://127.0.0.1:{server.server_address[1]}/teacher/stats"
    return json.loads(urllib.request.urlopen(url, timeout=5).read())["requests"]


@pytest.fixture
def other_teacher():
    server = start_in_thread(TeacherConfig())
    yield server
    server.shutdown()
    server.server_close()


@WORKERS
@pytest.mark.workers
def test_a_worker_calls_the_endpoint_the_cli_stored_at_the_start_not_its_own(topic, teacher, other_teacher, workers, settings):
    from distiller.ratelimit import redis_connection

    redis_connection().flushdb()
    custom = LLMProvider.objects.create(name="Local", kind=LLMProvider.Kind.CUSTOM, base_url="", model="",
                                        api_key_env="", supports_json_schema=True, max_concurrency=4,
                                        requests_per_minute=0, timeout_seconds=2.0)
    settings.LLM_BASE_URL, settings.LLM_MODEL = teacher.url, "teacher-1"  # what the starter sees
    elsewhere = f"http://127.0.0.1:{other_teacher.server_address[1]}/v1"
    workers.start(1, LLM_BASE_URL=elsewhere, LLM_MODEL="other-model")  # what the worker's environment says
    said = io.StringIO()
    call_command("distill", "auto", "--topic", topic.name, "--provider", "Local", "--levels", "1",
                 "--tags-per-level", "2", "--questions-per-tag", "3", stdout=said, stderr=io.StringIO())
    assert f"calls Local: {teacher.url} (model teacher-1) (fixed at the start: every worker uses it)" in said.getvalue()
    run = DistillationRun.objects.get(topic=topic)
    assert run.parameters["endpoints"] == {str(custom.pk): {"name": "Local", "base_url": teacher.url,
                                                            "model": "teacher-1"}}
    run = wait_until_ended(run)
    assert run.status == "succeeded", run.error
    assert requests_of(other_teacher) == 0
    assert run.calls == requests_of(teacher) > 0
    assert run_progress(run=run)["endpoints"] == f"Local: {teacher.url} (model teacher-1)"


def test_a_worker_without_the_key_variable_is_refused_naming_it_and_its_host(db, monkeypatch):
    import socket

    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    deepseek = LLMProvider.objects.get(name="DeepSeek")
    with pytest.raises(LLMFatalError) as refused:
        Endpoint.from_provider(deepseek, resolved={"base_url": deepseek.base_url, "model": "deepseek-chat"})
    assert refused.value.message == (f"DeepSeek: DEEPSEEK_API_KEY is not set in the environment of the worker on "
                                     f"{socket.gethostname()}; set it there (keys are never stored).")
