from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from import_export.admin import ImportExportModelAdmin
from import_export.forms import ConfirmImportForm, ImportForm

from datasets.exports import export_create, export_stream
from datasets.models import Export, IntentNode, Question, ReviewEvent, Topic
from datasets.permissions import is_dataset_admin, topics_for_reviewer
from datasets.resources import QUESTION_EXPORT_FORMATS, QUESTION_IMPORT_FORMATS, QuestionResource
from datasets.selectors import taxonomy_with_counts, topic_status_counts
from datasets.services import DatasetError
from labeling.services import questions_review_bulk

STATUSES = [s for s, _ in Question.Status.choices]


def only_reviewed_topics(request, queryset, topic_field: str):
    """Reviewers see in the admin only what belongs to the topics assigned to them."""
    if is_dataset_admin(request.user):
        return queryset
    return queryset.filter(**{f"{topic_field}__in": topics_for_reviewer(request.user)})


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ("name", "language", "owner", "intent_count", "question_count", "approved_count", "taxonomy_link",
                    "created_at")
    list_filter = ("language", "leaf_only")
    search_fields = ("name", "description")
    date_hierarchy = "created_at"
    filter_horizontal = ("reviewers",)
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "description", "language", "owner", "reviewers")}),
        ("Generation defaults", {"fields": ("levels", "tags_per_level", "questions_per_intent", "leaf_only")}),
        ("Review", {"fields": ("target_per_intent", "confidence_threshold")}),
        ("Timestamps", {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request):
        return only_reviewed_topics(request, super().get_queryset(request), "pk").select_related("owner").annotate(
            n_intents=Count("intents", distinct=True),
        )

    @admin.display(description="Intents", ordering="n_intents")
    def intent_count(self, topic):
        return topic.n_intents

    @admin.display(description="Questions")
    def question_count(self, topic):
        return Question.objects.filter(topic=topic).count()

    @admin.display(description="Approved")
    def approved_count(self, topic):
        return Question.objects.filter(topic=topic, status__in=["approved", "relabeled"]).count()

    @admin.display(description="Taxonomy")
    def taxonomy_link(self, topic):
        return format_html('<a href="{}">tree</a>', reverse("admin:datasets_topic_taxonomy", args=[topic.pk]))

    def get_urls(self):
        custom = [
            path("<int:topic_id>/taxonomy/", self.admin_site.admin_view(self.taxonomy_view),
                 name="datasets_topic_taxonomy"),
        ]
        return custom + super().get_urls()

    def taxonomy_view(self, request, topic_id):
        topic = get_object_or_404(Topic, pk=topic_id)
        if not self.has_view_permission(request, topic):
            return HttpResponseRedirect(reverse("admin:index"))
        nodes = taxonomy_with_counts(topic=topic)
        totals = topic_status_counts(topic=topic)
        question_list = reverse("admin:datasets_question_changelist")
        rows = [
            {
                "node": node,
                "indent": (node.depth - 1) * 1.5,
                "cells": [node.subtree_counts.get(status, 0) for status in STATUSES],
                "link": f"{question_list}?intent__id__exact={node.id}",
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


@admin.register(IntentNode)
class IntentNodeAdmin(admin.ModelAdmin):
    list_display = ("indented_name", "topic", "depth", "question_total", "approved", "pending")
    list_filter = ("topic", "depth")
    search_fields = ("name", "number", "description")
    list_select_related = ("topic",)
    readonly_fields = ("number", "depth", "sort_key", "created_at")
    autocomplete_fields = ("parent",)
    fields = ("topic", "parent", "name", "description", "number", "depth", "position", "created_at")
    ordering = ("topic", "sort_key")
    list_per_page = 200
    inlines = [ChildInline]

    def get_queryset(self, request):
        return only_reviewed_topics(request, super().get_queryset(request), "topic").annotate(
            n_total=Count("questions"),
            n_approved=Count("questions", filter=Q(questions__status__in=["approved", "relabeled"])),
            n_pending=Count("questions", filter=Q(questions__status="pending")),
        )

    @admin.display(description="Intent", ordering="sort_key")
    def indented_name(self, node):
        return format_html('<span style="padding-left:{}em">{} {}</span>', (node.depth - 1) * 1.5, node.number,
                           node.name)

    @admin.display(description="Questions", ordering="n_total")
    def question_total(self, node):
        return node.n_total

    @admin.display(description="Approved", ordering="n_approved")
    def approved(self, node):
        return node.n_approved

    @admin.display(description="Pending", ordering="n_pending")
    def pending(self, node):
        return node.n_pending

    def save_model(self, request, obj, form, change):
        if not change:
            from datasets.services import intent_create

            try:
                created = intent_create(topic=obj.topic, parent=obj.parent, name=obj.name, description=obj.description)
            except DatasetError as exc:
                messages.error(request, exc.message)
                return
            obj.pk = created.pk
            obj.number = created.number
            return
        if "parent" in form.changed_data:
            from datasets.services import intent_move

            new_parent = obj.parent
            obj.parent_id = form.initial.get("parent")
            super().save_model(request, obj, form, change)
            intent_move(node=obj, new_parent=new_parent)
            return
        super().save_model(request, obj, form, change)


class ReviewEventInline(admin.TabularInline):
    model = ReviewEvent
    fields = ("created_at", "actor", "action", "from_status", "to_status", "from_intent", "to_intent", "to_text", "via")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-created_at",)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class QuestionImportForm(ImportForm):
    topic = forms.ModelChoiceField(
        Topic.objects.all(), required=False,
        help_text="For rows that name no topic (Alpaca, or CSV without a 'topic' column).")


class QuestionConfirmImportForm(ConfirmImportForm):
    topic = forms.ModelChoiceField(Topic.objects.all(), required=False, widget=forms.HiddenInput)


@admin.register(Question)
class QuestionAdmin(ImportExportModelAdmin):
    resource_classes = [QuestionResource]
    import_formats = QUESTION_IMPORT_FORMATS
    export_formats = QUESTION_EXPORT_FORMATS
    import_form_class = QuestionImportForm
    confirm_form_class = QuestionConfirmImportForm
    list_display = ("short_text", "intent_label", "status", "source", "language", "confidence", "reviewed_by",
                    "updated_at")
    list_filter = ("status", "source", "language", "topic", "complexity", "audience", "edge_case", "reviewed_by")
    search_fields = ("text", "intent__name", "intent__number")
    list_select_related = ("intent", "reviewed_by")
    date_hierarchy = "created_at"
    autocomplete_fields = ("intent",)
    raw_id_fields = ("run", "predicted_intent", "original_intent", "leased_by", "reviewed_by")
    readonly_fields = ("text_hash", "version", "original_text", "original_intent", "reviewed_by", "reviewed_at",
                       "created_at", "updated_at", "status")
    fieldsets = (
        (None, {"fields": ("topic", "intent", "text", "language", "source", "status")}),
        ("Generation", {"classes": ("collapse",), "fields": (
            "run", "provider", "model", "temperature", "prompt_version", "style", "complexity", "audience",
            "edge_case")}),
        ("Captured query", {"classes": ("collapse",), "fields": ("predicted_intent", "confidence", "occurrences")}),
        ("Review", {"fields": ("reviewed_by", "reviewed_at", "original_intent", "original_text", "version",
                               "text_hash", "created_at", "updated_at")}),
    )
    inlines = [ReviewEventInline]
    actions = ["approve_selected", "reject_selected", "flag_selected", "reset_selected"]
    list_per_page = 100
    show_full_result_count = False

    def get_queryset(self, request):
        return only_reviewed_topics(request, super().get_queryset(request), "topic")

    def get_readonly_fields(self, request, obj=None):
        # A reviewer must not move a question into a topic they do not review.
        fields = super().get_readonly_fields(request, obj)
        return fields if is_dataset_admin(request.user) else (*fields, "topic")

    def get_import_resource_kwargs(self, request, **kwargs):
        form = kwargs.get("form")
        topic = form.cleaned_data.get("topic") if form is not None and hasattr(form, "cleaned_data") else None
        return {**super().get_import_resource_kwargs(request, **kwargs), "default_topic": topic}

    def get_confirm_form_initial(self, request, import_form):
        initial = super().get_confirm_form_initial(request, import_form)
        topic = import_form.cleaned_data.get("topic") if import_form else None
        return {**initial, "topic": topic.pk if topic else None}

    def get_export_data(self, file_format, request, queryset, **kwargs):
        """Every export format writes the filtered questions through the streaming writers of
        datasets.formats, the same as export jobs (the stock path builds a tablib Dataset)."""
        if not self.has_export_permission(request):
            raise PermissionDenied
        data = "".join(export_stream(questions=queryset, format=file_format.writer_class.name))
        encoding = kwargs.get("encoding")
        return data.encode(encoding) if encoding else data

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
            changed = questions_review_bulk(question_ids=list(queryset.values_list("pk", flat=True)),
                                            actor=request.user, action=action, via="admin")
        except DatasetError as exc:
            messages.error(request, exc.message)
            return
        messages.success(request, f"{action.capitalize()}: {changed} question(s).")

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
        if change and {"intent", "text"} & set(form.changed_data):
            # Route edits through the review service so they are audited and keep the originals.
            from labeling.services import question_review

            original = Question.objects.get(pk=obj.pk)
            try:
                if "text" in form.changed_data:
                    question_review(question_id=obj.pk, actor=request.user, action="edit", text=obj.text, via="admin")
                if "intent" in form.changed_data and obj.intent_id != original.intent_id:
                    question_review(question_id=obj.pk, actor=request.user, action="relabel",
                                    intent_id=obj.intent_id, via="admin")
            except DatasetError as exc:
                messages.error(request, exc.message)
            other = [f for f in form.changed_data if f not in ("intent", "text")]
            if other:
                fresh = Question.objects.get(pk=obj.pk)
                for name in other:
                    setattr(fresh, name, getattr(obj, name))
                fresh.save(update_fields=other)
            return
        super().save_model(request, obj, form, change)


@admin.register(ReviewEvent)
class ReviewEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor", "action", "question_link", "from_status", "to_status", "from_intent",
                    "to_intent", "via")
    list_filter = ("action", "via", "to_status", "actor")
    search_fields = ("question__text", "actor__username")
    date_hierarchy = "created_at"
    list_select_related = ("actor", "question", "from_intent", "to_intent")
    show_full_result_count = False

    def get_queryset(self, request):
        return only_reviewed_topics(request, super().get_queryset(request), "question__topic")

    @admin.display(description="Question")
    def question_link(self, event):
        url = reverse("admin:datasets_question_change", args=[event.question_id])
        return format_html('<a href="{}">{}</a>', url, event.question.text[:60])

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ExportForm(forms.ModelForm):
    class Meta:
        model = Export
        fields = ["topic", "format", "filters", "split", "seed", "system_prompt", "instruction"]

    def clean(self):
        """The export service's own checks, as form errors (they would refuse the export later)."""
        from datasets.exports import export_intent_validate, export_statuses_validate
        from datasets.splits import split_ratios_validate

        data = super().clean()
        filters = data.get("filters") or {}
        try:
            if not isinstance(filters, dict):
                raise DatasetError('Filters must be an object such as {"statuses": ["approved"], "intent": 12}.')
            export_statuses_validate(filters.get("statuses"))
            if data.get("topic"):
                export_intent_validate(data["topic"], filters.get("intent"))
            split_ratios_validate(data.get("split"))
        except DatasetError as exc:
            raise forms.ValidationError(exc.message) from exc
        return data


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin):
    form = ExportForm
    list_display = ("id", "topic", "format", "status", "split_summary", "total_rows", "created_by", "created_at",
                    "download")
    list_filter = ("format", "status", "topic")
    date_hierarchy = "created_at"
    list_select_related = ("topic", "created_by")
    readonly_fields = ("status", "download", "counts", "intent_counts", "warnings", "error", "job_id", "created_by",
                       "created_at", "started_at", "finished_at")

    @admin.display(description="Split")
    def split_summary(self, export):
        return ", ".join(f"{k} {v}" for k, v in export.split.items()) or "none"

    @admin.display(description="Rows")
    def total_rows(self, export):
        return sum(v for v in export.counts.values() if isinstance(v, int))

    @admin.display(description="File")
    def download(self, export):
        # Through the API's authorised view: export files are never served from a public URL.
        if export.status != Export.Status.SUCCEEDED or not export.file:
            return "-"
        return format_html('<a href="{}">download</a>', reverse("api-export-download", args=[export.pk]))

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        # A new export goes through the service, which queues the job (ExportForm validated it).
        created = export_create(
            topic=obj.topic, format=obj.format, statuses=obj.filters.get("statuses"),
            intent=obj.filters.get("intent"), split=obj.split, seed=obj.seed, system_prompt=obj.system_prompt,
            instruction=obj.instruction, created_by=request.user)
        obj.pk = created.pk
