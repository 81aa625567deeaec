"""The one place jobs are put on RQ queues.

Jobs are plain functions that take ids, never model instances. They are enqueued after the
current transaction commits, so a worker never looks for a row that is not there yet.
"""

import django_rq
from django.db import transaction


def enqueue(func, *args, queue: str = "default", job_timeout: int | None = None, job_id: str | None = None,
            on_commit: bool = True, **kwargs):
    """Put `func(*args, **kwargs)` on the named queue. Returns the job id.

    With `on_commit` (the default) the job is enqueued when the surrounding transaction commits.
    """
    rq_queue = django_rq.get_queue(queue)
    options = {"job_timeout": job_timeout, "job_id": job_id, "result_ttl": 86400, "failure_ttl": 7 * 86400}
    options = {k: v for k, v in options.items() if v is not None}
    if job_id is None:
        import uuid

        job_id = options["job_id"] = uuid.uuid4().hex

    def put():
        rq_queue.enqueue(func, *args, **options, **kwargs)

    if on_commit:
        transaction.on_commit(put)
    else:
        put()
    return job_id
