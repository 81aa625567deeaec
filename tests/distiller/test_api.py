"""The runs API: dataset admins only, one error shape, services behind it."""

from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from distiller.models import DistillationRun, LLMProvider
from distiller.ratelimit import redis_connection
from distiller.services import RunError, run_resume, run_start


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


@pytest.mark.parametrize("method, path", [
    ("get", "/api/v1/runs/"), ("post", "/api/v1/runs/"), ("get", "/api/v1/runs/{id}/"),
    ("post", "/api/v1/runs/{id}/cancel/"), ("post", "/api/v1/runs/{id}/resume/"), ("post", "/api/v1/runs/estimate/")])
def test_anonymous_users_get_401_and_reviewers_403(api, reviewer, topic, teacher_provider, method, path):
    run = DistillationRun.objects.create(topic=topic, provider=teacher_provider, status="running")
    url = path.format(id=run.pk)
    body = {"topic": topic.pk, "provider": "Local"}

    anonymous = getattr(api, method)(url, body, format="json")
    assert anonymous.status_code == 401 and anonymous.data["error"]["code"] == "not_authenticated"

    api.force_authenticate(reviewer)
    refused = getattr(api, method)(url, body, format="json")
    assert refused.status_code == 403 and refused.data["error"]["code"] == "permission_denied"
    run.refresh_from_db()
    assert run.status == "running"


def test_the_estimate_endpoint_answers_without_starting(api, dataset_admin, topic, teacher_provider):
    api.force_authenticate(dataset_admin)
    response = api.post("/api/v1/runs/estimate/", {"topic": topic.pk, "provider": "Local", "levels": 2,
                                                   "tags_per_level": 3, "questions_per_intent": 10}, format="json")
    assert response.status_code == 200, response.data
    assert response.data["calls"] == 1 + 3 + 9 * 2
    assert response.data["tokens_in"] > 0 and response.data["tokens_out"] > 0
    assert response.data["cost"] == "0.0000" and response.data["provider"] == "Local"
    assert not DistillationRun.objects.exists()

    bad = api.post("/api/v1/runs/estimate/", {"topic": topic.pk, "provider": "Local", "levels": 9}, format="json")
    assert bad.status_code == 400 and "levels" in bad.data["error"]["details"]


def test_resume_is_refused_while_a_worker_holds_the_runs_units(api, superuser, topic, teacher_provider):
    run_id = start(api, superuser, topic).data["id"]
    DistillationRun.objects.filter(pk=run_id).update(status="running")
    unit = DistillationRun.objects.get(pk=run_id).units.get()
    unit.status, unit.lease_owner, unit.lease_expires_at = "running", "job-1", timezone.now() + timedelta(seconds=60)
    unit.save()

    refused = api.post(f"/api/v1/runs/{run_id}/resume/")
    assert refused.status_code == 409
    assert refused.data["error"]["message"] == (f"Run #{run_id} is running: a worker holds its units. Resume it only "
                                                "once it has stopped or shows as stalled.")
    assert len(DistillationRun.objects.get(pk=run_id).job_ids) == 1  # nothing more queued

    # Its worker died: once the lease ran out, resume is what brings it back.
    unit.lease_expires_at = timezone.now() - timedelta(seconds=1)
    unit.save()
    assert api.post(f"/api/v1/runs/{run_id}/resume/").status_code == 200
    assert len(DistillationRun.objects.get(pk=run_id).job_ids) == 2


def test_resume_reads_the_status_under_the_lock(topic, teacher_provider):
    run = DistillationRun.objects.create(topic=topic, provider=teacher_provider, status="running")
    stale = DistillationRun.objects.get(pk=run.pk)  # read while it was running...
    DistillationRun.objects.filter(pk=run.pk).update(status="succeeded")  # ...then the run completed

    with pytest.raises(RunError, match="already succeeded"):
        run_resume(run=stale)
    assert DistillationRun.objects.get(pk=run.pk).status == "succeeded"


def test_a_run_started_with_no_work_jobs_queues_none(topic, teacher_provider):
    redis_connection().flushdb()
    run = run_start(topic=topic, provider=teacher_provider, workers=0, levels=1, tags_per_level=2)
    assert run.job_ids == [] and DistillationRun.objects.get(pk=run.pk).job_ids == []
    assert django_rq.get_queue("distill").count == 0


def test_a_running_run_with_a_stale_heartbeat_and_no_lease_is_stalled(api, superuser, topic, teacher_provider,
                                                                        settings):
    settings.DISTILL_UNIT_LEASE_SECONDS = 30
    run = DistillationRun.objects.create(topic=topic, provider=teacher_provider, status="running",
                                         started_at=timezone.now(), heartbeat_at=timezone.now())
    api.force_authenticate(superuser)
    fresh = api.get(f"/api/v1/runs/{run.pk}/").data["progress"]
    assert fresh["stalled"] is False and fresh["hint"] == ""

    DistillationRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=31))
    stalled = api.get(f"/api/v1/runs/{run.pk}/").data["progress"]
    assert stalled["stalled"] is True and stalled["eta_seconds"] is None
    assert stalled["hint"] == "No worker is working on this run; resume it."


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


def test_a_run_with_a_judge_and_hard_negatives_is_started_and_estimated_through_the_api(api, dataset_admin, topic,
                                                                                         teacher_provider):
    body = {"judge": "Local", "judge_action": "refine", "judge_threshold": 0.6, "hard_negatives": 2,
            "out_of_scope": 5}
    api.force_authenticate(dataset_admin)
    estimate = api.post("/api/v1/runs/estimate/", {"topic": topic.pk, "provider": "Local", "levels": 2,
                                                   "tags_per_level": 3, "questions_per_intent": 10, **body},
                        format="json").data
    # 9 leaves: 10 questions and 2 neighbours x 2 hard negatives each, judged in batches of 10.
    assert (estimate["judge_calls"], estimate["contrast_calls"], estimate["out_of_scope_calls"]) == (9 * 2, 9 * 2, 1)
    assert (estimate["hard_negatives"], estimate["judged"], estimate["judge"]) == (36, 9 * 14, "Local")

    response = start(api, dataset_admin, topic, **body)
    assert response.status_code == 201, response.data
    run = DistillationRun.objects.get()
    assert response.data["judge"] == "Local" and run.judge_provider == teacher_provider
    assert {k: run.parameters[k] for k in body} == {**body, "judge": "Local"}
    assert response.data["progress"]["questions_judged"] == 0


@pytest.mark.parametrize("field, value, message", [
    ("judge_threshold", 1.5, "Ensure this value is less than or equal to 1."),
    ("judge_action", "delete", '"delete" is not a valid choice.'),
    ("hard_negatives", -1, "Ensure this value is greater than or equal to 0."),
])
def test_bad_judge_fields_are_400s_naming_the_field(api, dataset_admin, topic, teacher_provider, field, value,
                                                    message):
    response = start(api, dataset_admin, topic, judge="Local", **{field: value})
    assert response.status_code == 400
    assert str(response.data["error"]["details"][field][0]) == message
    assert not DistillationRun.objects.exists()


def test_a_judge_that_does_not_exist_is_a_404_and_nothing_starts(api, dataset_admin, topic, teacher_provider):
    response = start(api, dataset_admin, topic, judge="Nobody")
    assert response.status_code == 404 and "Unknown or inactive provider 'Nobody'" in response.data["error"]["message"]
    assert not DistillationRun.objects.exists()
