"""RQ entry points of the distiller. They take ids and call a service; nothing else."""

from distiller.services import execution


def run_work(run_id: int) -> None:
    """Work on run `run_id` until it ends (many of these may run at once, on many machines)."""
    execution.run_work(run_id=run_id)
