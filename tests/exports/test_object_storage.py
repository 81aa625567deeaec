"""Exports on several machines: a worker with its own EXPORT_ROOT writes an export into an
S3-compatible object store (moto's server, a real HTTP S3 API started here), and the web, with a
different EXPORT_ROOT, lists and serves it from there; deleting the export deletes its objects."""

import io
import os
import zipfile
from pathlib import Path

import pytest

from config import health
from config.storage import export_storage, storage_file_open, storage_file_put
from datasets.models import Export
from tests.api.clients import api_as
from tests.object_store import worker_run_burst

GOLDEN = Path(__file__).parent / "golden" / "jsonl-split"


@pytest.mark.workers
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs the Redis of tests/services.sh")
def test_a_worker_on_another_machine_writes_an_export_the_web_serves_from_the_object_store(
        dataset_admin, known_dataset, bucket, settings, tmp_path):
    import django_rq

    django_rq.get_queue("exports").empty()
    web_root, worker_root = tmp_path / "web", tmp_path / "worker"
    settings.EXPORT_ROOT = web_root
    client = api_as(dataset_admin)
    accepted = client.post("/api/v1/exports/", {"topic": known_dataset.pk, "format": "jsonl",
                                                "split": {"train": 0.5, "test": 0.5}, "seed": 7}, format="json")
    assert accepted.status_code == 202, accepted.json()
    export_id = accepted.json()["id"]

    worker_run_burst("exports", worker_root, bucket.env)

    golden = {path.name: path.read_bytes() for path in sorted(GOLDEN.iterdir())}
    assert bucket.keys() == [f"{export_id}/{name}" for name in golden]
    assert list(worker_root.iterdir()) == []  # the worker's work folder is gone once uploaded
    assert not web_root.exists()  # the web never needed a local copy
    body = client.get(f"/api/v1/exports/{export_id}/").json()
    assert body["status"] == "succeeded", body["error"]
    assert body["counts"] == {"train": 5, "test": 4}
    assert [(f["name"], f["size"]) for f in body["files"]] == [(name, len(data)) for name, data in golden.items()]
    assert Export.objects.get(pk=export_id).files == [{"name": name, "size": len(data)} for name, data in golden.items()]
    for file in body["files"]:
        response = client.get(file["url"])
        assert response.status_code == 200
        assert response["Content-Length"] == str(file["size"])
        assert b"".join(response.streaming_content) == golden[file["name"]]
    archive = client.get(body["download_url"])
    with zipfile.ZipFile(io.BytesIO(b"".join(archive.streaming_content))) as bundle:
        assert {name: bundle.read(name) for name in bundle.namelist()} == golden

    assert client.delete(f"/api/v1/exports/{export_id}/").status_code == 204
    assert bucket.keys() == []
    assert health.exports_check() == {"ok": True}
    assert bucket.keys() == []  # the probe file is deleted


def test_a_large_file_is_uploaded_in_parts_and_read_back_as_a_stream(bucket, tmp_path):
    data = os.urandom(9 * 1024 * 1024)  # past s3transfer's 8 MiB threshold: two parts
    local = tmp_path / "train.jsonl"
    local.write_bytes(data)
    assert storage_file_put(export_storage(), "77/train.jsonl", local) == len(data)
    head = bucket.client.head_object(Bucket=bucket.name, Key="77/train.jsonl")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-2")  # a multipart upload's ETag counts its parts
    stream = storage_file_open(export_storage(), "77/train.jsonl")
    first = stream.read(1024 * 1024)
    assert first == data[:1024 * 1024]
    assert first + stream.read() == data
    stream.close()


def test_readyz_says_the_object_store_is_not_writable_without_naming_it(bucket, settings):
    bucket.client.delete_bucket(Bucket=bucket.name)
    assert health.exports_check() == {"ok": False, "error": "export storage not writable (NoSuchBucket)"}
