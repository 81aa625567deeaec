"""What a worker does with a run: claim units, run their LLM calls concurrently, write, repeat.

Each RQ work job of a run claims units (a conditional UPDATE) for up to `concurrency` unit
threads, which share a pool of as many call threads. Units are held by a lease a keeper thread
renews; they write in short transactions that first check the lease is still theirs. Call
threads only talk HTTP (never the database); the provider's limits across all workers are
enforced by distiller.ratelimit around each HTTP attempt.
"""

import logging
import random
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, as_completed, wait
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Now
from django.utils import timezone

from config.api import database_unreachable
from distiller.llm import Endpoint, LLMClient, LLMError, LLMFatalError, Usage
from distiller.models import DistillationRun, DistillationUnit, LLMCall, LLMProvider
from distiller.pool import PoolMember, TeacherPool
from distiller.ratelimit import REDIS_DOWN_ERRORS, ProviderLimiter, outage_seconds, redis_connection
from distiller.services.providers import provider_adaptations_record
from distiller.services.runs import llm_calls_lost_record, run_complete, run_fail, units_frontier, units_plan_after

logger = logging.getLogger(__name__)


def db_now_plus(delta: timedelta):
    """The database's clock plus `delta`: leases are compared with one clock, not each worker's."""
    return ExpressionWrapper(Now() + Value(delta), output_field=DateTimeField())


def heartbeat_seconds() -> float:
    """How often a live work job says so on its run (well inside the stall threshold, the lease)."""
    return min(5.0, settings.DISTILL_UNIT_LEASE_SECONDS / 3)


class UnitLost(Exception):
    """Our lease on the unit expired and another worker took it over: drop it, write nothing."""


class RunStopped(Exception):
    """The run was cancelled or failed while the unit was working."""


def infrastructure_down(exc: BaseException) -> bool:
    """Whether `exc` says PostgreSQL or Redis cannot be reached: an outage to ride through, not a bug."""
    return database_unreachable(exc) or isinstance(exc, REDIS_DOWN_ERRORS)


def infrastructure_wait(ctx: "RunContext", exc: BaseException, *, since: float | None = None) -> bool:
    """Wait, backing off, until PostgreSQL and Redis answer again; True once they do.

    False when the outage has lasted DISTILL_OUTAGE_SECONDS (from `since`, a monotonic time, or
    now) or the run was stopped: the caller gives its work back and the run stalls with the reason.
    """
    deadline = (since or time.monotonic()) + outage_seconds()
    pause = 0.1
    logger.warning("run %s: %s; waiting for it to come back", ctx.run_id, outage_reason(exc))
    while True:
        connection.close()  # a broken connection stays broken; the next query opens a new one
        try:
            connection.ensure_connection()
            DistillationRun.objects.filter(pk=ctx.run_id).exists()
            redis_connection().ping()
            return True
        except Exception as again:
            if not infrastructure_down(again):
                raise
            exc = again
        if time.monotonic() >= deadline:
            ctx.outage = f"{outage_reason(exc)}; gave up after {outage_seconds():g} s. Resume the run once it is back."
            ctx.stop.set()
            return False
        if ctx.stop.wait(pause + random.uniform(0, pause / 2)):
            return False
        pause = min(pause * 2, 2.0)


def outage_reason(exc: BaseException) -> str:
    engine = "Redis" if isinstance(exc, REDIS_DOWN_ERRORS) else "PostgreSQL"
    return f"{engine} unreachable ({exc.__class__.__name__}: {str(exc).strip()[:200]})"


