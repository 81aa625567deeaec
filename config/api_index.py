"""GET /api/v1/: the API's entry points, so a client (or a person with a token) can start there."""

from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

API_PREFIX = "api/v1/"


def _named_patterns(patterns):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _named_patterns(pattern.url_patterns)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield pattern.name


def api_entry_points() -> dict[str, str]:
    """{"topics": "/api/v1/topics/", ...}: every routed API path that takes no id, in route order."""
    entries = {}
    for resolver in get_resolver().url_patterns:
        if not (isinstance(resolver, URLResolver) and str(resolver.pattern) == API_PREFIX):
            continue
        for name in _named_patterns(resolver.url_patterns):
            try:
                path = reverse(name)
            except NoReverseMatch:  # needs an id: reached from an entry point's answers
                continue
            if path.startswith("/" + API_PREFIX) and path != "/" + API_PREFIX:
                entries.setdefault(path.removeprefix("/" + API_PREFIX).rstrip("/"), path)
    return entries


class ApiIndexView(APIView):
    """The API's entry points as absolute URLs, with the schema and the interactive docs."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        entries = {name: request.build_absolute_uri(path) for name, path in api_entry_points().items()}
        return Response({
            "entry_points": entries,
            "schema": request.build_absolute_uri(reverse("api-schema")),
            "docs": request.build_absolute_uri(reverse("api-docs")),
        })
