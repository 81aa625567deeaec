"""Security settings come from the environment: `check --deploy` is clean with the production values
.env.example shows, links behind a TLS proxy are https, and every response carries the CSP."""

import os
import secrets
import subprocess
import sys

import pytest
from django.test import Client

from tests.ops.processes import ROOT


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def manage(*args, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in env_example() and not k.startswith("PYTEST")}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True)


def production_values(tmp_path) -> dict:
    return {**env_example(), "SECRET_KEY": secrets.token_urlsafe(50), "VAR_DIR": str(tmp_path),
            "STATIC_ROOT": str(tmp_path / "static"), "EXPORT_ROOT": str(tmp_path / "exports")}


def test_check_deploy_is_clean_with_the_production_values_of_env_example(tmp_path):
    values = production_values(tmp_path)
    assert values["DEBUG"] == "0"
    result = manage("check", "--deploy", "--fail-level", "WARNING", **values)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


def test_check_deploy_names_what_is_missing_without_hsts(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", **{**production_values(tmp_path),
                                                                        "SECURE_HSTS_SECONDS": "0"})
    assert result.returncode == 1
    assert "(security.W004) You have not set a value for the SECURE_HSTS_SECONDS setting." in result.stderr


@pytest.mark.django_db
def test_behind_a_tls_proxy_the_api_builds_https_links(settings, dataset_admin):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.ALLOWED_HOSTS = ["distiller.example.com"]
    client = Client(HTTP_HOST="distiller.example.com")
    client.force_login(dataset_admin)
    body = client.get("/api/v1/", HTTP_X_FORWARDED_PROTO="https").json()
    assert body["entry_points"]["topics"] == "https://distiller.example.com/api/v1/topics/"
    assert body["docs"] == "https://distiller.example.com/api/docs/"
    # Without the proxy's word the same request is plain http.
    plain = client.get("/api/v1/").json()
    assert plain["entry_points"]["topics"] == "http://distiller.example.com/api/v1/topics/"


@pytest.mark.django_db
def test_every_response_carries_the_content_security_policy(client, settings):
    policy = client.get("/accounts/login/")["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy
    assert client.get("/healthz")["Content-Security-Policy"] == policy
    settings.CONTENT_SECURITY_POLICY = ""
    assert "Content-Security-Policy" not in client.get("/healthz")


def test_plain_http_is_redirected_health_probes_are_not_and_the_proxy_header_is_trusted(tmp_path):
    probe = ("from django.conf import settings; from django.test import Client; c = Client(); "
             "print(settings.SECURE_PROXY_SSL_HEADER, c.get('/accounts/login/').status_code, "
             "c.get('/accounts/login/')['Location'], c.get('/healthz').status_code, "
             "c.get('/api/v1/', HTTP_X_FORWARDED_PROTO='https').status_code)")
    values = {**production_values(tmp_path), "ALLOWED_HOSTS": "testserver"}
    result = manage("shell", "--no-imports", "-c", probe, **values)
    assert result.stdout.strip() == (
        "('HTTP_X_FORWARDED_PROTO', 'https') 301 https://testserver/accounts/login/ 200 401"), result.stderr