class RunContext:
    """One work job's view of a run, shared by its threads."""

    def __init__(self, run: DistillationRun, concurrency: int, owner: str = ""):
        self.run_id = run.pk
        self.run_kind = run.kind
        self.topic = run.topic
        self.parameters = run.parameters
        self.provider = run.provider
        self.stop = threading.Event()
        # One client per provider the run calls (one set of limits each): the teacher, or each
        # member of its pool, and the judge.
        self.providers: dict[int, LLMProvider] = {run.provider_id: run.provider}
        self.clients: dict[int, LLMClient] = {}
        pool = run.parameters.get("pool") or []
        members = [(run.provider, 1.0)] if not pool else [
            (LLMProvider.objects.get(name=m["provider"]), float(m["weight"])) for m in pool]
        # Draws seeded by the run's seed: which member each call goes to repeats with the run.
        self.client = TeacherPool([PoolMember(provider, self._client_for(provider), weight)
                                   for provider, weight in members], rng=random.Random(run.parameters.get("seed", 0)))
        self.judge_provider = run.judge_provider or run.provider
        self.judge_client = self._client_for(self.judge_provider)
        self.call_pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"run{run.pk}-call")
        self.concurrency = concurrency
        # The RQ job id when there is one, so the job's failure callback can find the units it held.
        self.owner = owner or uuid.uuid4().hex[:32]
        self.lease = timedelta(seconds=settings.DISTILL_UNIT_LEASE_SECONDS)
        self._held: set[int] = set()
        self._lock = threading.Lock()
        # Each unit's calls not recorded yet: recorded even when the unit dies before its write.
        self._usages: dict[int, list[Usage]] = {}
        self.outage = ""  # why this job gave up on an outage of PostgreSQL or Redis

    def _client_for(self, provider: LLMProvider) -> LLMClient:
        if provider.pk not in self.clients:
            endpoint = Endpoint.from_provider(
                provider, resolved=(self.parameters.get("endpoints") or {}).get(str(provider.pk)))
            # Backoff sleeps wake on a cancel instead of holding the job for up to a Retry-After.
            self.clients[provider.pk] = LLMClient(
                endpoint, limiter=ProviderLimiter.for_endpoint(endpoint, run_id=self.run_id), sleep=self.stop.wait)
            self.providers[provider.pk] = provider
        return self.clients[provider.pk]

    def check_endpoints(self) -> None:
        """LLMFatalError when an endpoint the run calls cannot work at all."""
        for client in self.clients.values():
            client.endpoint.check()

    def hold(self, unit_id: int) -> None:
        with self._lock:
            self._held.add(unit_id)

    def drop(self, unit_id: int) -> None:
        with self._lock:
            self._held.discard(unit_id)

    def held(self) -> list[int]:
        with self._lock:
            return list(self._held)

    def usage(self, unit: DistillationUnit) -> Usage:
        """A Usage for the unit's calls; what it still holds when the unit ends is recorded by usage_flush."""
        usage = Usage(unit_id=unit.pk)
        with self._lock:
            self._usages.setdefault(unit.pk, []).append(usage)
        return usage

    def usage_flush(self, unit_id: int) -> None:
        """Record the calls the unit's Usages still hold (answered, but the unit died before writing)."""
        with self._lock:
            usages = self._usages.pop(unit_id, [])
        for usage in usages:
            usage.restore_uncommitted()  # calls whose record was rolled back (an outage mid-write)
        try:
            with transaction.atomic():
                for usage in usages:
                    self.record(usage, unit_id)
        except Exception:
            with self._lock:  # still owed: a later flush of the unit (once the database is back) writes them
                self._usages.setdefault(unit_id, []).extend(usages)
            raise

    def collect(self, futures: dict, on_answer, on_error=None) -> tuple[list[str], LLMFatalError | None]:
        """Hand each answer of `futures` (call futures mapped to their batch) to on_answer(batch,
        answer) as it arrives; returns the failed calls' messages and the first fatal error.

        A fatal error (401, 402, quota) stops the run's other calls, yet the answers already paid
        for are still handed on. on_error() runs after each failed call. Calls in flight when this
        ends (an exception in on_answer) are awaited, so their records reach the unit's Usage even
        when the unit dies here (see usage_flush)."""
        errors, fatal = [], None
        try:
            for future in as_completed(futures):
                try:
                    answer = future.result()
                except LLMFatalError as exc:
                    fatal = fatal or exc
                    self.stop.set()
                    continue
                except LLMError as exc:
                    errors.append(exc.message)
                    if on_error is not None:
                        on_error()
                    continue
                on_answer(futures[future], answer)
        finally:
            for future in futures:
                future.cancel()
            wait(futures)
        return errors, fatal

    def check(self) -> None:
        if self.stop.is_set():
            raise RunStopped()

    def locked_unit(self, unit_id: int) -> DistillationUnit:
        """Inside a transaction: the unit row, locked, if it is still ours; else UnitLost."""
        unit = DistillationUnit.objects.select_for_update().get(pk=unit_id)
        if unit.status != DistillationUnit.Status.RUNNING or unit.lease_owner != self.owner:
            raise UnitLost()
        return unit

    def model(self) -> str:
        """The teacher's model: the configured one, or the one the server reported (a pool: one member's)."""
        return self.client.served_model()

    def record(self, usage: Usage, unit_id: int | None = None, provider=None, **counters) -> None:
        """Add calls, tokens, cost and the given counters to the run, and one LLMCall row per call
        (made at `provider`, the run's own by default).

        Call inside the write transaction: the rows and the counters they add to commit together.
        """
        if not transaction.get_connection().in_atomic_block:  # its own transaction, so a failed write gives them back
            with transaction.atomic():
                return self.record(usage, unit_id, provider, **counters)
        default = (provider or self.provider).pk
        taken = usage.take()
        # Until this transaction commits the calls stay owed on the usage (a rollback gives them back).
        transaction.on_commit(lambda: usage.committed(taken))
        calls, tokens_in, tokens_out, invalid, records = taken
        counters["invalid_dropped"] = counters.get("invalid_dropped", 0) + invalid
        updates = {name: F(name) + value for name, value in counters.items() if value}
        rows = [LLMCall(run_id=self.run_id, unit_id=unit_id, provider_id=r.provider_id or default, model=r.model,
                        kind=r.kind, tokens_in=r.tokens_in, tokens_out=r.tokens_out, latency_ms=r.latency_ms,
                        outcome=r.outcome, error_code=r.error_code, created_at=r.started_at,
                        cost=self.providers[r.provider_id or default].cost_for(
                            r.tokens_in, r.tokens_out).quantize(Decimal("0.000001")))
                for r in records]
        if calls:
            # The run's cost is the sum of its calls' rounded costs, so the two agree to the cent.
            updates.update(calls=F("calls") + calls, tokens_in=F("tokens_in") + tokens_in,
                           tokens_out=F("tokens_out") + tokens_out,
                           cost=F("cost") + sum((row.cost for row in rows), Decimal("0")))
        learned: dict[int, dict[str, str]] = {}
        for r in records:
            if r.adapted:
                learned.setdefault(r.provider_id or default, {}).update(r.adapted)
        for provider_id, adaptations in learned.items():
            provider_adaptations_record(provider_id=provider_id, adaptations=adaptations)
        if rows:
            LLMCall.objects.bulk_create(rows)
            # Until this commits, a SIGKILL would lose these calls: the limiter keeps them listed
            # (llm_calls_lost_record records them as interrupted when this process has died).
            tokens: dict[int, list[str]] = {}
            for r in records:
                if r.token:
                    tokens.setdefault(r.provider_id or default, []).append(r.token)
            transaction.on_commit(lambda: [self.clients[pk].limiter.calls_recorded(listed)
                                           for pk, listed in tokens.items()])
        if updates:
            DistillationRun.objects.filter(pk=self.run_id).update(**updates)


