"""The runs API: dataset admins only, one error shape, services behind it."""

import pytest
from rest_framework.test import APIClient

from distiller.models import DistillationRun, LLMProvider


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def teacher_provider(db):
    return LLMProvider.objects.create(name="Local", kind="custom", base_url="http://127.0.0.1:9/v1", model="m")


def start(api, user, topic, **body):
    api.force_authenticate(user)
    return api.post("/api/v1/runs/", {"topic": topic.pk, "provider": "Local", "levels": 2, "tags_per_level": 3,
                                      "questions_per_intent": 10, **body}, format="json")


def test_a_dataset_admin_starts_a_run_with_its_estimate(api, dataset_admin, topic, teacher_provider):
    response = start(api, dataset_admin, topic)
    assert response.status_code == 201, response.data
    run = DistillationRun.objects.get()
    assert response.data["id"] == run.pk and response.data["status"] == "queued"
    assert response.data["estimate"]["calls"] == 1 + 3 + 9 * 2
    assert response.data["estimate"]["questions"] == 90
    assert response.data["progress"]["units_total"] == 1 + 3 + 9
    assert run.created_by == dataset_admin and run.parameters["levels"] == 2
    assert run.units.get().key == "taxonomy:root"


@pytest.mark.parametrize("persona", ["reviewer", "other_reviewer"])
def test_reviewers_may_not_start_runs(api, request, persona, topic, teacher_provider):
    response = start(api, request.getfixturevalue(persona), topic)
    assert response.status_code == 403
    assert response.data["error"]["code"] == "permission_denied"


def test_anonymous_users_are_refused(api, topic):
    assert api.get("/api/v1/runs/").status_code in (401, 403)


def test_an_unknown_provider_is_a_404_naming_the_choices(api, superuser, topic, teacher_provider):
    response = start(api, superuser, topic, provider="nope")
    assert response.status_code == 404
    assert response.data["error"]["code"] == "not_found"
    assert "Unknown or inactive provider 'nope'" in response.data["error"]["message"]


def test_bad_parameters_are_invalid(api, superuser, topic, teacher_provider):
    response = start(api, superuser, topic, levels=9, mix={"colour": {"red": 1}})
    assert response.status_code == 400
    assert response.data["error"]["code"] == "invalid"
    assert "levels" in response.data["error"]["details"]


def test_a_bad_mix_is_named(api, superuser, topic, teacher_provider):
    response = start(api, superuser, topic, mix={"colour": {"red": 1}})
    assert response.status_code == 400
    assert response.data["error"]["message"].startswith("Unknown mix dimension 'colour'")


def test_a_questions_run_needs_intents(api, superuser, topic, teacher_provider):
    response = start(api, superuser, topic, kind="questions")
    assert response.status_code == 400
    assert "distil a taxonomy first" in response.data["error"]["message"]


def test_status_cancel_and_resume(api, superuser, topic, teacher_provider):
    run_id = start(api, superuser, topic).data["id"]
    detail = api.get(f"/api/v1/runs/{run_id}/")
    assert detail.status_code == 200 and detail.data["progress"]["stage"] == "taxonomy:1"

    cancelled = api.post(f"/api/v1/runs/{run_id}/cancel/")
    assert cancelled.status_code == 200 and cancelled.data["status"] == "cancelled"
    again = api.post(f"/api/v1/runs/{run_id}/cancel/")
    assert again.status_code == 409 and again.data["error"]["code"] == "conflict"

    resumed = api.post(f"/api/v1/runs/{run_id}/resume/")
    assert resumed.status_code == 200 and resumed.data["status"] == "running"
    DistillationRun.objects.filter(pk=run_id).update(status="succeeded")
    assert api.post(f"/api/v1/runs/{run_id}/resume/").status_code == 409
    assert api.get("/api/v1/runs/999/").status_code == 404
