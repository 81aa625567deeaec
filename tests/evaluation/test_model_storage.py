"""Evaluation model files on several machines: a worker process with its own EXPORT_ROOT trains and puts
the files into an S3-compatible object store (moto's server, a real HTTP S3 API); a web process with
another, empty, EXPORT_ROOT predicts with the model and serves its files from there; deleting the
evaluation deletes its objects. With the local folder (the default) the files are where they were:
EXPORT_ROOT/evaluations/<id>/."""

import os

import numpy as np
import pytest
from django.test import override_settings
from django.urls import reverse

from evaluation.backends import backend_load
from evaluation.models import Evaluation
from evaluation.services import evaluation_create, evaluation_delete, evaluation_predict, evaluation_run
from tests.api.clients import api_as
from tests.object_store import worker_run_burst

FILES = ["arrays.npz", "model.json", "questions.npz"]
TEXTS = ["I forgot my password", "where is my refund", "send me the invoice"]


def trained(topic, export_root) -> Evaluation:
    """An evaluation of the small topic run by a "worker" whose EXPORT_ROOT is `export_root`."""
    with override_settings(EXPORT_ROOT=export_root):
        evaluation = evaluation_create(topic=topic, enqueue=False, learning_curve=False, label_issues=False)
        assert evaluation_run(evaluation_id=evaluation.pk) is True
    evaluation.refresh_from_db()
    assert evaluation.status == "succeeded", evaluation.error
    return evaluation


def local_files(folder) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def test_a_model_missing_from_the_object_store_is_a_clear_404(
        topic, small_topic, bucket, settings, tmp_path, dataset_admin):
    evaluation = trained(topic, tmp_path / "worker")
    bucket.client.delete_object(Bucket=bucket.name, Key=f"evaluations/{evaluation.pk}/arrays.npz")
    settings.EXPORT_ROOT = tmp_path / "web"
    # A copy left by an older evaluation with the same id (a database created again) is not this one's.
    stale = tmp_path / "web" / "evaluation-copies" / str(evaluation.pk) / "20250101T000000000000"
    stale.mkdir(parents=True)
    for name in FILES:
        (stale / name).write_bytes(b"old")
    client = api_as(dataset_admin)
    response = client.post(reverse("api-evaluation-predict", args=[evaluation.pk]), {"texts": TEXTS}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == f"The model files of evaluation {evaluation.pk} are missing."
    assert local_files(stale.parent) == [f"20250101T000000000000/{name}" for name in FILES]  # no half copy beside it
    download = client.get(reverse("api-evaluation-files", args=[evaluation.pk, "arrays.npz"]))
    assert download.status_code == 404
    assert download.json()["error"]["message"] == f"Evaluation {evaluation.pk} has no file 'arrays.npz'."


def test_with_the_local_folder_the_files_stay_in_export_root(topic, small_topic, export_root,
                                                             django_capture_on_commit_callbacks):
    evaluation = trained(topic, export_root)
    assert local_files(export_root) == [f"evaluations/{evaluation.pk}/{name}" for name in FILES]
    [answer] = evaluation_predict(evaluation=evaluation, texts=["I forgot my password"])
    assert answer["intents"][0]["name"] == "Reset Password"
    assert local_files(export_root) == [f"evaluations/{evaluation.pk}/{name}" for name in FILES]  # no copy
    with django_capture_on_commit_callbacks(execute=True):
        evaluation_delete(evaluation=evaluation)
    assert local_files(export_root) == []


@pytest.mark.workers
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs the Redis of tests/services.sh")
def test_a_model_trained_on_one_machine_predicts_and_downloads_on_another(
        topic, small_topic, bucket, settings, tmp_path, dataset_admin):
    import django_rq

    django_rq.get_queue("evaluation").empty()
    worker_root, web_root = tmp_path / "worker", tmp_path / "web"
    settings.EXPORT_ROOT = web_root
    client = api_as(dataset_admin)
    accepted = client.post(reverse("api-evaluation-list"), {"topic": topic.pk, "learning_curve": False,
                                                            "label_issues": False}, format="json")
    assert accepted.status_code == 202, accepted.json()
    worker_run_burst("evaluation", worker_root, bucket.env)  # the worker's machine: its own EXPORT_ROOT
    evaluation = Evaluation.objects.get(pk=accepted.json()["id"])
    assert evaluation.status == "succeeded", evaluation.error
    assert not web_root.exists()  # nothing was written on the web's machine
    prefix = f"evaluations/{evaluation.pk}"
    assert evaluation.model_folder == prefix
    assert bucket.keys() == [f"{prefix}/{name}" for name in FILES]
    assert local_files(worker_root) == []  # the work folder is gone once uploaded
    stored = {name: bucket.client.get_object(Bucket=bucket.name, Key=f"{prefix}/{name}")["Body"].read()
              for name in FILES}
    assert evaluation.metrics["model_bytes"] == sum(len(data) for data in stored.values())

    # What the stored model says, loaded here straight from the bucket's bytes.
    downloaded = tmp_path / "downloaded"
    downloaded.mkdir()
    for name, data in stored.items():
        (downloaded / name).write_bytes(data)
    model = backend_load(downloaded)
    probabilities = model.predict_proba(TEXTS)
    names = {intent.pk: name for name, intent in small_topic.items()}
    expected = [[(names[int(model.classes[j])], round(float(row[j]), 4)) for j in np.argsort(-row, kind="stable")[:3]]
                for row in probabilities]

    response = client.post(reverse("api-evaluation-predict", args=[evaluation.pk]), {"texts": TEXTS}, format="json")
    assert response.status_code == 200, response.json()
    answers = response.json()["predictions"]
    assert [[(i["name"], i["confidence"]) for i in answer["intents"]] for answer in answers] == expected
    assert [answer["intents"][0]["name"] for answer in answers] == ["Reset Password", "Refunds", "Invoices"]
    # The web machine keeps a copy of the files it fetched, under the evaluation's id.
    copy = f"evaluation-copies/{evaluation.pk}/{evaluation.finished_at:%Y%m%dT%H%M%S%f}"
    assert local_files(web_root) == [f"{copy}/{name}" for name in FILES]

    for name in FILES:
        download = client.get(reverse("api-evaluation-files", args=[evaluation.pk, name]))
        assert download.status_code == 200
        assert download["Content-Length"] == str(len(stored[name]))
        assert b"".join(download.streaming_content) == stored[name]

    assert client.delete(reverse("api-evaluation-detail", args=[evaluation.pk])).status_code == 204
    assert bucket.keys() == []
    assert local_files(web_root) == []  # this machine's copy goes too
    assert not Evaluation.objects.filter(pk=evaluation.pk).exists()


def test_deleting_evaluations_in_the_admin_deletes_their_stored_files(
        client, topic, dataset_admin, export_root, tmp_path, django_capture_on_commit_callbacks):
    from config.storage import export_storage, storage_file_put

    evaluations = [Evaluation.objects.create(topic=topic, status=Evaluation.Status.SUCCEEDED) for _ in range(3)]
    for evaluation in evaluations:
        for name in FILES:
            local = tmp_path / name
            local.write_bytes(b"model")
            storage_file_put(export_storage(), f"evaluations/{evaluation.pk}/{name}", local)
    client.force_login(dataset_admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:evaluation_evaluation_delete", args=[evaluations[0].pk]), {"post": "yes"})
    assert response.status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:evaluation_evaluation_changelist"), {
            "action": "delete_selected", "post": "yes", "_selected_action": [e.pk for e in evaluations[1:]]})
    assert response.status_code == 302
    assert not Evaluation.objects.exists()
    assert local_files(export_root) == []
