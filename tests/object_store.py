"""An S3-compatible object store for tests: moto's server (a real HTTP S3 API) started once per test
module, and a new bucket per test with the exports storage pointed at it, as S3_BUCKET... would
(config/settings.py). A test folder's conftest.py imports them (`from tests.object_store import bucket,
s3_server`); `worker_run_burst` runs a worker as another machine would."""

import os
import secrets
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse, urlunparse

import boto3
import pytest
from django.db import connection

from tests.ops.processes import ROOT, VENV_BIN, free_port, start, stop, wait_for_http

CREDENTIALS = {"S3_ACCESS_KEY_ID": "test-access", "S3_SECRET_ACCESS_KEY": "test-secret", "S3_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    """`moto_server` on a free port: S3's HTTP API, in memory."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    env = {**os.environ, "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", "")}
    process = start([str(Path(VENV_BIN) / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], env, log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(url + "/", process=process, log=log)
        yield url
    finally:
        stop(process)


@pytest.fixture
def bucket(s3_server, settings):
    """A new bucket, and the exports storage pointed at it. `keys()` lists what the bucket holds;
    `env` is the environment a process started by the test needs to use it."""
    name = f"exports-{secrets.token_hex(4)}"
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1",
                          aws_access_key_id=CREDENTIALS["S3_ACCESS_KEY_ID"],
                          aws_secret_access_key=CREDENTIALS["S3_SECRET_ACCESS_KEY"])
    client.create_bucket(Bucket=name)
    settings.STORAGES = {**settings.STORAGES, "exports": {"BACKEND": "config.storage.S3ExportStorage", "OPTIONS": {
        "bucket_name": name, "endpoint_url": s3_server, "region_name": "us-east-1",
        "access_key": CREDENTIALS["S3_ACCESS_KEY_ID"], "secret_key": CREDENTIALS["S3_SECRET_ACCESS_KEY"],
        "default_acl": None, "file_overwrite": True}}}
    env = {"S3_BUCKET": name, "S3_ENDPOINT_URL": s3_server, **CREDENTIALS}

    def keys() -> list[str]:
        return sorted(item["Key"] for item in client.list_objects_v2(Bucket=name).get("Contents", []))

    return SimpleNamespace(name=name, client=client, env=env, keys=keys)


def worker_run_burst(queue: str, export_root: Path, s3_env: dict) -> None:
    """`manage.py rqworker QUEUE --burst` as another machine would run it: its own EXPORT_ROOT, the
    same database, Redis and bucket, settings from the environment only."""
    url = urlparse(os.environ["DATABASE_URL"])
    env = {**os.environ, "DATABASE_URL": urlunparse(url._replace(path="/" + connection.settings_dict["NAME"])),
           "EXPORT_ROOT": str(export_root), "DEBUG": "1", **s3_env}
    finished = subprocess.run([sys.executable, "manage.py", "rqworker", queue, "--burst"], cwd=ROOT, env=env,
                              capture_output=True, timeout=300)
    assert finished.returncode == 0, finished.stderr.decode()[-3000:]
