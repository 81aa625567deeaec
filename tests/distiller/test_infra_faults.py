"""Infrastructure faults: the API while PostgreSQL is down, runs while PostgreSQL or Redis restart.

These tests stop and start the throwaway PostgreSQL and Redis that tests/services.sh started
(it exports TEST_PG_BIN and TEST_SERVICES_DIR).
"""

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from django.db import connections
from django.urls import URLPattern, URLResolver, get_resolver

from config.api import DATABASE_RETRY_AFTER_SECONDS

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


@needs_services
@pytest.mark.django_db(transaction=True)
def test_with_postgresql_stopped_every_api_route_answers_503_in_the_error_shape(client, superuser):
    client.force_login(superuser)
    routes = api_routes()
    assert "/api/v1/runs/" in routes and "/api/v1/runs/1/resume/" in routes
    options = postgres_stop()
    try:
        answers = {route: client.get(route) for route in routes}
        posted = client.post("/api/v1/runs/", {"topic": "x"}, content_type="application/json")
        page = client.get("/admin/")
    finally:
        postgres_start(options)

    for route, response in [*answers.items(), ("POST /api/v1/runs/", posted), ("/admin/", page)]:
        assert (route, response.status_code, response["Retry-After"]) == (route, 503, str(DATABASE_RETRY_AFTER_SECONDS))
        assert response.json()["error"]["code"] == "database_unavailable", route
