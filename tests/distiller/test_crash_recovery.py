"""After a SIGKILL or a dead endpoint: live workers counted right, slots taken back, runs that fail fast and say so."""

import os
import signal
import socket
import subprocess
import sys
import threading

import pytest
from django.core.management import call_command

from distiller.jobs import run_work
from distiller.models import DistillationRun, LLMCall
from distiller.ratelimit import ProviderLimiter, run_waiting_for_slots
from distiller.selectors import NO_WORKER_HINT, distill_worker_count, run_progress
from distiller.services import run_cancel, run_resume, run_start
from distiller.services.execution import RunContext, unit_claim, unit_finish
from distiller.services.runs import run_fail
from tests.distiller.conftest import ROOT, WORKERS, wait_for
from tests.distiller.test_runs_on_workers import teacher_stats


@WORKERS
@pytest.mark.workers
def test_a_sigkilled_worker_is_not_counted_and_wait_works_here(provider, topic, workers, capsys):
    (victim,) = workers.start(1)
    assert distill_worker_count() == 1
    workers.kill(victim)  # RQ still lists it: its key lives for minutes

    assert distill_worker_count() == 0
    queued = run_start(topic=topic, provider=provider, levels=1, tags_per_level=2, questions_per_intent=2)
    progress = run_progress(run=queued)
    assert (queued.status, progress["stalled"], progress["hint"]) == ("queued", True, NO_WORKER_HINT.format(id=queued.pk))
    call_command("distill", "status", str(queued.pk))
    assert (f"  STALLED: Queued, but no distill worker is running to pick it up: start one (manage.py rqworker "
            f"distill), or work on it in a shell with `manage.py distill resume {queued.pk} --wait`.\n"
            ) in capsys.readouterr().out
    run_cancel(run=queued)

    call_command("distill", "auto", "--topic", "Fresh", "--levels", "1", "--tags-per-level", "2",
                 "--questions-per-tag", "3", "--provider", "Teacher", "--wait")

    run = DistillationRun.objects.get(topic__name="Fresh")
    assert run.status == "succeeded" and run.questions_created == 6
    assert "No distill worker is running: working in this process." in capsys.readouterr().out


def _hold_slots(provider_id: int, count: int) -> subprocess.Popen:
    """Another process that takes `count` of the provider's slots and keeps them until it is killed."""
    code = ("from distiller.ratelimit import ProviderLimiter\n"
            f"limiter = ProviderLimiter(provider_id={provider_id}, max_concurrency={count}, requests_per_minute=0, "
            "lease_seconds=150)\n"
            f"tokens = [limiter.acquire() for _ in range({count})]\n"
            "print('held', flush=True)\n"
            "import time; time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "manage.py", "shell", "-v", "0", "-c", code], cwd=ROOT, start_new_session=True,
                              env={**os.environ, "DEBUG": "1"}, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


@WORKERS
def test_the_slots_of_a_killed_process_are_taken_back_and_a_waiting_run_says_so(provider, topic, capsys):
    provider.max_concurrency = 2
    provider.save()
    run = DistillationRun.objects.create(topic=topic, provider=provider, status="running")
    holder = _hold_slots(provider.pk, 2)
    limiter = ProviderLimiter(provider_id=provider.pk, max_concurrency=2, requests_per_minute=0, lease_seconds=150,
                              run_id=run.pk)
    assert limiter.in_flight() == 2
    taken = []
    waiter = threading.Thread(target=lambda: taken.append(limiter.acquire()), daemon=True)
    waiter.start()
    wait_for(lambda: run_waiting_for_slots(provider_id=provider.pk, run_id=run.pk), what="the run to wait")
    assert run_progress(run=run)["waiting_for_slots"] is True
    call_command("distill", "status", str(run.pk))
    assert ("  waiting for a free slot of Teacher (2 calls at once across all workers, or its requests per "
            "minute): other runs or workers hold them\n") in capsys.readouterr().out

    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait()

    # Leases of 150 s: only the holder's death can free them within the wait.
    waiter.join(timeout=30)
    assert len(taken) == 1
    assert limiter.in_flight() == 1
    limiter.release(taken[0])
    assert limiter.in_flight() == 0


@WORKERS
def test_an_endpoint_that_refuses_connections_fails_the_run_after_five_attempts(provider, topic, settings):
    settings.DISTILL_RETRY_BASE_MS = 1
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{closed.getsockname()[1]}/v1"
    closed.close()  # nothing listens there now
    provider.base_url = url
    provider.save()

    run = run_start(topic=topic, provider=provider, levels=1, tags_per_level=3, questions_per_intent=5, workers=0)
    run_work(run.pk)

    run.refresh_from_db()
    assert run.status == "failed" and run.stage == "failed"
    assert run.error == (f"Teacher: cannot connect to {url}: connection refused (5 attempts in a row, none "
                         "answered) — start the server or fix the provider's base URL, then resume the run.")
    calls = LLMCall.objects.filter(run=run)
    assert run.calls == calls.count() == 5
    assert set(calls.values_list("outcome", "error_code")) == {("transient", "connection_refused")}


@WORKERS
def test_the_stage_of_an_ended_run_says_how_it_ended_until_it_is_resumed(provider, topic, make_intent):
    make_intent(topic, "Refunds")
    make_intent(topic, "Invoices")
    run = run_start(topic=topic, provider=provider, kind="questions", questions_per_intent=3, workers=0)
    DistillationRun.objects.filter(pk=run.pk).update(status="running")
    ctx = RunContext(run, concurrency=1)
    unit = unit_claim(ctx)

    run_cancel(run=run)
    unit_finish(ctx, unit.pk, failed=False)  # a unit that was mid-flight when the cancel came

    run.refresh_from_db()
    assert (run.status, run.stage) == ("cancelled", "cancelled")
    run = run_resume(run=run, workers=0)
    assert (run.status, run.stage) == ("running", "questions")
    run_fail(run_id=run.pk, error="Teacher: insufficient balance (402)")
    run.refresh_from_db()
    assert (run.status, run.stage) == ("failed", "failed")
    ctx.call_pool.shutdown()


@WORKERS
@pytest.mark.workers
def test_calls_in_flight_when_a_worker_is_killed_are_recorded_as_interrupted(topic, provider, teacher, workers,
                                                                               settings):
    settings.DISTILL_UNIT_LEASE_SECONDS = 3  # as the workers' (conftest)
    teacher.teacher.configure(latency=1.0)
    provider.max_concurrency = 2
    provider.save()
    (victim,) = workers.start(1)
    run = run_start(topic=topic, provider=provider, levels=1, tags_per_level=2, questions_per_intent=6,
                    questions_per_call=3)
    wait_for(lambda: teacher_stats(teacher)["in_flight"] > 0, what="a call in flight")

    workers.kill(victim)

    # Its slots come back once its liveness key expires; the calls it had not recorded are listed as lost.
    limiter = ProviderLimiter(provider_id=provider.pk, max_concurrency=2, requests_per_minute=0, lease_seconds=150)
    wait_for(lambda: limiter.in_flight() == 0, timeout=30, what="the dead worker's slots")
    wait_for(lambda: run_progress(run=run)["stalled"], timeout=30, what="the run to stall")
    teacher.teacher.configure(latency=0)
    run_work(run_resume(run=run, workers=0).pk)

    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    calls = LLMCall.objects.filter(run=run)
    assert run.calls == calls.count() == teacher_stats(teacher)["requests"]
    assert calls.filter(outcome="interrupted", error_code="worker_died", tokens_in=0).count() >= 1
