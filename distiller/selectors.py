"""Reads of the distiller: runs with their live progress."""

from datetime import timedelta

from django.conf import settings
from django.db.models import DateTimeField, ExpressionWrapper, Q, Value
from django.db.models.functions import Now
from django.utils import timezone

from distiller.models import DistillationRun, DistillationUnit

STALLED_HINT = "No worker is working on this run; resume it."


def run_is_stalled(*, run: DistillationRun) -> bool:
    """A running run that no worker works on: no unit under a live lease and no heartbeat for a lease period.

    Every live work job beats the run's heartbeat every few seconds, idle or not, so a stale
    heartbeat means its jobs died (SIGKILL, a Redis restart that dropped them, a job timeout).
    Both clocks are the database's.
    """
    if run.status != DistillationRun.Status.RUNNING:
        return False
    stale_before = ExpressionWrapper(Now() - Value(timedelta(seconds=settings.DISTILL_UNIT_LEASE_SECONDS)),
                                     output_field=DateTimeField())
    quiet = DistillationRun.objects.filter(pk=run.pk, status=DistillationRun.Status.RUNNING).filter(
        Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True, updated_at__lt=stale_before))
    return quiet.exists() and not run_has_live_lease(run=run)


def run_has_live_lease(*, run: DistillationRun) -> bool:
    """Whether a worker holds one of the run's units right now (by the database's clock)."""
    return run.units.filter(status=DistillationUnit.Status.RUNNING, lease_expires_at__gt=Now()).exists()


def run_progress(*, run: DistillationRun) -> dict:
    """Units, questions, tokens, cost and an ETA (from the pace so far) for a run."""
    elapsed = None
    if run.started_at:
        elapsed = ((run.finished_at or timezone.now()) - run.started_at).total_seconds()
    eta = None
    stalled = run_is_stalled(run=run)
    if run.is_active and elapsed and run.units_total and not stalled:
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
        "eta_seconds": eta, "stalled": stalled, "heartbeat_at": run.heartbeat_at,
        "hint": STALLED_HINT if stalled else "",
    }


def run_unit_problems(*, run: DistillationRun, limit: int = 50) -> list[dict]:
    """Failed units and units short of their target, with their errors."""
    units = run.units.filter(Q(status=DistillationUnit.Status.FAILED) | ~Q(error="")).select_related("node")
    return [{"key": u.key, "kind": u.kind, "intent": u.node.intent_full_name if u.node else None,
             "status": u.status, "target": u.target, "produced": u.produced, "attempts": u.attempts,
             "error": u.error} for u in units[:limit]]
