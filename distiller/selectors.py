"""Reads of the distiller: runs with their live progress."""

from django.db.models import Q
from django.utils import timezone

from distiller.models import DistillationRun, DistillationUnit


def run_progress(*, run: DistillationRun) -> dict:
    """Units, questions, tokens, cost and an ETA (from the pace so far) for a run."""
    elapsed = None
    if run.started_at:
        elapsed = ((run.finished_at or timezone.now()) - run.started_at).total_seconds()
    eta = None
    if run.is_active and elapsed and run.units_total:
        # Questions dominate a run's time; before they start, units are the only measure.
        done, total = (run.questions_created, run.questions_target) if run.questions_created else (
            run.units_done, run.units_total)
        if done:
            eta = round(elapsed * (total - done) / done, 1)
    return {
        "percent": run.progress_percent, "stage": run.stage, "units_total": run.units_total,
        "units_done": run.units_done, "units_failed": run.units_failed, "intents_created": run.intents_created,
        "questions_target": run.questions_target, "questions_created": run.questions_created,
        "duplicates_dropped": run.duplicates_dropped, "near_duplicates_dropped": run.near_duplicates_dropped,
        "invalid_dropped": run.invalid_dropped, "calls": run.calls, "tokens_in": run.tokens_in,
        "tokens_out": run.tokens_out, "cost": str(run.cost), "elapsed_seconds": round(elapsed, 1) if elapsed else None,
        "eta_seconds": eta,
    }


def run_unit_problems(*, run: DistillationRun, limit: int = 50) -> list[dict]:
    """Failed units and units short of their target, with their errors."""
    units = run.units.filter(Q(status=DistillationUnit.Status.FAILED) | ~Q(error="")).select_related("node")
    return [{"key": u.key, "kind": u.kind, "intent": u.node.intent_full_name if u.node else None,
             "status": u.status, "target": u.target, "produced": u.produced, "attempts": u.attempts,
             "error": u.error} for u in units[:limit]]
