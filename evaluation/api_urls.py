"""REST routes of this app, mounted under /api/v1/ by config/urls.py."""

from rest_framework.routers import SimpleRouter

from evaluation import api

router = SimpleRouter()
router.register("evaluations", api.EvaluationViewSet, basename="api-evaluation")

urlpatterns = router.urls
