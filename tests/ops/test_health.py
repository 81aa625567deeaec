"""/healthz, /readyz, the admin's live workers per queue, /favicon.ico and the API's index."""

import django_rq
import pytest
import redis
from django.test import Client
from rq import Worker

from config import health

pytestmark = pytest.mark.django_db

QUEUES = ["default", "distill", "exports", "evaluation"]


@pytest.fixture
def live_workers():
    """RQ workers registered for the given queues, their process this live one (as `rqworker` would)."""
    registered = []

    def register(*queue_names):
        connection = django_rq.get_connection("default")
        worker = Worker([django_rq.get_queue(name) for name in queue_names], connection=connection)
        worker.register_birth()
        registered.append(worker)
        return worker

    django_rq.get_connection("default").flushdb()
    yield register
    for worker in registered:
        worker.register_death()


def test_healthz_answers_without_a_login():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_readyz_is_ok_when_everything_answers_and_every_queue_has_a_live_worker(live_workers, settings, tmp_path):
    settings.EXPORT_ROOT = tmp_path / "exports"
    live_workers("default", "distill")
    live_workers("exports", "evaluation", "distill")
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {
        "database": {"ok": True}, "redis": {"ok": True}, "exports": {"ok": True},
        "workers": {"ok": True, "live": {"default": 1, "distill": 2, "exports": 1, "evaluation": 1}}}}
    assert list((tmp_path / "exports").iterdir()) == []  # its probe file is gone


def test_readyz_names_the_queues_no_worker_serves(live_workers, settings, tmp_path):
    settings.EXPORT_ROOT = tmp_path
    live_workers("distill")
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["checks"]["workers"] == {
        "ok": False, "live": {"default": 0, "distill": 1, "exports": 0, "evaluation": 0},
        "error": "no live worker on queue default, exports, evaluation"}


def test_a_dead_workers_registration_does_not_count(live_workers, settings, tmp_path):
    settings.EXPORT_ROOT = tmp_path
    worker = live_workers(*QUEUES)
    worker.pid = 2 ** 22 + 1  # above Linux's pid_max: no such process on this machine
    worker.connection.hset(worker.key, "pid", worker.pid)
    assert health.workers_live_by_queue() == dict.fromkeys(QUEUES, 0)


def test_readyz_says_what_failed_without_hosts_passwords_or_paths(live_workers, settings, tmp_path, monkeypatch):
    live_workers(*QUEUES)
    not_a_folder = tmp_path / "exports-is-a-file"
    not_a_folder.write_text("")
    settings.EXPORT_ROOT = not_a_folder
    unreachable = redis.Redis.from_url("redis://:hunter2-secret@127.0.0.1:1/0", socket_connect_timeout=1)
    monkeypatch.setattr(django_rq, "get_connection", lambda name="default": unreachable)
    response = Client().get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"] == {"ok": False, "error": "Redis unreachable (ConnectionError)"}
    assert checks["exports"] == {"ok": False, "error": "export storage not writable (FileExistsError)"}
    assert checks["database"] == {"ok": True}
    body = response.content.decode()
    assert "hunter2" not in body and "127.0.0.1" not in body and str(tmp_path) not in body


def test_the_admin_home_shows_live_workers_per_queue_to_superusers_only(live_workers, superuser, reviewer):
    live_workers("distill", "exports")
    client = Client()
    client.force_login(superuser)
    page = client.get("/admin/").content.decode()
    assert "Live workers per queue" in page
    assert "nothing runs these jobs: start <code>manage.py rqworker default</code>" in page
    assert "manage.py rqworker distill" not in page
    client.force_login(reviewer)
    assert "Live workers per queue" not in client.get("/admin/").content.decode()


def test_the_favicon_is_an_icon():
    response = Client().get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"
    assert "max-age=86400" in response["Cache-Control"]


def test_the_api_index_lists_the_entry_points_to_signed_in_users_only(dataset_admin):
    anonymous = Client().get("/api/v1/")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "not_authenticated"
    client = Client()
    client.force_login(dataset_admin)
    body = client.get("/api/v1/").json()
    # Other entry points join as the API grows; these are the ones every app has had.
    assert {name: f"http://testserver/api/v1/{path}" for name, path in [
        ("imports", "imports/"), ("labeling/export", "labeling/export"), ("topics", "topics/"),
        ("questions", "questions/"), ("exports", "exports/"), ("runs", "runs/"), ("runs/estimate", "runs/estimate/"),
        ("review/next", "review/next/"), ("labeling/captures", "labeling/captures/"),
        ("evaluations", "evaluations/")]}.items() <= body["entry_points"].items()
    # Only paths that need no id, each listed once under its own name.
    for name, url in body["entry_points"].items():
        assert url.rstrip("/") == f"http://testserver/api/v1/{name}" and not any(c.isdigit() for c in name)
    assert body["schema"] == "http://testserver/api/schema/" and body["docs"] == "http://testserver/api/docs/"
