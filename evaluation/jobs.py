"""RQ entry points of the evaluation app. Jobs take ids, never model instances."""

from django.utils import timezone

from evaluation.models import Evaluation
from evaluation.services import evaluation_run


def evaluation_run_job(evaluation_id: int) -> None:
    """Run evaluation `evaluation_id` on a worker (see evaluation.services.evaluation_run)."""
    evaluation_run(evaluation_id=evaluation_id)


def evaluation_job_failed(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback: also covers a worker killed by the job timeout, where evaluation_run
    never reached its own error handling."""
    evaluation_id = job.args[0]
    Evaluation.objects.filter(pk=evaluation_id, status__in=[Evaluation.Status.QUEUED, Evaluation.Status.RUNNING]).update(
        status=Evaluation.Status.FAILED, error=f"The evaluation job failed: {exc_type.__name__}: {exc_value}",
        stage="failed", finished_at=timezone.now(),
    )
