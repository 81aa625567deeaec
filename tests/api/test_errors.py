"""Every error under /api/ has the one shape {"error": {"code", "message", "details"}}, whether DRF
raised it or Django did (no route matched, an unhandled exception); pages elsewhere stay HTML."""

import pytest
from django.test import Client

from tests.api.clients import api_as

pytestmark = pytest.mark.django_db


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code and body["error"]["message"]
    return body["error"]


def test_a_url_no_route_matches_answers_404_in_the_error_shape(dataset_admin):
    client = api_as(dataset_admin)
    for path in ["/api/v1/nope/", "/api/v1/exports/abc/", "/api/nothing", "/api/v1/topics/1/intents/x/"]:
        error = assert_error(client.get(path), 404, "not_found")
        assert error == {"code": "not_found", "details": None,
                         "message": f"No API endpoint at {path}: see /api/docs/ for the endpoints."}
    # Anonymous callers get the same answer: an unknown URL reveals nothing.
    assert_error(api_as(None).get("/api/v1/nope/"), 404, "not_found")


def test_pages_outside_the_api_keep_djangos_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_a_wrong_method_answers_405(dataset_admin, topic):
    error = assert_error(api_as(dataset_admin).delete("/api/v1/topics/"), 405, "method_not_allowed")
    assert error["message"] == 'Method "DELETE" not allowed.'


def test_a_malformed_json_body_answers_400_parse_error(dataset_admin):
    response = api_as(dataset_admin).post("/api/v1/topics/", b'{"name": "Travel",', content_type="application/json")
    error = assert_error(response, 400, "parse_error")
    assert error["message"].startswith("JSON parse error")


def test_a_body_of_a_type_the_endpoint_does_not_take_answers_415(dataset_admin, topic):
    response = api_as(dataset_admin).post("/api/v1/topics/", b"name=Travel", content_type="text/plain")
    assert assert_error(response, 415, "unsupported_media_type")["message"] == \
        'Unsupported media type "text/plain" in request.'
    imports = api_as(dataset_admin).post("/api/v1/imports/", b"{}", content_type="application/json")
    assert_error(imports, 415, "unsupported_media_type")


def test_an_unhandled_exception_answers_500_in_the_error_shape(dataset_admin, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("datasets.api.TopicViewSet.list", broken)
    client = Client(raise_request_exception=False)
    client.force_login(dataset_admin)
    error = assert_error(client.get("/api/v1/topics/"), 500, "server_error")
    assert "a bug" not in error["message"]  # the trace goes to the log, not to the caller


@pytest.mark.parametrize("path", [
    "/api/v1/questions/{big}/", "/api/v1/topics/{big}/", "/api/v1/exports/{big}/", "/api/v1/runs/{big}/",
    "/api/v1/questions/{big}/review/", "/api/v1/review/{big}/lease/", "/api/v1/questions/?topic={big}",
])
def test_an_id_past_the_databases_integers_is_not_found_or_refused_not_a_500(dataset_admin, path):
    client = api_as(dataset_admin)
    url = path.format(big="9" * 25)
    response = client.post(url, {"action": "approve", "version": 1}, format="json") if url.endswith(
        ("review/", "lease/")) else client.get(url)
    assert response.status_code in (400, 404), response.content[:300]
    assert "error" in response.json()
