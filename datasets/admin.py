from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.validators import MaxLengthValidator
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import smart_split, unescape_string_literal
from import_export.admin import ImportExportModelAdmin
from import_export.signals import post_export

from datasets.admin_augment import TopicAugmentAdminMixin
from datasets.admin_imports import QuestionImportAdminMixin, managed_topics
from datasets.admin_lifecycle import (
    IntentLifecycleAdminMixin,
    QuestionLifecycleAdminMixin,
    RemovedFilter,
    TopicLifecycleAdminMixin,
    TopicStateFilter,
    intent_change_urls,
    topic_ids_not_being_deleted,
)
from datasets.admin_lists import LargeListAdminMixin, TopicValuesFilter
from datasets.exports import export_stream
from datasets.models import QUESTION_TEXT_MAX_CHARS, DataDeletion, IntentNode, Question, ReviewEvent, Topic
from datasets.permissions import is_dataset_admin, topics_for_reviewer
from datasets.question_counts import status_counts_by
from datasets.resources import QUESTION_EXPORT_FORMATS, QUESTION_IMPORT_FORMATS, QuestionResource
from datasets.selectors import taxonomy_with_counts, topic_status_counts
from datasets.services import DatasetError, intent_create, intent_move
from labeling.services import questions_review_matching

STATUSES = [s for s, _ in Question.Status.choices]


def only_reviewed_topics(request, queryset, topic_field: str):
    """Reviewers see in the admin only what belongs to the topics assigned to them."""
    if is_dataset_admin(request.user):
        return queryset
    return queryset.filter(**{f"{topic_field}__in": topics_for_reviewer(request.user)})


def _count_of(model, **filters):
    """A correlated COUNT(*) of `model` rows of the outer topic: one query for the whole changelist,
    without the row explosion of joining intents and questions in one GROUP BY."""
    rows = model.objects.filter(topic=OuterRef("pk"), **filters).order_by().values("topic")
    return Coalesce(Subquery(rows.annotate(n=Count("pk")).values("n"), output_field=IntegerField()), 0)


APPROVED_STATUSES = (Question.Status.APPROVED, Question.Status.RELABELED)


class VisibleTopicFilter(admin.RelatedFieldListFilter):
    """A topic filter that lists only the topics the user may see (all for dataset admins)."""

    def field_choices(self, field, request, model_admin):
        return [(topic.pk, str(topic)) for topic in topics_for_reviewer(request.user).order_by("name")]


class VisibleUserFilter(admin.RelatedFieldListFilter):
    """A user filter (reviewed by, actor) that lists every user to dataset admins and, to a
    reviewer, only the reviewers of the topics they review: not the whole user table."""

    def field_choices(self, field, request, model_admin):
        users = get_user_model().objects.order_by("username")
        if not is_dataset_admin(request.user):
            users = users.filter(review_topics__in=topics_for_reviewer(request.user)).distinct()
        return [(user.pk, user.get_username()) for user in users]


class SaveRefused(Exception):
    """Raised by save_model when a service refuses the change; RefusableSaveMixin turns it into a
    message. Raised rather than returned so the admin's transaction rolls back the whole save and
    Django never says "changed successfully" about a change that did not happen."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class RefusableSaveMixin:
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except SaveRefused as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class ReadOnlyAdmin(admin.ModelAdmin):
    """An audit or log page: rows are written by the services only, never by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(DataDeletion)
class DataDeletionAdmin(ReadOnlyAdmin):
    """The record of every topic deletion and purge: its progress while it runs, what it deleted
    after (it names the topic, which is gone). Written by the jobs only; dataset admins read it."""

    list_display = ("id", "kind", "topic_name", "status", "progress", "batches", "longest_batch",
                    "requested_by", "created_at", "finished_at")
    list_filter = ("kind", "status")
    search_fields = ("topic_name",)
    list_select_related = ("requested_by",)
    readonly_fields = [f.name for f in DataDeletion._meta.fields]

    @admin.display(description="Questions deleted")
    def progress(self, deletion):
        done, planned = deletion.deleted.get("questions", 0), deletion.planned.get("questions", 0)
        if not planned:
            return f"{done:,}"
        share = min(100, round(100 * done / planned))
        return format_html('<progress max="100" value="{}" title="{} %"></progress> {} / {}', share, share,
                           f"{done:,}", f"{planned:,}")

    @admin.display(description="Longest batch")
    def longest_batch(self, deletion):
        return f"{deletion.longest_batch_ms:,} ms" if deletion.batches else "-"

    def has_module_permission(self, request):
        return is_dataset_admin(request.user)

    def has_view_permission(self, request, obj=None):
        return is_dataset_admin(request.user)


