"""The container files, as far as they can be checked without a container engine: the compose file
validates, the image runs as a non-root user, and the entrypoint runs the Procfile's commands
(run here outside a container, on the test's PostgreSQL and Redis)."""

import shutil
import subprocess
import sys

import pytest
import yaml

from tests.ops.processes import ROOT, free_port, production_env, start, stop, wait_for_http


def compose_command() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_the_image_runs_the_entrypoint_as_a_non_root_user_on_a_slim_base():
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    assert lines[[i for i, line in enumerate(lines) if line.startswith("FROM ")][0]].endswith("-slim-bookworm")
    assert "USER distiller" in lines
    assert lines.index("USER distiller") > max(i for i, line in enumerate(lines) if line.startswith("RUN "))
    assert 'ENTRYPOINT ["/app/docker/entrypoint.sh"]' in lines and 'CMD ["web"]' in lines


def test_compose_runs_web_and_worker_from_the_same_image_with_their_services():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"migrate", "web", "worker", "postgres", "redis", "s3", "s3-bucket"}
    assert [services[name]["command"] for name in ("migrate", "web", "worker")] == [["migrate"], ["web"], ["worker"]]
    assert services["web"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["web"]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    # Exports in the s3 service's bucket, created before web and workers start.
    assert services["worker"]["environment"]["S3_ENDPOINT_URL"] == "${S3_ENDPOINT_URL:-http://s3:9000}"
    assert services["web"]["depends_on"]["s3-bucket"] == {"condition": "service_completed_successfully"}


def test_docker_compose_config_validates_the_compose_file(tmp_path):
    command = compose_command()
    if command is None:
        pytest.skip("no docker compose / docker-compose here (Debian: apt install docker-compose)")
    shutil.copy(ROOT / "compose.yaml", tmp_path / "compose.yaml")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    with (tmp_path / ".env").open("a") as env:
        env.write("SECRET_KEY=compose-config-check-0123456789abcdef\nPOSTGRES_PASSWORD=pg\nS3_SECRET_ACCESS_KEY=s3\n")
    result = subprocess.run([*command, "config"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)["services"]
    assert resolved["worker"]["environment"]["DATABASE_URL"] == "postgres://distiller:pg@postgres:5432/distiller"
    assert {k: v for k, v in resolved["worker"]["environment"].items() if k.startswith("S3_")} == {
        "S3_BUCKET": "distiller-exports", "S3_ENDPOINT_URL": "http://s3:9000", "S3_REGION": "us-east-1",
        "S3_ACCESS_KEY_ID": "distiller", "S3_SECRET_ACCESS_KEY": "s3", "S3_ADDRESSING_STYLE": "path",
        "S3_PREFIX": ""}
    # Without a secret key compose refuses to start anything, naming the variable.
    (tmp_path / ".env").write_text("POSTGRES_PASSWORD=pg\nS3_SECRET_ACCESS_KEY=s3\n")
    refused = subprocess.run([*command, "config", "-q"], cwd=tmp_path, capture_output=True, text=True)
    assert refused.returncode != 0 and "set SECRET_KEY in .env" in refused.stderr


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_entrypoint_migrates_runs_the_procfiles_web_and_passes_other_commands_through(tmp_path):
    env = production_env(tmp_path)
    migrate = subprocess.run(["docker/entrypoint.sh", "migrate"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert migrate.returncode == 0, migrate.stderr
    assert "No migrations to apply." in migrate.stdout

    other = subprocess.run(["docker/entrypoint.sh", sys.executable, "-c", "print('passed through')"], cwd=ROOT,
                           env=env, capture_output=True, text=True)
    assert other.stdout == "passed through\n"

    port = free_port()
    log = tmp_path / "web.log"
    web = start(["docker/entrypoint.sh", "web"], {**env, "PORT": str(port)}, log)
    try:
        assert wait_for_http(f"http://127.0.0.1:{port}/healthz", process=web, log=log).json() == {"status": "ok"}
        login = wait_for_http(f"http://127.0.0.1:{port}/accounts/login/", process=web, log=log)
        assert "Content-Security-Policy" in login.headers
    finally:
        stop(web)
    assert "gunicorn" in log.read_text() and "Traceback" not in log.read_text()
