"""RQ entry points of the distiller. They take ids and call a service; nothing else."""

from rq import get_current_job

from distiller.services import execution
from distiller.services.runs import run_job_failed


def run_work(run_id: int) -> None:
    """Work on run `run_id` until it ends (many of these may run at once, on many machines)."""
    job = get_current_job()
    execution.run_work(run_id=run_id, owner=job.id if job else "")


def run_work_failed(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback of run_work: a timeout, a crash or an abandoned job (its worker died)."""
    name = getattr(exc_type, "__name__", "error")
    detail = str(exc_value or "").strip()
    run_job_failed(run_id=int(job.args[0]), job_id=job.id, error=f"{name}: {detail}" if detail else name)
