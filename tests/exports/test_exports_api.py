"""Exports through the API: who may export, what the status shows, who may download."""

import pytest
from django.urls import reverse

from datasets.jobs import export_run
from datasets.models import Export
from tests.api.clients import api_as

pytestmark = pytest.mark.django_db


def post_export(client, topic, **fields):
    return client.post("/api/v1/exports/", {"topic": topic.pk, "format": "jsonl", **fields}, format="json")


def test_a_dataset_admin_creates_an_export_and_reads_its_counts_and_links(dataset_admin, known_dataset):
    client = api_as(dataset_admin)
    response = post_export(client, known_dataset, split={"train": 0.5, "test": 0.5}, seed=3)
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "queued" and body["files"] == [] and body["download_url"] is None
    assert body["filters"] == {"statuses": ["approved", "relabeled"]}
    export_run(body["id"])
    body = client.get(f"/api/v1/exports/{body['id']}/").json()
    assert body["status"] == "succeeded"
    assert sum(body["counts"].values()) == 9 and set(body["counts"]) == {"train", "test"}
    assert [f["name"] for f in body["files"]] == ["labels.json", "test.jsonl", "train.jsonl"]
    download = client.get(body["files"][2]["url"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content).count(b"\n") == body["counts"]["train"]
    archive = client.get(body["download_url"])
    assert archive.status_code == 200 and archive["Content-Type"] == "application/zip"


def test_a_reviewer_cannot_export_or_download(reviewer, dataset_admin, known_dataset):
    assert post_export(api_as(reviewer), known_dataset).status_code == 403
    export = Export.objects.create(topic=known_dataset, format="jsonl")
    export_run(export.pk)
    client = api_as(reviewer)
    assert client.get(f"/api/v1/exports/{export.pk}/").status_code == 403
    assert client.get(f"/api/v1/exports/{export.pk}/download/").status_code == 403
    assert client.get(f"/api/v1/exports/{export.pk}/files/questions.jsonl").status_code == 403


def test_without_a_token_exports_answer_401_in_the_error_shape(known_dataset):
    response = post_export(api_as(None), known_dataset)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_bad_export_requests_say_what_to_fix(dataset_admin, known_dataset):
    client = api_as(dataset_admin)
    response = post_export(client, known_dataset, split={"train": 0.9, "test": 0.2})
    assert response.status_code == 400
    assert response.json()["error"] == {"code": "invalid_split", "details": None,
                                        "message": "The split ratios must add up to 1, they add up to 1.1."}
    response = post_export(client, known_dataset, format="docx")
    assert response.status_code == 400 and "format" in response.json()["error"]["details"]
    assert post_export(client, known_dataset, intent=999999).json()["error"]["code"] == "invalid_intent"
    assert not Export.objects.exists()


@pytest.mark.parametrize("split, shown", [
    ({"train": True}, "true"),
    ({"train": "0.8", "test": 0.2}, '"0.8"'),
    ({"train": 0.8, "test": "0.2"}, '"0.2"'),
    ({"train": [1]}, "[1]"),
])
def test_a_ratio_that_is_not_a_json_number_is_refused_not_coerced(dataset_admin, known_dataset, split, shown):
    response = post_export(api_as(dataset_admin), known_dataset, split=split)
    assert response.status_code == 400
    name = next(n for n, v in split.items() if not isinstance(v, float))
    assert response.json()["error"] == {
        "code": "invalid_split", "details": None,
        "message": f"The ratio of {name!r} must be a number above 0 and at most 1, got {shown}."}
    assert not Export.objects.exists()


def test_a_split_that_is_not_an_object_is_refused_and_null_means_no_split(dataset_admin, known_dataset):
    client = api_as(dataset_admin)
    refused = post_export(client, known_dataset, split=[0.8, 0.2]).json()["error"]
    assert (refused["code"], refused["message"]) == (
        "invalid_split", 'The split must be an object such as {"train": 0.8, "validation": 0.1, "test": 0.1}.')
    accepted = post_export(client, known_dataset, split=None)
    assert accepted.status_code == 202 and accepted.json()["split"] == {}


def test_a_file_outside_the_export_cannot_be_downloaded(dataset_admin, known_dataset):
    export = Export.objects.create(topic=known_dataset, format="jsonl")
    export_run(export.pk)
    client = api_as(dataset_admin)
    for name in ["..%2F..%2Fsecret_key", "README.md", "questions.jsonl.partial"]:
        assert client.get(f"/api/v1/exports/{export.pk}/files/{name}").status_code == 404


def test_the_download_link_waits_for_the_job(dataset_admin, known_dataset):
    export = Export.objects.create(topic=known_dataset, format="jsonl")
    response = api_as(dataset_admin).get(reverse("api-export-download", args=[export.pk]))
    assert response.status_code == 404
    assert "queued" in response.json()["error"]["message"]


def test_deleting_an_export_removes_its_files(dataset_admin, reviewer, known_dataset,
                                              django_capture_on_commit_callbacks):
    from datasets.exports import export_folder

    export = Export.objects.create(topic=known_dataset, format="jsonl")
    export_run(export.pk)
    folder = export_folder(export)
    assert (folder / "questions.jsonl").exists()
    assert api_as(reviewer).delete(f"/api/v1/exports/{export.pk}/").status_code == 403
    assert folder.exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert api_as(dataset_admin).delete(f"/api/v1/exports/{export.pk}/").status_code == 204
    assert not Export.objects.filter(pk=export.pk).exists()
    assert not folder.exists()


def test_an_export_deleted_while_its_job_writes_leaves_no_files(known_dataset, monkeypatch):
    from datasets import jobs
    from datasets.exports import export_folder, export_write

    export = Export.objects.create(topic=known_dataset, format="jsonl")

    def write_then_lose_the_row(*, export):
        outcome = export_write(export=export)
        Export.objects.filter(pk=export.pk).delete()
        return outcome

    monkeypatch.setattr(jobs, "export_write", write_then_lose_the_row)
    export_run(export.pk)
    assert not Export.objects.filter(pk=export.pk).exists()
    assert not export_folder(export).exists()


def test_an_export_that_matches_nothing_is_refused_before_a_job_starts(dataset_admin, known_dataset):
    import django_rq

    queued = django_rq.get_queue("exports").count
    client = api_as(dataset_admin)
    response = client.post("/api/v1/exports/", {"topic": known_dataset.pk, "format": "jsonl", "statuses": ["flagged"]},
                           format="json")
    assert response.status_code == 400
    assert response.json()["error"] == {"code": "empty_export", "details": None, "message": (
        "Nothing to export: no question of 'Customer Care' has status flagged, outside out-of-scope intents. "
        "Review (approve) some questions first, or widen the filters.")}
    response = client.post("/api/v1/exports/", {"topic": known_dataset.pk, "format": "triplets"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "Nothing to export: the triplets format writes only the hard negatives (questions made against a "
        "neighbouring intent), and none of the questions of 'Customer Care' with status approved or relabeled, outside "
        "out-of-scope intents is one. Choose another format, or generate hard negatives first.")
    assert not Export.objects.exists()
    assert django_rq.get_queue("exports").count == queued
