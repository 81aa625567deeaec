"""Reads of the distiller: runs with their live progress, and the distill workers that are alive."""

import os
import socket
from datetime import timedelta

from django.conf import settings
from django.db.models import DateTimeField, ExpressionWrapper, Q, Value
from django.db.models.functions import Now
from django.utils import timezone

from distiller.models import DistillationRun, DistillationUnit

QUEUE = "distill"
STALLED_HINT = "No worker is working on this run; resume it."
NO_WORKER_HINT = ("Queued, but no distill worker is running to pick it up: start one (manage.py rqworker distill), "
                  "or work on it in a shell with `manage.py distill resume {id} --wait`.")
JOBS_LOST_HINT = "Queued, but its work jobs are no longer on the queue (Redis lost them?): resume it."
# Workers beat every 5 s (config.workers); a minute of silence leaves room for clocks that differ
# between machines and for a busy Redis.
WORKER_SILENT_SECONDS = 60


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process, but alive
        return True
    return True


def distill_workers_live() -> list:
    """The RQ workers of the distill queue that are alive (see queue_workers_live)."""
    return queue_workers_live(QUEUE)


def queue_workers_live(queue_name: str) -> list:
    """The RQ workers of the named queue that are alive.

    RQ keeps a SIGKILLed worker registered until its key expires (up to worker_ttl + 60 s, 8
    minutes by default), so its own count says a dead worker runs. A worker counts while it
    beats: every worker beats at least every 5 s, busy or idle (config.workers), so one silent
    for WORKER_SILENT_SECONDS is dead or cut off from Redis, whatever its key's TTL says. One on
    this machine is dead as soon as its process is.
    """
    import django_rq
    from rq import Worker

    try:
        workers = Worker.all(queue=django_rq.get_queue(queue_name))
    except Exception:  # Redis unreachable: nothing can run; enqueueing will say so
        return []
    here = socket.gethostname()
    beat_since = timezone.now() - timedelta(seconds=WORKER_SILENT_SECONDS)
    return [w for w in workers if w.last_heartbeat and w.last_heartbeat >= beat_since
            and not (w.hostname == here and w.pid and not _process_alive(w.pid))]


def distill_worker_count() -> int:
    """How many distill workers are alive (see distill_workers_live)."""
    return len(distill_workers_live())


def run_jobs_lost(*, run: DistillationRun) -> bool:
    """Whether a queued run's work jobs all vanished from Redis (a flushed or restarted Redis)."""
    import django_rq
    from rq.job import Job

    if not run.job_ids:
        return False
    connection = django_rq.get_queue(QUEUE).connection
    try:
        return not any(Job.exists(job_id, connection=connection) for job_id in run.job_ids[-10:])
    except Exception:
        return False


def run_stall_hint(*, run: DistillationRun) -> str:
    """Why no worker works on an active run ('' when one does, or may yet).

    A running run is stalled when its workers died (see run_is_stalled); a queued one when no live
    distill worker exists to take its jobs, or its jobs are gone.
    """
    if run.status == DistillationRun.Status.QUEUED:
        if not distill_worker_count():
            return NO_WORKER_HINT.format(id=run.pk)
        return JOBS_LOST_HINT if run_jobs_lost(run=run) else ""
    return STALLED_HINT if run_is_stalled(run=run) else ""


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
    hint = run_stall_hint(run=run) if run.is_active else ""
    stalled = bool(hint)
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
        "hint": hint, "waiting_for_slots": run.is_active and run_waits_for_slots(run=run),
        "hard_negatives_created": run.hard_negatives_created, "out_of_scope_created": run.out_of_scope_created,
        "questions_judged": run.questions_judged, "judge_disagreed": run.judge_disagreed,
        "judge_low_score": run.judge_low_score, "questions_refined": run.questions_refined,
        "questions_rejected": run.questions_rejected, "endpoints": run_endpoints_describe(run),
    }


