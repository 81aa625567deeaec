"""Role checks shared by the API, the review UI and the admin.

Roles are Django groups (created by labeling/migrations/0001_roles.py):
- `dataset admin`: manages topics, taxonomies, runs and exports of every topic;
- `reviewer`: reviews the questions of the topics listed in `Topic.reviewers`;
  a reviewer listed in `Topic.leads` is that topic's lead: also gives second opinions and sees
  every reviewer's figures there.
Superusers can do everything.
"""

from django.db.models import Q
from rest_framework.permissions import BasePermission

from datasets.models import Topic

DATASET_ADMIN = "dataset admin"
REVIEWER = "reviewer"


def is_dataset_admin(user) -> bool:
    return bool(user and user.is_authenticated and (
        user.is_superuser or user.groups.filter(name=DATASET_ADMIN).exists()))


def is_reviewer(user) -> bool:
    return bool(user and user.is_authenticated and user.groups.filter(name=REVIEWER).exists())


def topics_for_reviewer(user, *, include_archived: bool = False):
    """The topics a user may review: all for dataset admins, the assigned ones for reviewers.

    Never a topic being deleted; archived topics (read-only) only with `include_archived`, so
    queues and lists leave them out by default.
    """
    if is_dataset_admin(user):
        topics = Topic.objects.all()
    elif is_reviewer(user):
        topics = Topic.objects.filter(pk__in=Topic.objects.filter(Q(reviewers=user) | Q(leads=user)).values("pk"))
    else:
        return Topic.objects.none()
    topics = topics.filter(deletion_started_at__isnull=True)
    return topics if include_archived else topics.filter(archived_at__isnull=True)


def is_topic_lead(user, topic_id: int) -> bool:
    """A dataset admin, or a reviewer listed among the topic's leads."""
    return is_dataset_admin(user) or bool(
        is_reviewer(user) and Topic.objects.filter(pk=topic_id, leads=user).exists())


def can_review_topic(user, topic_id: int) -> bool:
    return topics_for_reviewer(user).filter(pk=topic_id).exists()


class IsDatasetAdmin(BasePermission):
    message = "Only dataset admins may do this."

    def has_permission(self, request, view):
        return is_dataset_admin(request.user)


class IsReviewerOrDatasetAdmin(BasePermission):
    """Reviewers and dataset admins; object access is further limited to their topics by the view."""

    message = "Only reviewers and dataset admins may do this."

    def has_permission(self, request, view):
        return is_dataset_admin(request.user) or is_reviewer(request.user)
