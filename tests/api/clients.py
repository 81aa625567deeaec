"""An API client per persona, authenticated by token as a script would be."""

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def api_as(user, keyword: str = "Token") -> APIClient:
    """A client sending `Authorization: <keyword> <user's token>`; api_as(None) is anonymous."""
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"{keyword} {token.key}")
    return client
