"""The test teacher over real HTTP, a provider pointing at it, and real RQ worker processes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import django_rq
import pytest
from django.conf import settings
from rq import Worker

from distiller import ratelimit
from distiller.models import DistillationRun, LLMProvider
from distiller.ratelimit import redis_connection
from distiller.teacher.server import TeacherConfig, start_in_thread

ROOT = Path(__file__).resolve().parents[2]
WORKERS = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def teacher():
    server = start_in_thread(TeacherConfig(hang_seconds=3.0, retry_after=0.05))
    server.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def provider(db, teacher):
    redis_connection().flushdb()  # provider limits and queues of earlier tests
    # The flush took this process's liveness key too: without a new owner, the limiter would take
    # this process for dead until its keeper's next beat and list its calls in flight as lost.
    ratelimit._owner = None
    return LLMProvider.objects.create(
        name="Teacher", kind=LLMProvider.Kind.CUSTOM, base_url=teacher.url, model="teacher-1", api_key_env="",
        supports_json_schema=True, max_concurrency=8, requests_per_minute=0, timeout_seconds=1.0,
    )


def database_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class WorkerPool:
    """`manage.py rqworker distill` processes, each in its own process group (so SIGKILL takes the work horse too)."""

    def __init__(self):
        self.processes: list[subprocess.Popen] = []

    def start(self, count: int = 1, **env) -> list[subprocess.Popen]:
        environment = {**os.environ, "DATABASE_URL": database_url(), "DEBUG": "1", "DISTILL_RETRY_BASE_MS": "20",
                       "DISTILL_UNIT_LEASE_SECONDS": "3", "DATABASE_CONN_MAX_AGE": "0",
                       **{k: str(v) for k, v in env.items()}}
        before = self.count()
        started = [subprocess.Popen([sys.executable, "manage.py", "rqworker", "distill"],
                                    cwd=ROOT, env=environment, start_new_session=True,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(count)]
        self.processes += started
        wait_for(lambda: self.count() >= before + count, timeout=60, what="workers to start")
        return started

    @staticmethod
    def count() -> int:
        return Worker.count(queue=django_rq.get_queue("distill"))

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL the worker and its work horse (RQ puts the horse in its own process group)."""
        for pid in children_of(process.pid):
            os.kill(pid, signal.SIGKILL)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                for pid in children_of(process.pid):
                    os.kill(pid, signal.SIGTERM)
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def children_of(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return children


@pytest.fixture
def workers():
    pool = WorkerPool()
    yield pool
    pool.stop_all()


def wait_for(condition, *, timeout: float = 90, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def wait_until_ended(run: DistillationRun, timeout: float = 120) -> DistillationRun:
    def ended():
        run.refresh_from_db()
        return not run.is_active

    wait_for(ended, timeout=timeout, what=f"run #{run.pk} to end")
    return run
