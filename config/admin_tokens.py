"""API tokens in the admin: a key is shown once, on the page that makes it, and never again.

DRF's stock TokenAdmin lists every user's key, and its rows are named by their key (Token.__str__),
so the key also lands in the "was added" message (a cookie), the breadcrumbs, the delete page and
the admin log ("Recent actions: Added: <key>"). Whoever reads any of those can act as that user
through the API. config/admin_site.py puts this mixin in front of DRF's TokenAdmin as DRF registers
it (DRF's module is still loading then, so it cannot be imported here).
"""

from django.contrib import admin
from django.template.response import TemplateResponse
from rest_framework.authtoken.models import TokenProxy

KEY_HINT_CHARS = 4


def api_token_name(token) -> str:
    return f"API token of {token.user}"


# TokenProxy exists only for the admin: naming it by its user instead of its key keeps the key out
# of every admin page, message and log entry that names an object.
TokenProxy.__str__ = api_token_name


class ApiTokenAdminMixin:
    list_display = ("user", "key_hint", "created")
    readonly_fields = ("key_hint", "created")

    @admin.display(description="Key")
    def key_hint(self, token):
        # Enough to tell two keys apart when someone reads theirs out, not enough to use one.
        return f"{token.key[:KEY_HINT_CHARS]}…" if token.key else ""

    def get_fields(self, request, obj=None):
        return ("user",) if obj is None else ("user", "key_hint", "created")

    def get_readonly_fields(self, request, obj=None):
        # A key belongs to one user for good: another user gets a new key, not this one.
        return ("user", "key_hint", "created") if obj is not None else ()

    def response_add(self, request, obj, post_url_continue=None):
        """The new key, in this response only: not in a message (a cookie), not in the log."""
        context = {**self.admin_site.each_context(request), "opts": self.opts, "token": obj,
                   "title": api_token_name(obj)}
        return TemplateResponse(request, "admin/authtoken/token_created.html", context)
