"""The data lifecycle in the admin (datasets/lifecycle.py), for dataset admins and superusers only:
a topic's delete page that states what goes and queues the deletion job, archive and unarchive
actions, remove and restore actions on questions, and merging or deleting an intent from the
taxonomy tree (and the stock intent delete page stated from the kept counts). Mixed into the model admins of datasets/admin.py."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from datasets.lifecycle import (
    intent_delete,
    intent_merge,
    intent_question_counts,
    questions_remove,
    questions_restore,
    topic_archive,
    topic_deletion_plan,
    topic_deletion_start,
    topic_unarchive,
)
from datasets.models import IntentNode, Topic
from datasets.permissions import is_dataset_admin
from datasets.services import DatasetError

# The confirmation's lines, in the order they are stated.
PLAN_LABELS = [
    ("intents", "intents"), ("questions", "questions"), ("removed_questions", "of them removed questions"),
    ("review_events", "review events (the audit trail of those questions)"),
    ("distillation_runs", "distillation runs"), ("llm_calls", "LLM calls recorded by those runs"),
    ("exports", "exports"), ("export_files", "export files"), ("evaluations", "evaluations"),
    ("evaluation_files", "trained model files of those evaluations"),
    ("label_issues", "likely label errors found by those evaluations"),
]


class TopicStateFilter(admin.SimpleListFilter):
    """Active topics by default; archived ones when asked for. Topics being deleted are never listed."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("archived", "Archived"), ("all", "Active and archived")]

    def choices(self, changelist):
        yield {"selected": self.value() is None, "query_string": changelist.get_query_string(remove=[self.parameter_name]),
               "display": "Active"}
        yield from list(super().choices(changelist))[1:]

    def queryset(self, request, queryset):
        if self.value() == "archived":
            return queryset.filter(archived_at__isnull=False)
        if self.value() == "all":
            return queryset
        return queryset.filter(archived_at__isnull=True)


class TopicLifecycleAdminMixin:
    """Delete (a confirmation stating what goes, then the batched job), archive and unarchive."""

    def get_queryset(self, request):
        return super().get_queryset(request).filter(deletion_started_at__isnull=True)

    def has_delete_permission(self, request, obj=None):
        return is_dataset_admin(request.user)

    def has_lifecycle_permission(self, request):
        return is_dataset_admin(request.user)

    def get_actions(self, request):
        # The stock bulk delete would load every related row of every topic into one request.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_view(self, request, object_id, extra_context=None):
        if not self.has_delete_permission(request):
            raise PermissionDenied
        topic = get_object_or_404(Topic.objects.filter(deletion_started_at__isnull=True), pk=object_id)
        if request.method == "POST":
            try:
                deletion = topic_deletion_start(topic=topic, actor=request.user)
            except DatasetError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(request, f"{topic.name} is hidden now and is being deleted in the background "
                                           f"(deletion #{deletion.pk}).", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:datasets_topic_changelist"))
        plan = topic_deletion_plan(topic=topic)
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "topic": topic,
            "title": f"Delete {topic.name}?", "lines": [(plan[key], label, key in plan.get("estimated", ()))
                                                      for key, label in PLAN_LABELS],
        }
        return TemplateResponse(request, "admin/datasets/topic/delete_confirmation.html", context)

    @admin.action(description="Archive selected topics (read-only, out of queues and lists)",
                  permissions=["lifecycle"])
    def archive_selected(self, request, queryset):
        self._each_topic(request, queryset, topic_archive, "Archived")

    @admin.action(description="Unarchive selected topics", permissions=["lifecycle"])
    def unarchive_selected(self, request, queryset):
        self._each_topic(request, queryset, topic_unarchive, "Unarchived")

    def _each_topic(self, request, queryset, service, done: str):
        names = []
        for topic in queryset:
            try:
                service(topic=topic)
                names.append(topic.name)
            except DatasetError as exc:
                self.message_user(request, exc.message, messages.ERROR)
        if names:
            self.message_user(request, f"{done}: {', '.join(names)}.", messages.SUCCESS)


def topic_ids_not_being_deleted(request) -> list[int]:
    """The ids of the topics not being deleted, read once per request."""
    if not hasattr(request, "_topic_ids_not_being_deleted"):
        request._topic_ids_not_being_deleted = list(
            Topic.objects.filter(deletion_started_at__isnull=True).values_list("pk", flat=True))
    return request._topic_ids_not_being_deleted


class QuestionLifecycleAdminMixin:
    """Remove and restore instead of delete: the review history stays. Removed questions are listed
    only through the "removed" filter."""

    def has_delete_permission(self, request, obj=None):
        return False  # a question goes by removal (and, much later, a purge), never with its history

    def has_lifecycle_permission(self, request):
        return is_dataset_admin(request.user)

    def get_queryset(self, request):
        # The ids, not a join: joined, the planner misjudges how many questions the (rarely
        # analyzed) topic table lets through and sorts a million rows for a deep page.
        return super().get_queryset(request).filter(topic_id__in=topic_ids_not_being_deleted(request))

    def _change_removal(self, request, queryset, service, done: str):
        try:
            changed = service(questions=queryset, actor=request.user, via="admin")
        except DatasetError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(request, f"{done}: {changed} question(s).", messages.SUCCESS)

    @admin.action(description="Remove selected questions (history kept, restorable)", permissions=["lifecycle"])
    def remove_selected(self, request, queryset):
        self._change_removal(request, queryset, questions_remove, "Removed")

    @admin.action(description="Restore selected removed questions", permissions=["lifecycle"])
    def restore_selected(self, request, queryset):
        self._change_removal(request, queryset, questions_restore, "Restored")