def _keeper(ctx: RunContext) -> None:
    """Renew our units' leases, beat the run's heartbeat and notice a cancel or failure, until the job ends.

    Through an outage of PostgreSQL it keeps trying: the dispatcher decides how long to wait.
    """
    interval, beat_every = min(1.0, ctx.lease.total_seconds() / 3), heartbeat_seconds()
    last_beat = 0.0
    try:
        while not ctx.stop.wait(interval):
            beat = time.monotonic() - last_beat >= beat_every
            try:
                running = _keep(ctx, beat=beat)
            except Exception as exc:
                if not infrastructure_down(exc):
                    raise
                connection.close()  # a broken connection stays broken; the next round opens a new one
                continue
            if beat:
                last_beat = time.monotonic()
            if not running:
                ctx.stop.set()
                break
    except Exception:
        logger.exception("run %s: lease keeper stopped", ctx.run_id)
        ctx.stop.set()
    finally:
        connection.close()


def _keep(ctx: RunContext, *, beat: bool) -> bool:
    """One round of the keeper: whether the run still runs (then our leases are renewed)."""
    run = DistillationRun.objects.filter(pk=ctx.run_id, status=DistillationRun.Status.RUNNING)
    # One statement both beats and checks the status (0 rows: no longer running).
    if not (run.update(heartbeat_at=Now()) if beat else run.exists()):
        return False
    held = ctx.held()
    if held:
        DistillationUnit.objects.filter(pk__in=held, lease_owner=ctx.owner).update(
            lease_expires_at=db_now_plus(ctx.lease))
    return True


def unit_claim(ctx: RunContext) -> DistillationUnit | None:
    """Take a pending unit, or one whose worker's lease ran out; taxonomy first (the critical path)."""
    claimable = Q(status=DistillationUnit.Status.PENDING) | Q(status=DistillationUnit.Status.RUNNING,
                                                                lease_expires_at__lt=Now())
    candidates = list(DistillationUnit.objects.filter(claimable, run_id=ctx.run_id)
                      .order_by("-kind", "id").values_list("id", flat=True)[:ctx.concurrency])
    random.shuffle(candidates)  # threads and workers racing for the same rows would mostly lose
    for unit_id in candidates:
        taken = DistillationUnit.objects.filter(claimable, pk=unit_id).update(
            status=DistillationUnit.Status.RUNNING, lease_owner=ctx.owner, lease_expires_at=db_now_plus(ctx.lease),
            attempts=F("attempts") + 1)
        if taken:
            ctx.hold(unit_id)
            return DistillationUnit.objects.select_related("node").get(pk=unit_id)
    return None


