"""A NUL byte in a query string is a 400 everywhere, never a PostgreSQL error and a 500."""

import pytest

from tests.api.clients import api_as


@pytest.mark.parametrize("url", ["/api/v1/runs/?status=ok%00", "/api/v1/questions/?search=a%00b",
                                 "/api/v1/runs/?x%00=1"])
def test_the_api_answers_400_in_its_error_shape(dataset_admin, url):
    response = api_as(dataset_admin).get(url)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameter"


@pytest.mark.parametrize("url", ["/admin/datasets/question/?q=a%00", "/admin/distiller/distillationrun/?q=%00"])
def test_the_admin_answers_400(client, superuser, url):
    client.force_login(superuser)
    response = client.get(url)
    assert response.status_code == 400
    assert b"NUL byte" in response.content


def test_an_unknown_run_status_or_topic_is_a_400_not_an_empty_list(dataset_admin):
    client = api_as(dataset_admin)
    assert client.get("/api/v1/runs/?status=finished").json()["error"]["message"].startswith("Unknown status")
    assert client.get("/api/v1/runs/?topic=abc").json()["error"]["code"] == "invalid_parameter"
    assert client.get("/api/v1/runs/?status=succeeded").status_code == 200
