"""API authentication beyond DRF's own classes (listed in settings.REST_FRAMEWORK).

Kept apart from config/api.py: DRF imports authentication classes while rest_framework.views is
still loading, so this module must not import DRF's views.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import TokenAuthentication


class BearerTokenAuthentication(TokenAuthentication):
    """The same API tokens, sent as `Authorization: Bearer <token>` (what most HTTP clients and the
    training guide send); DRF's TokenAuthentication only reads `Authorization: Token <token>`."""

    keyword = "Bearer"


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "config.authentication.BearerTokenAuthentication"
    name = "bearerAuth"
    priority = 1  # before drf-spectacular's own scheme for TokenAuthentication and its subclasses

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API token, as `Authorization: Bearer <token>`."}
