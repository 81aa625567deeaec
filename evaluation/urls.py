"""HTML pages of evaluations, mounted at the site root."""

from django.urls import path

from evaluation import views

app_name = "evaluation"

urlpatterns = [
    path("topics/<int:topic_id>/evaluations/", views.evaluation_list, name="list"),
    path("evaluations/<int:pk>/", views.evaluation_page, name="page"),
    path("evaluations/<int:pk>/label-issues/review/", views.label_issues_review, name="send-to-review"),
    path("evaluations/compare/", views.evaluation_compare, name="compare"),
]
