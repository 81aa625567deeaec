"""The Procfile's web and worker, started by honcho with DEBUG off on PostgreSQL and Redis: a user
logs in, distils a small topic, reviews it and downloads the export, all over HTTP."""

import json
import re
import time

import pytest
import requests
from django.contrib.auth.models import User

from datasets.models import Question, Topic
from distiller.models import LLMProvider
from tests.ops.processes import VENV_BIN, free_port, production_env, start, stop, wait_for_http

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


class Client(requests.Session):
    """A browser-like session against one base URL."""

    def __init__(self, base: str):
        super().__init__()
        self.base = base

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", 30)
        kwargs.setdefault("allow_redirects", False)
        return super().request(method, url if url.startswith("http") else self.base + url, *args, **kwargs)


def poll(client, url: str, *, until, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(url).json()
        if until(body):
            return body
        time.sleep(0.3)
    raise AssertionError(f"{url} never got there: {body}")


def test_the_procfile_serves_login_a_run_a_review_and_an_export_with_debug_off(tmp_path, teacher, settings):
    # The servers hash with the production hashers, not the tests' fast one: the password must be theirs.
    from django.conf import global_settings

    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    User.objects.create_superuser("ops", "ops@example.com", "pw-ops-long-enough")
    LLMProvider.objects.create(name="Teacher", kind=LLMProvider.Kind.CUSTOM, base_url=teacher.url, model="teacher-1",
                               api_key_env="", supports_json_schema=True, max_concurrency=4, requests_per_minute=0)
    port = free_port()
    log = tmp_path / "honcho.log"
    honcho = start([f"{VENV_BIN}/honcho", "start", "--procfile", "Procfile", "--no-prefix"],
                   production_env(tmp_path, PORT=port), log)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for_http(f"{base}/healthz", process=honcho, log=log).json() == {"status": "ok"}
        ready = wait_for_http(f"{base}/readyz", process=honcho, log=log).json()
        assert ready["status"] == "ok"
        assert ready["checks"]["workers"]["live"] == {"default": 1, "distill": 1, "exports": 1, "evaluation": 1}

        client = Client(base)
        login_page = client.get("/accounts/login/")
        assert login_page.status_code == 200 and "DEBUG" not in login_page.text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
        # collectstatic ran: the admin's CSS has a content-hashed name, cached for years.
        stylesheet = re.search(r'href="(/static/[^"]+\.[0-9a-f]{12}\.css)"', login_page.text).group(1)
        css = client.get(stylesheet)
        assert css.status_code == 200 and "immutable" in css.headers["cache-control"]
        assert "max-age=315360000" in css.headers["cache-control"]
        signed_in = client.post("/accounts/login/", data={"username": "ops", "password": "pw-ops-long-enough",
                                                          "csrfmiddlewaretoken": token})
        assert signed_in.status_code == 302 and signed_in.headers["location"] == "/"
        client.headers["X-CSRFToken"] = client.cookies["csrftoken"]

        topic = client.post("/api/v1/topics/", json={"name": "Procfile Banking"})
        assert topic.status_code == 201, topic.text
        topic_id = topic.json()["id"]
        run = client.post("/api/v1/runs/", json={"topic": topic_id, "provider": "Teacher", "levels": 1,
                                                 "tags_per_level": 2, "questions_per_intent": 3})
        assert run.status_code == 201, run.text
        done = poll(client, f"/api/v1/runs/{run.json()['id']}/", until=lambda r: r["status"] not in ("queued", "running"))
        assert done["status"] == "succeeded", done

        reviewed = []
        while True:
            shown = client.get(f"/api/v1/review/next/?topic={topic_id}").json()
            if not shown["question"]:
                break
            question = shown["question"]
            answer = client.post(f"/api/v1/questions/{question['id']}/review/",
                                 json={"action": "approve", "version": question["version"]})
            assert answer.status_code == 200, answer.text
            reviewed.append(question["id"])
        assert len(reviewed) == 6

        export = client.post("/api/v1/exports/", json={"topic": topic_id, "format": "jsonl"})
        assert export.status_code == 202, export.text
        finished = poll(client, f"/api/v1/exports/{export.json()['id']}/",
                        until=lambda e: e["status"] not in ("queued", "running"))
        assert finished["status"] == "succeeded", finished
        rows = []
        for file in finished["files"]:
            download = client.get(file["url"])
            assert download.status_code == 200
            rows += [json.loads(line) for line in download.text.splitlines()]
        assert len(rows) == 6
        assert {row["question"] if "question" in row else row["text"] for row in rows} == set(
            Question.objects.filter(pk__in=reviewed).values_list("text", flat=True))
    finally:
        stop(honcho)
    assert Topic.objects.get(pk=topic_id).owner.username == "ops"
    assert Question.objects.filter(topic_id=topic_id, status=Question.Status.APPROVED).count() == 6
    output = log.read_text()
    assert "Traceback" not in output, output[-3000:]
    assert "web.1 stopped (rc=0)" in output and "worker.1 stopped (rc=0)" in output, output[-3000:]
