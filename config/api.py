"""What every API endpoint shares: one error shape and the mapping of service errors to HTTP.

Every error body is {"error": {"code": ..., "message": ..., "details": ...}}.
"""

import sys

import redis
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler

from config.serializers import UNKNOWN_FIELD
from datasets.services import DatasetError

STATUS_FOR_CODE = {
    "not_found": status.HTTP_404_NOT_FOUND,
    "conflict": status.HTTP_409_CONFLICT,
    "duplicate": status.HTTP_409_CONFLICT,
    "exists": status.HTTP_409_CONFLICT,
    "frozen": status.HTTP_409_CONFLICT,  # an archived topic or one being deleted (datasets/lifecycle.py)
    "has_questions": status.HTTP_409_CONFLICT,
    "forbidden": status.HTTP_403_FORBIDDEN,
    "queue_unavailable": status.HTTP_503_SERVICE_UNAVAILABLE,  # Redis is down: nothing was started
}


# How long a client should wait before retrying when the database is unreachable: a restart
# takes a second or two; a longer outage is answered the same way on the next try.
DATABASE_RETRY_AFTER_SECONDS = 5
DATABASE_UNAVAILABLE_MESSAGE = "The database is unreachable right now (restarting?); nothing was changed. Try again shortly."


def error_body(code: str, message: str, details=None) -> dict:
    return {"error": {"code": code, "message": message, "details": details}}


def database_unreachable(exc: BaseException | None) -> bool:
    """Whether `exc` says the database cannot be reached (down, restarting, connection lost).

    Not every OperationalError: a deadlock, a lock or statement timeout is the request's own
    problem. psycopg gives connection failures no SQLSTATE, or class 08 (connection exception)
    or 57P (the server is shutting down or starting up).
    """
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    state = getattr(exc.__cause__, "sqlstate", None)
    return state is None or state.startswith("08") or state.startswith("57P")


def database_unavailable_response() -> JsonResponse:
    """503 in the API's error shape with Retry-After: the answer to any request while the database is away."""
    response = JsonResponse(error_body("database_unavailable", DATABASE_UNAVAILABLE_MESSAGE),
                            status=status.HTTP_503_SERVICE_UNAVAILABLE)
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


def unknown_fields(details) -> list[str]:
    """The top-level fields a ValidationError's details call unknown (config.serializers refuses them)."""
    if not isinstance(details, dict):
        return []
    return [name for name, errors in details.items()
            if isinstance(errors, list) and any(getattr(e, "code", None) == UNKNOWN_FIELD for e in errors)]


def api_exception_handler(exc, context):
    if database_unreachable(exc):
        return Response(error_body("database_unavailable", DATABASE_UNAVAILABLE_MESSAGE),
                        status=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)})
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        # Redis (queues, the shared throttle) is restarting: a 503 the client retries, not a 500.
        return Response(error_body("redis_unavailable", "Redis (the work queues and the request throttle) is "
                                                        "unreachable right now; try again shortly."),
                        status=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)})
    if isinstance(exc, DatasetError):
        http_status = STATUS_FOR_CODE.get(exc.code, status.HTTP_400_BAD_REQUEST)
        retry = {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)} if http_status == 503 else None
        return Response(error_body(exc.code, exc.message, exc.details), status=http_status, headers=retry)
    if isinstance(exc, ValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django log it and answer 500
    if isinstance(exc, exceptions.ValidationError):
        code, message, details = "invalid", "The request is invalid; see details.", response.data
        unknown = unknown_fields(response.data)
        if unknown:
            message = f"Unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; see details."
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
        code = getattr(detail, "code", None) or exc.default_code
        message, details = str(detail) or str(exc.default_detail), None
    response.data = error_body(code, message, details)
    return response


def _is_api(request) -> bool:
    return request.path_info.startswith("/api/")


def page_not_found(request, exception=None):
    """handler404: a URL no route matches. DRF never sees these, so under /api/ this answers the
    API's error shape itself; elsewhere Django's page. Django calls handlers only with DEBUG off."""
    if _is_api(request):
        return JsonResponse(error_body("not_found", f"No API endpoint at {request.path}: see /api/docs/ for "
                                                    "the endpoints."), status=status.HTTP_404_NOT_FOUND)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """handler500: an unhandled exception (already logged by Django) in the API's error shape under /api/.

    A database outage met outside a view (a middleware saving the session) answers 503 like in one.
    """
    if database_unreachable(sys.exc_info()[1]):
        return database_unavailable_response()
    if _is_api(request):
        return JsonResponse(error_body("server_error", "The server failed to answer this request; the error "
                                                       "has been logged. Try again, or report it if it persists."),
                            status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    return defaults.server_error(request)


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema. It renders as YAML or OpenAPI JSON; its errors (a 401 without a login)
    render as the API's JSON error shape like every other endpoint's."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


class SwaggerDocsView(SpectacularSwaggerSplitView):
    """The interactive docs. SERVE_PERMISSIONS requires a login; a browser without one is sent to
    the login page (and back) instead of getting a bare 401 page. The split view serves its start
    script from this URL (`?script`) instead of inline, so the Content-Security-Policy holds."""

    def handle_exception(self, exc):
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed) \
                and not self.request.headers.get("Authorization"):
            return redirect_to_login(self.request.get_full_path())
        return super().handle_exception(exc)