class RemovedFilter(admin.SimpleListFilter):
    """Questions in effect by default; the removed ones when asked for."""

    title = "removed"
    parameter_name = "removed"

    def lookups(self, request, model_admin):
        return [("yes", "Removed")]

    def choices(self, changelist):
        yield {"selected": self.value() is None, "query_string": changelist.get_query_string(remove=[self.parameter_name]),
               "display": "Not removed"}
        yield from list(super().choices(changelist))[1:]

    def queryset(self, request, queryset):
        return queryset.filter(removed_at__isnull=self.value() != "yes")


class IntentChangeForm(forms.Form):
    target = forms.ModelChoiceField(IntentNode.objects.none(), required=False)

    def __init__(self, *args, node: IntentNode, required: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].queryset = IntentNode.objects.filter(topic_id=node.topic_id).exclude(pk=node.pk) \
            .order_by("sort_key")
        self.fields["target"].required = required
        self.fields["target"].label_from_instance = lambda intent: intent.intent_full_name


class IntentLifecycleAdminMixin:
    """The stock delete page and bulk delete of intents, stated from the kept counts: Django's own
    collects every question of the subtree (thousands of rows at 1,000,000 questions) only to
    answer that the user may not delete questions. An intent with questions is refused with its
    counts and a link to the taxonomy tree's delete page, which moves them first."""

    def get_deleted_objects(self, objs, request):
        deleted, protected, intents = [], [], 0
        for node in objs:
            counts = intent_question_counts(node=node)
            if counts["questions"]:
                url = reverse("admin:datasets_topic_intent_change", args=[node.topic_id, node.pk, "delete"])
                by_status = ", ".join(f"{n} {status}" for status, n in counts.items()
                                      if status not in ("questions", "sub_intents"))
                protected.append(format_html(
                    '{} has {} questions ({}): <a href="{}">move them to another intent, then delete it</a>',
                    node.intent_full_name, counts["questions"], by_status, url))
                continue
            intents += 1 + counts["sub_intents"]
            below = f" and its {counts['sub_intents']} sub-intent(s)" if counts["sub_intents"] else ""
            deleted.append(f"Intent: {node.intent_full_name}{below}")
        return deleted, ({"intents": intents} if intents else {}), set(), protected


def intent_change_view(model_admin, request, topic_id: int, intent_id: int, intent_action: str):
    """The taxonomy tree's merge and delete pages: the intent's counts, a target, then the service."""
    if not is_dataset_admin(request.user):
        raise PermissionDenied
    node = get_object_or_404(IntentNode.objects.select_related("topic"), pk=intent_id, topic_id=topic_id,
                             topic__deletion_started_at__isnull=True)
    merging = intent_action == "merge"
    form = IntentChangeForm(request.POST or None, node=node, required=merging)
    tree_url = reverse("admin:datasets_topic_taxonomy", args=[topic_id])
    if request.method == "POST" and form.is_valid():
        target = form.cleaned_data["target"]
        try:
            if merging:
                result = intent_merge(source=node, target=target, actor=request.user, via="admin")
                done = (f"Merged {node.intent_full_name} into {target.name}: {result.questions_moved} question(s) "
                        f"relabeled, {result.intents_moved} sub-intent(s) moved, {result.intents_merged - 1} merged.")
            else:
                result = intent_delete(node=node, move_questions_to=target, actor=request.user, via="admin")
                done = (f"Deleted {node.intent_full_name} ({result.intents_deleted} intent(s)); "
                        f"{result.questions_moved} question(s) moved first.")
        except DatasetError as exc:
            model_admin.message_user(request, exc.message, messages.ERROR)
        else:
            model_admin.message_user(request, done, messages.SUCCESS)
            return HttpResponseRedirect(tree_url)
    context = {
        **model_admin.admin_site.each_context(request), "opts": model_admin.model._meta, "topic": node.topic,
        "node": node, "form": form, "merging": merging, "counts": intent_question_counts(node=node),
        "tree_url": tree_url, "title": f"{'Merge' if merging else 'Delete'} {node.intent_full_name}",
    }
    return TemplateResponse(request, "admin/datasets/topic/intent_change.html", context)


def intent_change_urls(model_admin) -> list:
    return [path("<int:topic_id>/taxonomy/<int:intent_id>/<str:intent_action>/",
                 model_admin.admin_site.admin_view(
                     lambda request, topic_id, intent_id, intent_action: intent_change_view(
                         model_admin, request, topic_id, intent_id, intent_action)
                     if intent_action in ("merge", "delete") else HttpResponseRedirect(
                         reverse("admin:datasets_topic_taxonomy", args=[topic_id]))),
                 name="datasets_topic_intent_change")]
