"""Health endpoints for load balancers and orchestrators: no login, JSON, nothing secret.

/healthz says the process answers. /readyz says whether it can do its work: PostgreSQL and Redis
answer, the exports storage takes a file, and every queue has a live worker. A failing check
names what failed and the kind of error, never a host, a path or a password: the endpoints are
public.
"""

import secrets

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def database_check() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return {"ok": False, "error": f"database unreachable ({type(exc).__name__})"}
    return {"ok": True}


def redis_check() -> dict:
    import django_rq

    try:
        django_rq.get_connection("default").ping()
    except Exception as exc:
        return {"ok": False, "error": f"Redis unreachable ({type(exc).__name__})"}
    return {"ok": True}


def exports_check() -> dict:
    """The exports storage (the local folder, or the object store) takes a file and lets it be deleted."""
    from django.core.files.base import ContentFile

    from config.storage import export_storage

    storage = export_storage()
    name = f".readyz-{secrets.token_hex(8)}"
    try:
        saved = storage.save(name, ContentFile(b"ok"))
        storage.delete(saved)
    except Exception as exc:  # OSError locally; botocore's errors from an object store
        return {"ok": False, "error": f"export storage not writable ({type(exc).__name__})"}
    return {"ok": True}


def workers_live_by_queue() -> dict[str, int]:
    """How many live RQ workers listen on each configured queue."""
    from distiller.selectors import queue_workers_live

    return {name: len(queue_workers_live(name)) for name in settings.RQ_QUEUES}


def workers_check() -> dict:
    live = workers_live_by_queue()
    idle = [name for name, count in live.items() if count == 0]
    result = {"ok": not idle, "live": live}
    if idle:
        result["error"] = "no live worker on queue " + ", ".join(idle)
    return result


CHECKS = {"database": database_check, "redis": redis_check, "exports": exports_check, "workers": workers_check}


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    checks = {name: check() for name, check in CHECKS.items()}
    ready = all(result["ok"] for result in checks.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)
