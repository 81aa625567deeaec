"""Request guards that apply to every view: the admin, the review UI and the API alike."""

from django.http import HttpResponseBadRequest, JsonResponse

from config.api import error_body


class RejectNulBytesMiddleware:
    """Answer 400 to a query string holding a NUL byte.

    PostgreSQL text cannot hold NUL, so such a value reaching a filter or a search would end
    as a database error and a 500; no legitimate client sends one.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or any("\x00" in key or any("\x00" in v for v in values)
                                          for key, values in request.GET.lists()):
            message = "The request's URL or query string contains a NUL byte."
            if request.path.startswith("/api/"):
                return JsonResponse(error_body("invalid_parameter", message), status=400)
            return HttpResponseBadRequest(message)
        return self.get_response(request)