def run_waits_for_slots(*, run: DistillationRun) -> bool:
    """Whether a thread of the run is waiting right now for one of its provider's concurrency slots."""
    from distiller.ratelimit import run_waiting_for_slots

    try:
        return run_waiting_for_slots(provider_id=run.provider_id, run_id=run.pk)
    except Exception:  # Redis unreachable: nobody can wait on it either
        return False


def run_unit_problems(*, run: DistillationRun, limit: int = 50) -> list[dict]:
    """Failed units and units short of their target, with their errors."""
    units = run.units.filter(Q(status=DistillationUnit.Status.FAILED) | ~Q(error="")).select_related("node")
    return [{"key": u.key, "kind": u.kind, "intent": u.node.intent_full_name if u.node else None,
             "status": u.status, "target": u.target, "produced": u.produced, "attempts": u.attempts,
             "error": u.error} for u in units[:limit]]


# --- Neighbouring intents (the judge's candidates, hard negatives) ---------------------------

CONFUSED_NEIGHBOURS = 3  # most confused pairs of the latest evaluation added to the siblings


def intent_neighbours(*, intent) -> list:
    """The intents a question of `intent` is most easily confused with: its siblings in the taxonomy
    (out-of-scope intents left out), then the intents the topic's latest succeeded evaluation
    most confused it with (either way round). In that order, each once."""
    from datasets.models import IntentNode

    siblings = list(IntentNode.objects.filter(topic_id=intent.topic_id, parent_id=intent.parent_id,
                                              out_of_scope=False).exclude(pk=intent.pk).order_by("sort_key"))
    seen = {node.pk for node in siblings} | {intent.pk}
    confused = [pk for pk in _confused_with(intent) if pk not in seen][:CONFUSED_NEIGHBOURS]
    by_id = IntentNode.objects.in_bulk(confused)
    return siblings + [by_id[pk] for pk in confused if pk in by_id and not by_id[pk].out_of_scope]


def _confused_with(intent) -> list[int]:
    from evaluation.models import Evaluation

    latest = (Evaluation.objects.filter(topic_id=intent.topic_id, status=Evaluation.Status.SUCCEEDED)
              .order_by("-finished_at", "-id").values_list("metrics", flat=True).first()) or {}
    found = []
    for pair in latest.get("confusion_pairs") or []:
        ids = [(pair.get("intent") or {}).get("id"), (pair.get("predicted") or {}).get("id")]
        if intent.pk in ids:
            other = ids[1] if ids[0] == intent.pk else ids[0]
            if isinstance(other, int) and other not in found:
                found.append(other)
    return found


def intent_brief(node) -> dict:
    """An intent as prompts show it: its full path and its description."""
    from datasets.models import PATH_SEPARATOR

    return {"name": PATH_SEPARATOR.join(n.name for n in node.ancestors()), "description": node.description}


def judge_summary(run) -> str:
    """The judge's figures on a run, in one line: first verdicts, then what the run's judge_action did."""
    p = run.parameters
    share = f" ({100 * run.judge_disagreed / run.questions_judged:.1f}%)" if run.questions_judged else ""
    text = (f"{run.questions_judged} questions judged by {run.judge_provider.name if run.judge_provider_id else '-'}: "
            f"{run.judge_disagreed} under another intent or none{share}, {run.judge_low_score} below the threshold "
            f"{p.get('judge_threshold', 0.5)}")
    action = p.get("judge_action", "mark")
    if action == "refine":
        text += f"; {run.questions_refined} rewrites"
    elif action == "reject":
        text += f"; {run.questions_rejected} rejected"
    return text + "."


def run_endpoints_describe(run) -> str:
    """The endpoints a run calls, as stored when it started: "Custom: http://host:8765/v1 (model t)"."""
    endpoints = (run.parameters or {}).get("endpoints") or {}
    if not endpoints:  # a run started before endpoints were stored: resolved where it runs
        return f"{run.provider.name}: resolved by each worker's environment"
    return "; ".join(f"{e['name']}: {e['base_url'] or '(no base URL)'} (model {e['model'] or 'the server default'})"
                     for e in endpoints.values())
