"""The RQ worker every `manage.py rqworker` runs (settings.RQ["WORKER_CLASS"]): one that rides a
Redis restart through.

RQ's own worker quits when a heartbeat fails while it watches a busy work horse (so a busy worker
exits on a Redis restart, taking its job with it), and after a restart that emptied Redis it
never lists itself in `rq:workers` again, so every count of live workers reads 0. This one keeps
watching its horse through the outage and registers itself again as soon as Redis is back.
"""

import redis
from rq import Worker, worker_registration

REDIS_DOWN_ERRORS = (redis.ConnectionError, redis.TimeoutError)


class RestartTolerantWorker(Worker):
    """An RQ worker that survives a Redis outage, busy or idle, and re-registers after it."""

    def __init__(self, *args, **kwargs):
        # How often a busy worker beats (RQ's default is 30 s): it is also how soon a busy
        # worker is listed again after Redis came back empty.
        kwargs.setdefault("job_monitoring_interval", 5)
        super().__init__(*args, **kwargs)

    def heartbeat(self, timeout=None, pipeline=None):
        if pipeline is not None:
            return super().heartbeat(timeout, pipeline)
        try:
            super().heartbeat(timeout)
            self.registration_restore()
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

    def registration_restore(self) -> None:
        """List this worker again (its hash and the worker sets) when Redis lost it in a restart."""
        if self.birth_date is None or self.connection.sismember(worker_registration.REDIS_WORKER_KEYS, self.key):
            return
        self.log.warning("Worker %s: Redis forgot this worker (restarted empty?); registering again", self.name)
        with self.connection.pipeline() as pipeline:
            pipeline.hset(self.key, mapping=self.serialize())
            worker_registration.register(self, pipeline)
            pipeline.expire(self.key, max(self.worker_ttl, self.job_monitoring_interval) + 60)
            pipeline.execute()
        self.lost_jobs_requeue()

    def lost_jobs_requeue(self) -> None:
        """Redis came back empty: the jobs of queued runs went with it; queue them again."""
        from distiller.services.runs import runs_lost_jobs_requeue  # the one product queue whose jobs carry state

        try:
            requeued = runs_lost_jobs_requeue()
        except Exception:  # PostgreSQL away too: the runs show as stalled (jobs lost) until resumed
            self.log.exception("Worker %s: could not requeue the runs whose jobs Redis lost", self.name)
            return
        if requeued:
            self.log.warning("Worker %s: requeued runs %s (Redis lost their jobs)", self.name, requeued)
