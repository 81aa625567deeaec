"""Admin of evaluations (read-only rows; started from a topic's page or the topics' action)."""

from django.contrib import admin, messages
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html

from datasets.models import Topic
from datasets.permissions import is_dataset_admin
from datasets.services import DatasetError
from evaluation.models import Evaluation, LabelIssue
from evaluation.services import evaluation_create, evaluation_delete, evaluation_stored_files_delete


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = ["id", "topic", "status", "stage", "accuracy", "train_count", "test_count", "created_at", "page"]
    list_filter = ["status", "topic"]
    readonly_fields = [f.name for f in Evaluation._meta.fields] + ["page"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return is_dataset_admin(request.user)

    def has_module_permission(self, request):
        return is_dataset_admin(request.user)

    def has_delete_permission(self, request, obj=None):
        return is_dataset_admin(request.user)

    # Django's own deletes would remove the rows and leave the model files in the storage.
    def delete_model(self, request, obj):
        evaluation_delete(evaluation=obj)

    def delete_queryset(self, request, queryset):
        evaluation_ids = list(queryset.values_list("pk", flat=True))
        with transaction.atomic():
            queryset.delete()
            transaction.on_commit(lambda: evaluation_stored_files_delete(evaluation_ids=evaluation_ids))

    @admin.display(description="Accuracy")
    def accuracy(self, obj):
        return (obj.metrics or {}).get("accuracy")

    @admin.display(description="Page")
    def page(self, obj):
        return format_html('<a href="{}">figures</a>', reverse("evaluation:page", args=[obj.pk]))

    def get_urls(self):
        return [path("start/<int:topic_id>/", self.admin_site.admin_view(self.start_view), name="evaluation_start"),
                *super().get_urls()]

    def start_view(self, request, topic_id):
        """The topic page's "Evaluate" button (POST): the default plan, queued for the workers."""
        topic = get_object_or_404(Topic, pk=topic_id)
        if request.method != "POST" or not is_dataset_admin(request.user):
            messages.error(request, "Only dataset admins start evaluations (with the button on the topic's page).")
            return redirect("admin:datasets_topic_change", topic.pk)
        try:
            evaluation = evaluation_create(topic=topic, created_by=request.user)
        except DatasetError as exc:
            messages.error(request, exc.message)
            return redirect("admin:datasets_topic_change", topic.pk)
        messages.success(request, format_html('Evaluation #{} of {} queued: <a href="{}">follow it</a>.',
                                              evaluation.pk, topic.name, reverse("evaluation:page", args=[evaluation.pk])))
        return redirect("admin:datasets_topic_change", topic.pk)


@admin.action(description="Evaluate a baseline classifier on the selected topics")
def evaluate_topics(modeladmin, request, queryset):
    if not is_dataset_admin(request.user):
        modeladmin.message_user(request, "Only dataset admins start evaluations.", messages.ERROR)
        return
    for topic in queryset:
        try:
            evaluation = evaluation_create(topic=topic, created_by=request.user)
        except DatasetError as exc:
            modeladmin.message_user(request, f"{topic.name}: {exc.message}", messages.ERROR)
            continue
        modeladmin.message_user(request, format_html('{}: evaluation <a href="{}">#{}</a> queued.', topic.name,
                                                     reverse("evaluation:page", args=[evaluation.pk]), evaluation.pk))


def _register_topic_action():
    """Add the action to the topics' admin (datasets never imports evaluation: the hook is here)."""
    topic_admin = admin.site._registry.get(Topic)
    if topic_admin is not None and evaluate_topics not in (topic_admin.actions or []):
        topic_admin.actions = [*(topic_admin.actions or []), evaluate_topics]


_register_topic_action()


@admin.register(LabelIssue)
class LabelIssueAdmin(admin.ModelAdmin):
    list_display = ["rank", "evaluation", "question", "given_intent", "suggested_intent", "confidence"]
    list_select_related = ["question", "given_intent", "suggested_intent"]
    raw_id_fields = ["question", "given_intent", "suggested_intent"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return is_dataset_admin(request.user)

    def has_module_permission(self, request):
        return is_dataset_admin(request.user)
