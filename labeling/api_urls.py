"""REST routes of this app, mounted under /api/v1/ by config/urls.py."""

from django.urls import path

from labeling.api import (
    CaptureApi,
    LeaseRenewApi,
    QuestionReviewApi,
    ReviewerFiguresApi,
    ReviewNextApi,
    ReviewUndoApi,
)

urlpatterns = [
    path("review/next/", ReviewNextApi.as_view(), name="api-review-next"),
    path("review/undo/", ReviewUndoApi.as_view(), name="api-review-undo"),
    path("review/<int:pk>/lease/", LeaseRenewApi.as_view(), name="api-review-lease"),
    path("questions/<int:pk>/review/", QuestionReviewApi.as_view(), name="api-question-review"),
    path("topics/<int:topic_id>/reviewers/", ReviewerFiguresApi.as_view(), name="api-topic-reviewers"),
    path("labeling/captures/", CaptureApi.as_view(), name="api-captures"),
]