def unit_finish(ctx: RunContext, unit_id: int, *, failed: bool, error: str = "") -> None:
    """Mark our unit done or failed; a done taxonomy unit plans what its intents need next."""
    with transaction.atomic():
        done = DistillationUnit.objects.filter(pk=unit_id, lease_owner=ctx.owner,
                                               status=DistillationUnit.Status.RUNNING).update(
            status=DistillationUnit.Status.FAILED if failed else DistillationUnit.Status.DONE,
            error=error[:2000], lease_owner="", lease_expires_at=None)
        if not done:
            return
        unit = DistillationUnit.objects.get(pk=unit_id)
        # Locked: two units finishing at once must not both think the other still open (the judge of
        # an intent is planned once its questions and hard negatives are all written).
        run = DistillationRun.objects.select_for_update().get(pk=ctx.run_id)
        if not failed:
            units_plan_after(run=run, unit=unit)
        frontier = units_frontier(run_id=ctx.run_id)
        field = "units_failed" if failed else "units_done"
        DistillationRun.objects.filter(pk=ctx.run_id).update(**{field: F(field) + 1})
        if frontier:
            # Only while running: a unit that finishes after a cancel or a failure must not put
            # "taxonomy:3" back over the stage that says how the run ended.
            DistillationRun.objects.filter(pk=ctx.run_id, status=DistillationRun.Status.RUNNING).update(
                stage=frontier)


def unit_release(ctx: RunContext, unit_id: int, *, error: str = "") -> None:
    """Give a unit back as pending (the run stopped under it); a resume picks it up."""
    DistillationUnit.objects.filter(pk=unit_id, lease_owner=ctx.owner).update(
        status=DistillationUnit.Status.PENDING, lease_owner="", lease_expires_at=None, error=error[:2000])


def _unit_process(ctx: RunContext, unit: DistillationUnit) -> None:
    from distiller.services.judge import judge_unit_run
    from distiller.services.questions import question_unit_run
    from distiller.services.taxonomy import taxonomy_unit_run

    run_unit = {DistillationUnit.Kind.TAXONOMY: taxonomy_unit_run,
                DistillationUnit.Kind.JUDGE: judge_unit_run}.get(unit.kind, question_unit_run)
    try:
        failed, error = run_unit(ctx, unit)
        unit_finish(ctx, unit.pk, failed=failed, error=error)
    except UnitLost:
        logger.warning("run %s: lost the lease on %s; another worker has it", ctx.run_id, unit.key)
    except RunStopped:
        unit_release(ctx, unit.pk)
    except LLMFatalError as exc:
        run_fail(run_id=ctx.run_id, error=exc.message)
        ctx.stop.set()
        unit_release(ctx, unit.pk, error=exc.message)
    except Exception as exc:
        if infrastructure_down(exc):
            _unit_outage(ctx, unit, exc)
        else:  # a bug: fail this unit with the reason, keep the run going
            logger.exception("run %s: unit %s crashed", ctx.run_id, unit.key)
            ctx.usage_flush(unit.pk)
            unit_finish(ctx, unit.pk, failed=True, error=f"internal error: {exc!r}")
    finally:
        ctx.drop(unit.pk)
        try:
            ctx.usage_flush(unit.pk)  # calls answered before the unit ended some other way (lost lease, stop)
        except Exception as exc:
            if not infrastructure_down(exc):
                raise
            logger.warning("run %s: could not record the last calls of %s: %s", ctx.run_id, unit.key, exc)


def _unit_outage(ctx: RunContext, unit: DistillationUnit, exc: BaseException) -> None:
    """Ride an outage of PostgreSQL or Redis through: once both answer, record the unit's answered
    calls and give it back as pending; the dispatcher takes it again and it goes on from what it
    wrote. After DISTILL_OUTAGE_SECONDS the job gives up (the run stalls, resumable)."""
    back = infrastructure_wait(ctx, exc)
    try:
        ctx.usage_flush(unit.pk)
        unit_release(ctx, unit.pk, error="" if back else ctx.outage)
    except Exception as again:
        if not infrastructure_down(again):
            raise
        # The lease runs out and a resume (or another worker) takes the unit over.
        logger.warning("run %s: could not give %s back: %s", ctx.run_id, unit.key, again)