@admin.register(Topic)
class TopicAdmin(LargeListAdminMixin, TopicLifecycleAdminMixin, TopicAugmentAdminMixin, admin.ModelAdmin):
    list_display = ("name", "language", "owner", "intent_count", "question_count", "approved_count", "taxonomy_link",
                    "created_at")
    list_filter = (TopicStateFilter, "language", "leaf_only")
    actions = ["archive_selected", "unarchive_selected", "augment_selected"]
    search_fields = ("name", "description")
    date_hierarchy = "created_at"
    filter_horizontal = ("reviewers", "leads")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "preset", "description", "language", "owner", "reviewers")}),
        ("Generation defaults", {"fields": ("levels", "tags_per_level", "questions_per_intent", "leaf_only")}),
        ("Review", {"fields": ("target_per_intent", "confidence_threshold", "guidelines", "review_reasons", "leads",
                               "overlap_share", "overlap_reviewers")}),
        ("Evaluation gates", {"fields": ("gate_accuracy", "gate_intent")}),
        ("Timestamps", {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request):
        return only_reviewed_topics(request, super().get_queryset(request), "pk").select_related("owner").annotate(
            # Leaf intents, the classes a model learns (CLINC150: 150 in 10 domains); the out-of-scope
            # intent apart, as the README counts them.
            n_intents=_count_of(IntentNode, children__isnull=True, out_of_scope=False),
            n_out_of_scope=_count_of(IntentNode, out_of_scope=True),
        )

    def rows_attach(self, topics):
        # Read for the page's topics only, once (CappedChangeList), from the kept counts
        # (datasets/question_counts.py). Removed questions are out, as on the dashboard, in the API
        # and in this admin's question list (docs/lifecycle.md).
        counts = status_counts_by(field="topic_id", ids=[topic.pk for topic in topics], include_removed=False)
        for topic in topics:
            topic.n_questions = sum(counts[topic.pk].values())
            topic.n_approved = sum(counts[topic.pk].get(status, 0) for status in APPROVED_STATUSES)

    @admin.display(description="Leaf intents", ordering="n_intents")
    def intent_count(self, topic):
        return f"{topic.n_intents} + out-of-scope" if topic.n_out_of_scope else topic.n_intents

    def save_model(self, request, obj, form, change):
        if not change and obj.owner_id is None:  # a topic made here without an owner is its creator's
            obj.owner = request.user
        if not change and obj.preset is not None and not obj.description:  # the preset fills what was left blank
            obj.description = obj.preset.description
        super().save_model(request, obj, form, change)

    @admin.display(description="Questions")
    def question_count(self, topic):
        return topic.n_questions

    @admin.display(description="Approved")
    def approved_count(self, topic):
        return topic.n_approved

    @admin.display(description="Taxonomy")
    def taxonomy_link(self, topic):
        return format_html('<a href="{}">tree</a>', reverse("admin:datasets_topic_taxonomy", args=[topic.pk]))

    def get_urls(self):
        custom = [
            path("<int:topic_id>/taxonomy/", self.admin_site.admin_view(self.taxonomy_view),
                 name="datasets_topic_taxonomy"),
            *intent_change_urls(self),
        ]
        return custom + super().get_urls()

    def taxonomy_view(self, request, topic_id):
        # Through get_queryset: a reviewer reads only the trees of the topics they review.
        topic = get_object_or_404(self.get_queryset(request), pk=topic_id)
        if not self.has_view_permission(request, topic):
            return HttpResponseRedirect(reverse("admin:index"))
        nodes = taxonomy_with_counts(topic=topic)
        totals = topic_status_counts(topic=topic)
        question_list = reverse("admin:datasets_question_changelist")
        # The merge and delete pages' URLs (datasets_topic_intent_change) built from the tree's
        # own: two reverse() per row were a third of the page's time for 160 intents.
        tree_url = reverse("admin:datasets_topic_taxonomy", args=[topic.pk])
        rows = [
            {
                "node": node,
                "indent": (node.depth - 1) * 1.5,
                "cells": [node.subtree_counts.get(status, 0) for status in STATUSES],
                "link": f"{question_list}?intent__id__exact={node.id}",
                "merge_url": f"{tree_url}{node.id}/merge/",
                "delete_url": f"{tree_url}{node.id}/delete/",
            }
            for node in nodes
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Taxonomy of {topic.name}",
            "topic": topic,
            "rows": rows,
            "statuses": STATUSES,
            "totals": [(s, totals.get(s, 0)) for s in STATUSES],
            "can_change_taxonomy": is_dataset_admin(request.user),
        }
        return TemplateResponse(request, "admin/datasets/topic_taxonomy.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}),
                         "taxonomy_url": reverse("admin:datasets_topic_taxonomy", args=[object_id]),
                         "start_run_url": reverse("admin:distiller_distillationrun_start") + f"?topic={object_id}"}
        return super().change_view(request, object_id, form_url, extra_context)


class ChildInline(admin.TabularInline):
    model = IntentNode
    fk_name = "parent"
    fields = ("number", "name", "description")
    readonly_fields = ("number",)
    extra = 0
    show_change_link = True


class IntentNodeForm(forms.ModelForm):
    """The checks intent_move makes before it writes, as form errors rather than a 500 on save.
    The model's clean() already refuses a parent of another topic and a sibling with the same name."""

    class Meta:
        model = IntentNode
        fields = ("topic", "parent", "name", "description")

    def clean(self):
        data = super().clean()
        parent, node = data.get("parent"), self.instance
        if node.pk is not None and parent is not None and (parent.pk == node.pk or node in parent.ancestors()):
            self.add_error("parent", "Cannot move an intent under itself or one of its descendants.")
        return data


@admin.register(IntentNode)
class IntentNodeAdmin(IntentLifecycleAdminMixin, LargeListAdminMixin, RefusableSaveMixin, admin.ModelAdmin):
    form = IntentNodeForm
    list_display = ("indented_name", "topic", "depth", "question_total", "approved", "pending")
    list_filter = (("topic", VisibleTopicFilter), "depth")
    search_fields = ("name", "number", "description")
    list_select_related = ("topic",)
    # Numbers and positions follow from the tree (intent_create, intent_move, intent_renumber):
    # editing one by hand would leave the numbering inconsistent.
    readonly_fields = ("number", "depth", "position", "sort_key", "created_at")
    autocomplete_fields = ("parent",)
    fields = ("topic", "parent", "name", "description", "number", "depth", "position", "created_at")
    ordering = ("topic", "sort_key")
    list_per_page = 200
    inlines = [ChildInline]

    def get_queryset(self, request):
        return only_reviewed_topics(request, super().get_queryset(request), "topic")

    def rows_attach(self, nodes):
        # Read for the page's intents only, once (CappedChangeList), from the kept counts: counting
        # them read each intent's whole index (350 ms for a page at 1M questions).
        counts = status_counts_by(field="intent_id", ids=[node.pk for node in nodes], include_removed=False)
        for node in nodes:
            by_status = counts[node.pk]
            node.n_total = sum(by_status.values())
            node.n_approved = sum(by_status.get(status, 0) for status in APPROVED_STATUSES)
            node.n_pending = by_status.get(Question.Status.PENDING, 0)

    def get_readonly_fields(self, request, obj=None):
        # An intent moves between topics only with its subtree and questions: not one node by hand.
        fields = super().get_readonly_fields(request, obj)
        return fields if obj is None else (*fields, "topic")

    @admin.display(description="Intent", ordering="sort_key")
    def indented_name(self, node):
        return format_html('<span style="padding-left:{}em">{} {}</span>', (node.depth - 1) * 1.5, node.number,
                           node.name)

    @admin.display(description="Questions")
    def question_total(self, node):
        return node.n_total

    @admin.display(description="Approved")
    def approved(self, node):
        return node.n_approved

    @admin.display(description="Pending")
    def pending(self, node):
        return node.n_pending

    def save_model(self, request, obj, form, change):
        try:
            if not change:
                created = intent_create(topic=obj.topic, parent=obj.parent, name=obj.name,
                                        description=obj.description)
                obj.pk = created.pk
                obj.refresh_from_db()
                return
            if "parent" in form.changed_data:
                new_parent = obj.parent
                obj.parent_id = form.initial.get("parent")
                super().save_model(request, obj, form, change)
                intent_move(node=obj, new_parent=new_parent)
                return
            super().save_model(request, obj, form, change)
        except DatasetError as exc:
            raise SaveRefused(exc.message) from exc

    def delete_model(self, request, obj):
        # Through the lifecycle service: refused with the counts when the intent has questions (the
        # taxonomy tree's delete page moves them first); the siblings after it move up.
        from datasets.lifecycle import intent_delete

        try:
            intent_delete(node=obj, actor=request.user, via="admin")
        except DatasetError as exc:
            raise SaveRefused(exc.message) from exc

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except SaveRefused as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_queryset(self, request, queryset):
        from datasets.lifecycle import intent_delete

        for node in queryset.order_by("-depth"):
            if IntentNode.objects.filter(pk=node.pk).exists():  # not already gone with its parent
                try:
                    intent_delete(node=node, actor=request.user, via="admin")
                except DatasetError as exc:
                    messages.error(request, exc.message)


class ReviewEventInline(admin.TabularInline):
    model = ReviewEvent
    fields = ("created_at", "actor", "action", "from_status", "to_status", "from_intent", "to_intent", "to_text",
              "reason", "changes", "via")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-created_at",)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# What the question change form lets each role change (everything else is shown read-only).
QUESTION_REVIEWER_FIELDS = ("intent", "text")
QUESTION_ADMIN_FIELDS = ("topic", "intent", "text", "language", "split")
QUESTION_ADD_FIELDS = QUESTION_ADMIN_FIELDS


class LoadedVersionField(forms.IntegerField):
    """The question's version when the change form was loaded. It never counts as a change of the
    question: it only tells the review service which state the editor saw."""

    widget = forms.HiddenInput

    def has_changed(self, initial, data):
        return False


class QuestionAdminForm(forms.ModelForm):
    loaded_version = LoadedVersionField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["loaded_version"].initial = self.instance.version
            self.fields["loaded_version"].required = True
        if "text" in self.fields:  # the one limit of question text, on the add page as on the change page
            self.fields["text"].validators.append(MaxLengthValidator(QUESTION_TEXT_MAX_CHARS))
            self.fields["text"].widget.attrs["maxlength"] = QUESTION_TEXT_MAX_CHARS


@admin.register(Question)
class QuestionAdmin(LargeListAdminMixin, QuestionLifecycleAdminMixin, QuestionImportAdminMixin, RefusableSaveMixin,
                    ImportExportModelAdmin):
    form = QuestionAdminForm
    resource_classes = [QuestionResource]
    import_formats = QUESTION_IMPORT_FORMATS
    export_formats = QUESTION_EXPORT_FORMATS
    list_display = ("short_text", "intent_label", "status", "source", "language", "confidence", "reviewed_by",
                    "updated_at")
    list_filter = (RemovedFilter, "status", "source", "language", "split", ("topic", VisibleTopicFilter),
                   ("complexity", TopicValuesFilter), ("audience", TopicValuesFilter), ("edge_case", TopicValuesFilter),
                   ("reviewed_by", VisibleUserFilter))
    search_fields = ("text", "intent__name", "intent__number")  # see get_search_results
    # The date drill-down by index probes (templatetags/admin_dates.py); import-export's buttons on top.
    change_list_template = "admin/datasets/question/change_list.html"
    list_select_related = ("intent", "reviewed_by")
    date_hierarchy = "created_at"
    autocomplete_fields = ("intent",)
    fieldsets = (
        (None, {"fields": ("topic", "intent", "text", "language", "split", "source", "status")}),
        ("Generation", {"classes": ("collapse",), "fields": (
            "run", "provider", "model", "temperature", "prompt_version", "style", "complexity", "audience",
            "edge_case")}),
        ("Captured query", {"classes": ("collapse",), "fields": ("predicted_intent", "confidence", "occurrences")}),
        ("Augmentation", {"classes": ("collapse",), "fields": ("transformation", "augmented_from")}),
        ("Review", {"fields": ("reviewed_by", "reviewed_at", "original_intent", "original_text", "version",
                               "loaded_version", "text_hash", "created_at", "updated_at")}),
    )
    inlines = [ReviewEventInline]
    actions = ["approve_selected", "reject_selected", "flag_selected", "reset_selected", "remove_selected",
               "restore_selected"]
    list_per_page = 100

    def get_queryset(self, request):
        # Reviewers: their topics' questions (only_reviewed_topics), as ids rather than a subquery so
        # the planner knows how many rows that is (see QuestionLifecycleAdminMixin.get_queryset).
        queryset = super().get_queryset(request)
        if is_dataset_admin(request.user):
            return queryset
        return queryset.filter(topic_id__in=self.visible_topic_ids(request))

    def visible_topic_ids(self, request) -> list[int]:
        """The topics whose questions get_queryset shows this user (also TopicValuesFilter's
        scope), read once per request."""
        if not hasattr(request, "_question_topic_ids"):
            topic_ids = topic_ids_not_being_deleted(request)
            if not is_dataset_admin(request.user):
                topic_ids = list(topics_for_reviewer(request.user).filter(pk__in=topic_ids).values_list("pk", flat=True))
            request._question_topic_ids = topic_ids
        return request._question_topic_ids

    def get_search_results(self, request, queryset, search_term):
        """Every word in the question's text, or in the name or number of its intent, as the stock
        search over search_fields. The text through the trigram index on UPPER(text) (what
        icontains compares); the intents matched first, so no OR across a join defeats the index."""
        for word in smart_split(search_term):
            if word.startswith(('"', "'")) and word[0] == word[-1]:
                word = unescape_string_literal(word)
            intent_ids = list(IntentNode.objects.filter(Q(name__icontains=word) | Q(number__icontains=word))
                              .values_list("pk", flat=True))
            queryset = queryset.filter(Q(text__icontains=word) | Q(intent_id__in=intent_ids))
        return queryset, False

    def get_readonly_fields(self, request, obj=None):
        """Everything but what the user may change here. Reviewers change a question only as a
        review does (its text and intent, audited by the review service); dataset admins also
        move it to another topic and set its language and split (audited as an update). Where it
        came from (run, provider, captured prediction, confidence…) and its review state are
        facts, changed by nobody by hand."""
        if obj is None:
            editable = QUESTION_ADD_FIELDS
        elif is_dataset_admin(request.user):
            editable = QUESTION_ADMIN_FIELDS
        else:
            editable = QUESTION_REVIEWER_FIELDS
        shown = [name for _, options in self.fieldsets for name in options["fields"] if name != "loaded_version"]
        return [name for name in shown if name not in editable]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Choices only among the topics the user may see: a posted id of another topic's row
        # fails the form's validation like an id that does not exist.
        if db_field.name == "intent":
            kwargs["queryset"] = IntentNode.objects.filter(topic__in=topics_for_reviewer(request.user))
        elif db_field.name == "topic":
            kwargs["queryset"] = managed_topics(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # Import and export are dataset admins' work, whatever IMPORT_EXPORT_*_PERMISSION_CODE says:
    # the library's default lets any staff user (reviewers can be staff) export every topic and
    # import into any of them.
    def has_import_permission(self, request):
        return is_dataset_admin(request.user)

    def has_export_permission(self, request):
        return is_dataset_admin(request.user)

    def get_export_data(self, file_format, request, queryset, **kwargs):
        """The filtered questions as encoded chunks, written by the streaming writers of
        datasets.formats, the same as export jobs (the stock path builds a tablib Dataset)."""
        if not self.has_export_permission(request):
            raise PermissionDenied
        encoding = kwargs.get("encoding") or "utf-8"
        chunks = export_stream(questions=queryset, format=file_format.writer_class.name)
        return (chunk.encode(encoding) for chunk in chunks)

    def _do_file_export(self, file_format, request, queryset, export_form=None):
        # The stock version (django-import-export 4.4) puts the whole file in an HttpResponse;
        # this one sends the chunks as the database cursor yields them.
        chunks = self.get_export_data(file_format, request, queryset, encoding=self.to_encoding,
                                      export_form=export_form)
        response = StreamingHttpResponse(chunks, content_type=file_format.get_content_type())
        filename = self.get_export_filename(request, queryset, file_format)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        post_export.send(sender=None, model=self.model)
        return response

    @admin.display(description="Question", ordering="text")
    def short_text(self, question):
        return question.text[:100]

    @admin.display(description="Intent", ordering="intent__sort_key")
    def intent_label(self, question):
        return question.intent.intent_full_name

    def _review(self, request, queryset, action):
        if not self.has_change_permission(request):
            messages.error(request, "You may not review questions.")
            return
        try:
            chosen = Question.objects.filter(pk__in=list(queryset.values_list("pk", flat=True)))
            result = questions_review_matching(queryset=chosen, actor=request.user, action=action, via="admin")
        except DatasetError as exc:
            messages.error(request, exc.message)
            return
        messages.success(request, f"{action.capitalize()}: {result.changed} question(s).")
        for note in result.notes():  # what was left alone and why (double review, second opinion, changed)
            messages.warning(request, note)

    @admin.action(description="Approve selected questions", permissions=["change"])
    def approve_selected(self, request, queryset):
        self._review(request, queryset, "approve")

    @admin.action(description="Reject selected questions", permissions=["change"])
    def reject_selected(self, request, queryset):
        self._review(request, queryset, "reject")

    @admin.action(description="Flag selected questions", permissions=["change"])
    def flag_selected(self, request, queryset):
        self._review(request, queryset, "flag")

    @admin.action(description="Reset selected questions to pending", permissions=["change"])
    def reset_selected(self, request, queryset):
        self._review(request, queryset, "reset")

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            return
        # Text, intent and topic go through the review service, so they are audited, keep the
        # originals and are refused (with who changed it) when the form was loaded before
        # someone else's change. A refusal raises SaveRefused: the admin's transaction rolls
        # back whatever this save had written.
        from labeling.services import question_fields_update, question_review

        changed = form.changed_data
        version = form.cleaned_data.get("loaded_version")
        try:
            if "text" in changed:
                version = question_review(question_id=obj.pk, actor=request.user, action="edit", text=obj.text,
                                          version=version, via="admin").version
            if "topic" in changed:
                # Written first so the relabel below checks the new intent against the new topic
                # (the form already refused an intent of another topic). A topic change is always
                # a relabel too, so the version is checked before anything is committed.
                Question.objects.filter(pk=obj.pk).update(topic=obj.topic)
            if "intent" in changed or "topic" in changed:
                version = question_review(question_id=obj.pk, actor=request.user, action="relabel",
                                          intent_id=obj.intent_id, version=version, via="admin").version
        except DatasetError as exc:
            raise SaveRefused(exc.message) from exc
        other = {name: getattr(obj, name) for name in changed if name in QUESTION_ADMIN_FIELDS
                 and name not in ("intent", "text", "topic")}
        if other:
            try:
                question_fields_update(question_id=obj.pk, actor=request.user, changes=other, version=version,
                                       via="admin")
            except DatasetError as exc:
                raise SaveRefused(exc.message) from exc


class ReasonGivenFilter(admin.SimpleListFilter):
    title = "reason"
    parameter_name = "reason_given"

    def lookups(self, request, model_admin):
        return [("yes", "With a reason"), ("no", "Without a reason")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(reason="")
        if self.value() == "no":
            return queryset.filter(reason="")
        return queryset


@admin.register(ReviewEvent)
class ReviewEventAdmin(LargeListAdminMixin, ReadOnlyAdmin):
    list_display = ("created_at", "actor", "action", "question_link", "from_status", "to_status", "from_intent",
                    "to_intent", "reason", "via")
    list_filter = ("action", "via", "to_status", ReasonGivenFilter, ("actor", VisibleUserFilter))
    search_fields = ("question__text", "actor__username", "reason")
    actions = ["export_history_csv"]
    date_hierarchy = "created_at"
    list_select_related = ("actor", "question", "from_intent", "to_intent")

    def get_queryset(self, request):
        return only_reviewed_topics(request, super().get_queryset(request), "question__topic")

    @admin.action(description="Export the selected review history as CSV (with reasons)")
    def export_history_csv(self, request, queryset):
        from labeling.selectors import review_history_csv

        response = StreamingHttpResponse(review_history_csv(events=queryset), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="review-history.csv"'
        return response

    @admin.display(description="Question")
    def question_link(self, event):
        url = reverse("admin:datasets_question_change", args=[event.question_id])
        return format_html('<a href="{}">{}</a>', url, event.question.text[:60])


# The export pages live in their own module (registered on import).
from datasets import admin_exports  # noqa: E402, F401
