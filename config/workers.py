"""The RQ worker every `manage.py rqworker` runs (settings.RQ["WORKER_CLASS"]): one that rides a
Redis restart through.

RQ's own worker quits on the first Redis error met outside its wait for a job: a heartbeat while
it watches a busy work horse (so a busy worker exits on a Redis restart, taking its job with it),
or the bookkeeping after a job that ended during the outage, the suspension check and the state
write on its way back to waiting (so a worker whose job ends while Redis is away exits too). And
after a restart that emptied Redis it never lists itself in `rq:workers` again, so every count of
live workers reads 0. This one waits for Redis at each of those steps and registers itself again
as soon as Redis is back; it also queues again the jobs of queued runs that Redis lost, on start
and on coming back.
"""

import time

import redis
from rq import Worker, worker_registration

REDIS_DOWN_ERRORS = (redis.ConnectionError, redis.TimeoutError)


class RestartTolerantWorker(Worker):
    """An RQ worker that survives a Redis outage, busy or idle, and re-registers after it."""

    # The longest pause between two tries while Redis is away (RQ's default is 60 s): also how
    # long after Redis is back an idle worker may take to notice, register again and requeue.
    max_connection_wait_time = 5.0

    def __init__(self, *args, **kwargs):
        # How often a worker beats, busy (RQ's default is 30 s) or idle (see dequeue_job_and_maintain_ttl):
        # it is also how soon a worker is listed again after Redis came back empty.
        kwargs.setdefault("job_monitoring_interval", 5)
        super().__init__(*args, **kwargs)
        self._state_unsaved = False
        self._lost_jobs_requeue_pending = False

    def bootstrap(self, *args, **kwargs):
        super().bootstrap(*args, **kwargs)
        # A worker (re)started after Redis came back empty, e.g. with every process restarted
        # under a supervisor, is the only one left to notice the queued runs whose jobs went.
        self.lost_jobs_requeue()

    def heartbeat(self, timeout=None, pipeline=None):
        if pipeline is not None:
            return super().heartbeat(timeout, pipeline)
        try:
            super().heartbeat(timeout)
            if self._state_unsaved:
                self.connection.hset(self.key, "state", self.get_state())
                self._state_unsaved = False
            self.registration_restore()
            if self._lost_jobs_requeue_pending:
                self.lost_jobs_requeue()
        except REDIS_DOWN_ERRORS as exc:
            # RQ's work loop quits on this error; its dequeue meets the same one and retries with backoff.
            self.log.warning("Worker %s: heartbeat failed, Redis unreachable (%s)", self.name, exc)

    def maintain_heartbeats(self, job, execution):
        try:
            super().maintain_heartbeats(job, execution)
            self.registration_restore()
        except REDIS_DOWN_ERRORS as exc:
            # The horse works on (the distiller rides the outage through itself); beat again next interval.
            self.log.warning("Worker %s: Redis unreachable while job %s runs (%s); still watching it",
                             self.name, job.id, exc)

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        # Wait for a job one beat interval at a time (RQ waits about 7 minutes), so an idle worker
        # beats as often as a busy one: Redis emptied without a restart (FLUSHALL), which breaks
        # no connection, is noticed within seconds, and so is a requeue that has to be retried.
        if timeout is not None:
            timeout = min(timeout, self.job_monitoring_interval)
        return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)

    def set_state(self, state, pipeline=None):
        if pipeline is not None:
            return super().set_state(state, pipeline)
        try:
            super().set_state(state)
        except REDIS_DOWN_ERRORS as exc:
            # The state is kept here (RQ sets it before writing); the next heartbeat that reaches Redis writes it.
            self._state_unsaved = True
            self.log.warning("Worker %s: could not save state %s, Redis unreachable (%s)", self.name, state, exc)

    def execute_job(self, job, queue):
        try:
            super().execute_job(job, queue)
        except REDIS_DOWN_ERRORS as exc:
            # Raised only once the horse has exited (or before it was forked): what is left undone is
            # RQ's bookkeeping of the job, which its registry cleanup finishes later. A run's own
            # state is in PostgreSQL, so nothing of the product's work is lost with it.
            self.log.warning("Worker %s: Redis unreachable while finishing job %s (%s); waiting for the next",
                             self.name, job.id, exc)
            self.set_state("idle")

    def check_for_suspension(self, burst):
        wait = 1.0
        while True:
            try:
                return super().check_for_suspension(burst)
            except REDIS_DOWN_ERRORS as exc:
                if self._stop_requested:
                    return  # the work loop stops next
                self.log.warning("Worker %s: Redis unreachable (%s); trying again in %.0f s", self.name, exc, wait)
                time.sleep(wait)
                wait = min(wait * self.exponential_backoff_factor, self.max_connection_wait_time)

    def run_maintenance_tasks(self):
        try:
            super().run_maintenance_tasks()
        except REDIS_DOWN_ERRORS as exc:
            # Registry cleanup is housekeeping: the next worker loop does it once Redis is back.
            self.log.warning("Worker %s: maintenance skipped, Redis unreachable (%s)", self.name, exc)

    def registration_restore(self) -> None:
        """List this worker again (its hash and the worker sets) when Redis lost it in a restart."""
        if self.birth_date is None or self.connection.sismember(worker_registration.REDIS_WORKER_KEYS, self.key):
            return
        self.log.warning("Worker %s: Redis forgot this worker (restarted empty?); registering again", self.name)
        with self.connection.pipeline() as pipeline:
            pipeline.hset(self.key, mapping={**self.serialize(), "state": self.get_state()})
            worker_registration.register(self, pipeline)
            pipeline.expire(self.key, max(self.worker_ttl, self.job_monitoring_interval) + 60)
            pipeline.execute()
        self._state_unsaved = False
        self.lost_jobs_requeue()

    def lost_jobs_requeue(self) -> None:
        """Redis came back empty: the jobs of queued runs went with it; queue them again.

        When PostgreSQL cannot be reached either, the next heartbeat that reaches Redis tries again.
        """
        from django.db import connections

        from distiller.services.runs import runs_lost_jobs_requeue  # the one product queue whose jobs carry state

        if self.is_horse:
            return  # the horse's job owns this process's database connections; its worker requeues
        try:
            requeued = runs_lost_jobs_requeue()
        except Exception:
            self._lost_jobs_requeue_pending = True
            self.log.exception("Worker %s: could not requeue the runs whose jobs Redis lost; trying again", self.name)
            return
        finally:
            # The next work horse is forked from this process: a connection opened here would be
            # shared with it, and the horse closing it at exit breaks it for this process too.
            connections.close_all()
        self._lost_jobs_requeue_pending = False
        if requeued:
            self.log.warning("Worker %s: requeued runs %s (Redis lost their jobs)", self.name, requeued)
