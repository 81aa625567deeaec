"""REST routes of this app, mounted under /api/v1/ by config/urls.py."""

from django.urls import path

from distiller import api

urlpatterns = [
    path("runs/", api.RunListCreateApi.as_view(), name="api-runs"),
    path("runs/estimate/", api.RunEstimateApi.as_view(), name="api-runs-estimate"),
    path("runs/<int:run_id>/", api.RunDetailApi.as_view(), name="api-run"),
    path("runs/<int:run_id>/cancel/", api.RunCancelApi.as_view(), name="api-run-cancel"),
    path("runs/<int:run_id>/resume/", api.RunResumeApi.as_view(), name="api-run-resume"),
]
