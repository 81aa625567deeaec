"""HTML pages of the review UI, mounted at the site root."""

from django.urls import path

from datasets.health.views import topic_health_page
from labeling import views

app_name = "labeling"

urlpatterns = [
    path("", views.home, name="home"),
    path("topics/<int:topic_id>/", views.topic_dashboard, name="dashboard"),
    path("topics/<int:topic_id>/health/", topic_health_page, name="health"),
    path("topics/<int:topic_id>/review/", views.review_screen, name="review"),
    path("topics/<int:topic_id>/questions/", views.question_list, name="questions"),
    path("topics/<int:topic_id>/reviewers/", views.reviewer_figures_page, name="reviewers"),
    path("topics/<int:topic_id>/examples/", views.intent_examples_json, name="examples"),
    path("topics/<int:topic_id>/questions/<int:question_id>/similar/", views.question_similar, name="similar"),
]
