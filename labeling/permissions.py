"""Who may post captured production queries.

Dataset admins, superusers and members of the `capture client` group (a service account for
the deployed model, created by labeling/migrations/0002_capture_client.py) may post captures.
Reviewers may not: a capture puts work in every reviewer's queue.
"""

from rest_framework.permissions import BasePermission

from datasets.permissions import is_dataset_admin

CAPTURE_CLIENT = "capture client"


def can_post_captures(user) -> bool:
    return is_dataset_admin(user) or bool(
        user and user.is_authenticated and user.groups.filter(name=CAPTURE_CLIENT).exists())


class CanPostCaptures(BasePermission):
    message = "Only dataset admins and capture clients may post captured queries."

    def has_permission(self, request, view):
        return can_post_captures(request.user)
