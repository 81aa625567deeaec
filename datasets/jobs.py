"""RQ entry points of the datasets app. Jobs take ids, never model instances."""

import logging

from django.utils import timezone

from datasets.exports import export_stored_files_delete, export_write
from datasets.models import Export
from datasets.services import DatasetError

log = logging.getLogger(__name__)


def _status_row_claim(model, pk: int) -> bool:
    """queued -> running for a job's status row (an Export, an Augmentation) by a conditional
    UPDATE, so a job delivered twice runs once."""
    claimed = model.objects.filter(pk=pk, status=model.Status.QUEUED).update(
        status=model.Status.RUNNING, started_at=timezone.now(), error="")
    if not claimed:
        log.info("%s %s is not queued any more; nothing to do", model._meta.verbose_name, pk)
    return bool(claimed)


def _status_row_fail(model, pk: int, exc: Exception) -> bool:
    """Store why the job failed on its status row; True when `exc` is a bug (not a DatasetError),
    which the caller re-raises so RQ keeps the traceback."""
    message = exc.message if isinstance(exc, DatasetError) else f"{type(exc).__name__}: {exc}"
    model.objects.filter(pk=pk).update(status=model.Status.FAILED, error=message, finished_at=timezone.now())
    return not isinstance(exc, DatasetError)


def export_run(export_id: int) -> None:
    """Write export `export_id`'s files: queued -> running -> succeeded or failed (error stored).

    The queued -> running step is a conditional UPDATE, so a job delivered twice runs once.
    """
    if not _status_row_claim(Export, export_id):
        return
    export = Export.objects.select_related("topic").get(pk=export_id)
    try:
        outcome = export_write(export=export)
    except Exception as exc:
        if _status_row_fail(Export, export_id, exc):
            raise  # a bug: let RQ keep the traceback in its failed-job registry
        return
    finished = Export.objects.filter(pk=export_id).update(
        status=Export.Status.SUCCEEDED, file=outcome.file_name, files=outcome.files, counts=outcome.counts,
        intent_counts=outcome.intent_counts, warnings=outcome.warnings, finished_at=timezone.now(),
    )
    if not finished:
        # Deleted while it was being written: export_delete removed the files before this job
        # stored them, so nothing else would.
        export_stored_files_delete(export_ids=[export_id])
        log.info("export %s was deleted while it was written; its files are removed", export_id)


def export_job_failed(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback: also covers a worker killed by the job timeout, where export_run
    never reached its own error handling."""
    export_id = job.args[0]
    Export.objects.filter(pk=export_id, status__in=[Export.Status.QUEUED, Export.Status.RUNNING]).update(
        status=Export.Status.FAILED, error=f"The export job failed: {exc_type.__name__}: {exc_value}",
        finished_at=timezone.now(),
    )


def topic_delete_run(deletion_id: int) -> None:
    """Delete the topic of DataDeletion `deletion_id` in batches (datasets.lifecycle.topic_delete_in_batches):
    queued -> running -> succeeded or failed, with the rows deleted, the batches and the longest one
    recorded. Claimed by a conditional UPDATE, so a job delivered twice runs once; a failed deletion
    can be run again (the topic stays hidden and frozen, and what is gone stays gone)."""
    from datasets.lifecycle import topic_delete_in_batches
    from datasets.models import DataDeletion

    claimed = DataDeletion.objects.filter(pk=deletion_id, kind=DataDeletion.Kind.TOPIC,
                                          status__in=[DataDeletion.Status.QUEUED, DataDeletion.Status.FAILED]).update(
        status=DataDeletion.Status.RUNNING, started_at=timezone.now(), error="")
    if not claimed:
        log.info("topic deletion %s is not queued any more; nothing to do", deletion_id)
        return
    deletion = DataDeletion.objects.get(pk=deletion_id)
    try:
        outcome = topic_delete_in_batches(deletion=deletion)
    except Exception as exc:
        DataDeletion.objects.filter(pk=deletion_id).update(
            status=DataDeletion.Status.FAILED, error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now())
        raise
    DataDeletion.objects.filter(pk=deletion_id).update(
        status=DataDeletion.Status.SUCCEEDED, deleted=dict(outcome.deleted), batches=outcome.batches,
        longest_batch_ms=outcome.longest_batch_ms, finished_at=timezone.now())


def topic_delete_job_failed(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback: a worker killed by the timeout never reached topic_delete_run's handler."""
    from datasets.models import DataDeletion

    DataDeletion.objects.filter(pk=job.args[0], status=DataDeletion.Status.RUNNING).update(
        status=DataDeletion.Status.FAILED, error=f"The deletion job failed: {exc_type.__name__}: {exc_value}",
        finished_at=timezone.now())


def augmentation_run(augmentation_id: int) -> None:
    """Write augmentation `augmentation_id`'s variants (datasets.services.topic_augment): queued ->
    running -> succeeded or failed (error stored). Claimed by a conditional UPDATE, so a job
    delivered twice runs once; the variants are written in one transaction, so a failed run leaves
    none."""
    from datasets.models import Augmentation
    from datasets.services import topic_augment

    if not _status_row_claim(Augmentation, augmentation_id):
        return
    augmentation = Augmentation.objects.select_related("topic").get(pk=augmentation_id)
    try:
        topic_augment(augmentation=augmentation)
    except Exception as exc:
        if _status_row_fail(Augmentation, augmentation_id, exc):
            raise
        return
    Augmentation.objects.filter(pk=augmentation_id).update(status=Augmentation.Status.SUCCEEDED,
                                                           finished_at=timezone.now())


def augmentation_job_failed(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback: a worker killed by the timeout never reached augmentation_run's handler."""
    from datasets.models import Augmentation

    Augmentation.objects.filter(pk=job.args[0], status__in=[Augmentation.Status.QUEUED, Augmentation.Status.RUNNING]
                                ).update(status=Augmentation.Status.FAILED,
                                         error=f"The augmentation job failed: {exc_type.__name__}: {exc_value}",
                                         finished_at=timezone.now())
