"""Request guards that apply to every view: the admin, the review UI and the API alike."""

from django.http import HttpResponseBadRequest, JsonResponse, UnreadablePostError
from django.http.multipartparser import MultiPartParserError

from config.api import database_unavailable_response, database_unreachable, error_body


class RejectNulBytesMiddleware:
    """Answer 400 to a header, a query string, or a form field outside the API, holding a NUL byte.

    PostgreSQL text cannot hold NUL, so such a value reaching a filter, a search or a saved field
    would end as a database error and a 500; no legitimate client sends one. API bodies (JSON or
    form) are checked by the API's serializers, which name the field in the error shape.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        is_api = request.path.startswith("/api/")
        message = None
        header = next((name for name, value in request.META.items()
                       if name.startswith("HTTP_") and isinstance(value, str) and "\x00" in value), None)
        if header is None and any("\x00" in key + value for key, value in request.COOKIES.items()):
            header = "HTTP_COOKIE"  # a quoted cookie value may spell NUL as \000
        if header:
            # A token or session cookie is looked up in the database as it came.
            message = f"The request's {header.removeprefix('HTTP_').replace('_', '-').title()} header contains a NUL byte."
        elif "\x00" in request.path or any("\x00" in key or any("\x00" in v for v in values)
                                            for key, values in request.GET.lists()):
            message = "The request's URL or query string contains a NUL byte."
        elif request.method == "POST" and not is_api:
            message = self._form_problem(request)
        if message:
            if is_api:
                return JsonResponse(error_body("invalid_parameter", message), status=400)
            return HttpResponseBadRequest(message)
        return self.get_response(request)

    @staticmethod
    def _form_problem(request) -> str | None:
        try:
            fields = list(request.POST.lists())
        except (MultiPartParserError, UnreadablePostError):
            return None  # the view (or CSRF check) meets the same broken body and answers as it always did
        for key, values in fields:
            if "\x00" in key or any("\x00" in value for value in values):
                return f"The form field {key.replace(chr(0), '?')!r} contains a NUL byte."
        return None


class DatabaseUnavailableMiddleware:
    """Answer 503 with Retry-After (the API's error shape) when a view meets an unreachable database.

    DRF views answer so through config.api's exception handler; this covers the admin, the review
    UI and plain Django views, which would otherwise answer a 500 (an HTML debug page with DEBUG).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    @staticmethod
    def process_exception(request, exception):
        if database_unreachable(exception):
            return database_unavailable_response()
        return None
