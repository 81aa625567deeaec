"""REST routes of this app, mounted under /api/v1/ by config/urls.py.

Review actions on questions (`questions/<id>/review/`) are routed by labeling/api_urls.py.
"""

from django.urls import path
from rest_framework.routers import SimpleRouter

from datasets import api, lifecycle_api
from datasets.health import api as health_api

router = SimpleRouter()
router.register("topics", api.TopicViewSet, basename="api-topic")
router.register("questions", api.QuestionViewSet, basename="api-question")
router.register("exports", api.ExportViewSet, basename="api-export")

urlpatterns = [
    path("topics/<int:topic_id>/intents/", api.IntentTreeView.as_view(), name="api-intent-tree"),
    path("exports/<int:pk>/files/<str:name>", api.ExportFileView.as_view(), name="api-export-file"),
    path("imports/", api.ImportView.as_view(), name="api-import"),
    path("augmentations/<int:pk>/", api.AugmentationView.as_view(), name="api-augmentation"),
    path("presets/", api.TopicPresetListView.as_view(), name="api-topic-presets"),
    path("topics/<int:topic_id>/health/", health_api.TopicHealthView.as_view(), name="api-topic-health"),
    path("health/", health_api.FileHealthView.as_view(), name="api-file-health"),
    path("labeling/export", api.LabelingExportView.as_view(), name="api-labeling-export"),
    path("topics/<int:topic_id>/intents/<int:intent_id>/merge/", lifecycle_api.IntentMergeView.as_view(),
         name="api-intent-merge"),
    path("topics/<int:topic_id>/intents/<int:intent_id>/delete/", lifecycle_api.IntentDeleteView.as_view(),
         name="api-intent-delete"),
    path("deletions/<int:pk>/", lifecycle_api.DataDeletionView.as_view(), name="api-data-deletion"),
    *router.urls,
]