def _unit_thread(ctx: RunContext, unit: DistillationUnit) -> None:
    try:
        _unit_process(ctx, unit)
    finally:
        connection.close()  # pool threads outlive the job's interest in them


def _dispatch(ctx: RunContext, units: ThreadPoolExecutor) -> None:
    """Claim units while threads are free and hand them out; end the run when nothing is open.

    One thread per worker polls the database; unit threads start only when there is a unit for
    them (ThreadPoolExecutor grows on demand), so a worker joining a run costs little.
    """
    running: set = set()
    outage_since = None
    while not ctx.stop.is_set():
        try:
            _dispatch_round(ctx, units, running)
            outage_since = None
        except Exception as exc:
            if not infrastructure_down(exc):
                raise
            outage_since = outage_since or time.monotonic()
            infrastructure_wait(ctx, exc, since=outage_since)
    wait(running)
    if ctx.outage:
        _outage_note(ctx)


def _outage_note(ctx: RunContext) -> None:
    """Say on the run why this job gave up (when PostgreSQL answers); with its heartbeat stopped the
    run shows as stalled, and a resume continues it."""
    try:
        DistillationRun.objects.filter(pk=ctx.run_id, status=DistillationRun.Status.RUNNING).update(
            error=ctx.outage[:2000], updated_at=timezone.now())
    except Exception as exc:
        if not infrastructure_down(exc):
            raise
        connection.close()


def _dispatch_round(ctx: RunContext, units: ThreadPoolExecutor, running: set) -> None:
    """One round of _dispatch; `running` (the unit futures in flight) is updated in place, so a
    database error half way through loses none of them."""
    status = DistillationRun.objects.filter(pk=ctx.run_id).values_list("status", flat=True).first()
    if status != DistillationRun.Status.RUNNING:
        ctx.stop.set()
        return
    while len(running) < ctx.concurrency:
        unit = unit_claim(ctx)
        if unit is None:
            break
        running.add(units.submit(_unit_thread, ctx, unit))
    if not running:
        open_units = DistillationUnit.objects.filter(
            run_id=ctx.run_id, status__in=[DistillationUnit.Status.PENDING, DistillationUnit.Status.RUNNING])
        if not open_units.exists():
            run_complete(run_id=ctx.run_id)
            return
    # Wake when one of ours finishes (it may have planned more units), or poll for the
    # units other workers plan or give up.
    pause = 0.1 + random.random() * 0.2
    if not running:
        ctx.stop.wait(pause)
        return
    finished, _ = wait(running, timeout=pause, return_when=FIRST_COMPLETED)
    running -= finished
    for future in finished:
        future.result()  # _unit_process handles its errors; anything here is a bug worth raising


def run_work(*, run_id: int, owner: str = "") -> None:
    """Work on a run until it ends: the body of one RQ job; many may run at once on many machines.

    `owner` names this job on the units it leases (the RQ job id; random when empty).
    """
    close_old_connections()
    llm_calls_lost_record()  # a resumed run's calls that died with its last worker
    DistillationRun.objects.filter(pk=run_id, status=DistillationRun.Status.QUEUED).update(
        status=DistillationRun.Status.RUNNING, started_at=timezone.now())
    DistillationRun.objects.filter(pk=run_id, started_at__isnull=True).update(started_at=timezone.now())
    DistillationRun.objects.filter(pk=run_id, status=DistillationRun.Status.RUNNING).update(heartbeat_at=Now())
    # None: the run was taken back because Redis failed while its jobs were queued (run_start).
    run = DistillationRun.objects.select_related("topic", "provider", "judge_provider").filter(pk=run_id).first()
    if run is None or run.status != DistillationRun.Status.RUNNING:
        return
    concurrency = max(1, min(settings.DISTILL_WORKER_CONCURRENCY, run.provider.max_concurrency))
    try:
        ctx = RunContext(run, concurrency, owner)
        ctx.check_endpoints()
    except LLMFatalError as exc:
        run_fail(run_id=run_id, error=exc.message)
        return
    keeper = threading.Thread(target=_keeper, args=(ctx,), name=f"run{run_id}-keeper", daemon=True)
    keeper.start()
    try:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"run{run_id}-unit") as units:
            try:
                _dispatch(ctx, units)
            finally:
                # Before the pool waits for its threads: on a job timeout (raised here) they
                # must stop and give their units back, not run on to the end.
                ctx.stop.set()
    finally:
        ctx.stop.set()
        ctx.call_pool.shutdown(wait=True, cancel_futures=True)
        keeper.join()
        connection.close()  # this thread's own; matters when a command runs the work in-process
