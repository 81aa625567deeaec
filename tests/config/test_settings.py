"""Settings read the environment and stop start-up with a message naming the bad variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start_django(tmp_path, **env):
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG")}
    clean.update(VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings", **env)
    return subprocess.run([sys.executable, "-c", "import django; django.setup(); from django.conf import settings;"
                           "print(settings.DATABASES['default']['ENGINE'], settings.REDIS_URL)"],
                          cwd=ROOT, env=clean, capture_output=True, text=True)


@pytest.mark.parametrize("variable, value", [
    ("DEBUG", "maybe"),
    ("DATABASE_URL", "mysql://localhost/x"),
    ("DATABASE_URL", "postgres://localhost"),
    ("REDIS_URL", "http://localhost:6379"),
    ("LLM_BASE_URL", "localhost:8000"),
    ("RQ_JOB_TIMEOUT", "soon"),
])
def test_a_bad_value_names_the_variable(tmp_path, variable, value):
    result = start_django(tmp_path, **{"DEBUG": "1", variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr.splitlines()[-1]


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off(tmp_path):
    result = start_django(tmp_path, DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is not set and DEBUG is off" in result.stderr


def test_debug_generates_and_keeps_a_local_secret_key(tmp_path):
    assert start_django(tmp_path, DEBUG="1").returncode == 0
    key = (tmp_path / "secret_key").read_text()
    assert len(key.strip()) >= 50
    assert start_django(tmp_path, DEBUG="1").returncode == 0
    assert (tmp_path / "secret_key").read_text() == key


def test_the_generated_secret_key_is_readable_by_its_owner_only(tmp_path):
    assert start_django(tmp_path, DEBUG="1").returncode == 0
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_an_empty_local_secret_key_file_is_named_not_used(tmp_path):
    (tmp_path / "secret_key").write_text("\n")
    result = start_django(tmp_path, DEBUG="1")
    assert result.returncode != 0
    assert "holds no usable key; delete it to have one generated" in result.stderr.splitlines()[-1]


def test_defaults_are_sqlite_and_the_embedded_redis(tmp_path):
    result = start_django(tmp_path, DEBUG="1")
    assert result.stdout.split() == ["django.db.backends.sqlite3", f"unix://{tmp_path}/redis.sock"]


def test_database_url_selects_postgresql(tmp_path):
    result = start_django(tmp_path, DEBUG="1", DATABASE_URL="postgres://u:p@db.example:5433/intents",
                          SECRET_KEY="x" * 40)
    assert result.stdout.split()[0] == "django.db.backends.postgresql"
