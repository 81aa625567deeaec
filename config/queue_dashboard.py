"""django-rq's queue dashboard, behind the product's roles.

django-rq guards its pages with `staff_member_required` only, and the README tells admins to give
reviewers staff status: a reviewer could then list every topic's jobs, delete jobs and empty
queues. Here superusers may do everything; dataset admins may look (GET on the read-only pages);
everyone else is refused. The same rule covers `/admin/rq/` and the admin's own dashboard link.
"""

from functools import wraps

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.urls import URLPattern, path
from django_rq import stats_views
from django_rq import urls as rq_urls
from django_rq.admin import QueueAdmin

from datasets.permissions import is_dataset_admin

# The dashboard's pages that only show things (django_rq.urls names, without a prefix).
READ_ONLY_VIEWS = {
    "home", "jobs", "queue_details", "finished_jobs", "failed_jobs", "scheduled_jobs", "started_jobs",
    "deferred_jobs", "job_detail", "result_detail", "workers", "worker_details", "scheduler_jobs",
    "cron_scheduler_detail", "cron_job_detail", "home_json",
}


def may_use_queue_dashboard(user, *, name: str, method: str) -> bool:
    if not (user and user.is_authenticated and user.is_active):
        return False
    if user.is_superuser:
        return True
    return is_dataset_admin(user) and name in READ_ONLY_VIEWS and method in ("GET", "HEAD")


def _guarded(view, name: str):
    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not may_use_queue_dashboard(request.user, name=name, method=request.method):
            raise PermissionDenied("Only superusers may manage the job queues; dataset admins may look.")
        return view(request, *args, **kwargs)

    return staff_member_required(guarded)


def queue_dashboard_urlpatterns(*, name_prefix: str = "", view_wrapper=None) -> list[URLPattern]:
    """django-rq's dashboard routes, each behind `may_use_queue_dashboard`. The stats JSON route
    is kept for signed-in users only (its bearer-token variant is not routed: no token is set)."""
    patterns = []
    for pattern in [*rq_urls.get_admin_urlpatterns(), path("stats.json", stats_views.stats_json, name="home_json")]:
        view = _guarded(pattern.callback, pattern.name)
        if view_wrapper is not None:
            view = view_wrapper(view)
        patterns.append(URLPattern(pattern.pattern, view, pattern.default_args, name_prefix + pattern.name))
    return patterns


class GuardedQueueAdmin(QueueAdmin):
    """The admin's "Django RQ" entry, shown to and usable by the same users as /admin/rq/."""

    def has_module_permission(self, request):
        return may_use_queue_dashboard(request.user, name="home", method="GET")

    def has_view_permission(self, request, obj=None):
        return may_use_queue_dashboard(request.user, name="home", method="GET")

    def has_change_permission(self, request, obj=None):
        return bool(request.user.is_active and request.user.is_superuser)

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        def wrap(view):
            @wraps(view)
            def wrapper(request, *args, **kwargs):
                request.current_app = self.admin_site.name
                return self.admin_site.admin_view(view)(request, *args, **kwargs)

            return wrapper

        return (queue_dashboard_urlpatterns(name_prefix="django_rq_", view_wrapper=wrap)
                + super(QueueAdmin, self).get_urls())
