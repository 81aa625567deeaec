"""Start the project's own processes (the Procfile, the container entrypoint) against the test services."""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = str(Path(sys.executable).parent)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def production_env(tmp_path: Path, **extra) -> dict:
    """DEBUG off on the test's PostgreSQL and Redis, over plain HTTP on 127.0.0.1 (no TLS here)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_SETTINGS"))}
    env.update(
        PATH=VENV_BIN + os.pathsep + env.get("PATH", ""),
        DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0", SESSION_COOKIE_SECURE="0", CSRF_COOKIE_SECURE="0",
        DATABASE_URL=database_url(), DATABASE_CONN_MAX_AGE="0", VAR_DIR=str(tmp_path),
        STATIC_ROOT=str(tmp_path / "static"), EXPORT_ROOT=str(tmp_path / "exports"),
        WEB_CONCURRENCY="1", DISTILL_RETRY_BASE_MS="20",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(process: subprocess.Popen) -> int:
    """SIGTERM the process group (a runner and what it started), SIGKILL it if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.wait()


def wait_for_http(url: str, *, status: int = 200, timeout: float = 60, process=None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process exited with {process.returncode}:\n{log.read_text() if log else ''}")
        try:
            last = requests.get(url, timeout=5)
            if last.status_code == status:
                return last
        except requests.RequestException:
            pass
        time.sleep(0.2)
    detail = f"{last.status_code} {last.text[:500]}" if last is not None else "no answer"
    raise AssertionError(f"{url} did not answer {status} ({detail})\n{log.read_text()[-3000:] if log else ''}")
