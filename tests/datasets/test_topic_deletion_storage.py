"""Deleting a topic when its files are in an S3-compatible object store (moto's server): its exports'
and its evaluations' objects go with it, another topic's stay."""

import pytest

from config.storage import export_storage, storage_file_put
from datasets.jobs import topic_delete_run
from datasets.lifecycle import topic_deletion_plan, topic_deletion_start
from datasets.models import DataDeletion, Export
from evaluation.models import Evaluation


@pytest.fixture
def stored_files(tmp_path):
    """put(topic) -> the keys of one export (2 files) and one evaluation (3 files) of `topic`, put into the storage."""

    def put(topic) -> list[str]:
        export = Export.objects.create(topic=topic, status=Export.Status.SUCCEEDED,
                                       files=[{"name": "train.jsonl", "size": 3}, {"name": "README.md", "size": 5}])
        evaluation = Evaluation.objects.create(topic=topic, status=Evaluation.Status.SUCCEEDED)
        evaluation.model_folder = f"evaluations/{evaluation.pk}"
        evaluation.save()
        keys = [f"{export.pk}/train.jsonl", f"{export.pk}/README.md"]
        keys += [f"evaluations/{evaluation.pk}/{name}" for name in ("model.json", "arrays.npz", "questions.npz")]
        for key in keys:
            local = tmp_path / "upload"
            local.write_bytes(b"x" * 3)
            storage_file_put(export_storage(), key, local)
        return keys

    return put


def test_deleting_a_topic_deletes_its_export_and_evaluation_objects(
        topic, make_topic, dataset_admin, bucket, stored_files, settings, tmp_path,
        django_capture_on_commit_callbacks):
    settings.EXPORT_ROOT = tmp_path / "worker"
    kept = sorted(stored_files(make_topic("Other")))
    deleted = stored_files(topic)
    assert bucket.keys() == sorted(kept + deleted)
    plan = topic_deletion_plan(topic=topic)
    assert (plan["exports"], plan["export_files"], plan["evaluations"], plan["evaluation_files"]) == (1, 2, 1, 3)

    with django_capture_on_commit_callbacks(execute=False):
        deletion = topic_deletion_start(topic=topic, actor=dataset_admin)
    with django_capture_on_commit_callbacks(execute=True):
        topic_delete_run(deletion.pk)

    deletion.refresh_from_db()
    assert deletion.status == DataDeletion.Status.SUCCEEDED, deletion.error
    assert (deletion.deleted["exports"], deletion.deleted["evaluations"], deletion.deleted["files"]) == (1, 1, 5)
    assert bucket.keys() == kept
