"""The admin's export pages: a form of presets and filter fields (no raw JSON), a page that follows
a queued or running export by itself, downloads through the API's authorised views."""

from django import forms
from django.contrib import admin

from datasets.admin import VisibleTopicFilter
from datasets.exports import (
    export_create,
    export_delete,
    export_intent_validate,
    export_matches_validate,
    export_statuses_validate,
)
from datasets.models import Export, IntentNode, Question
from datasets.selectors import DEFAULT_EXPORT_STATUSES
from datasets.services import DatasetError
from datasets.splits import export_split_validate

SPLIT_PRESETS = {
    "none": ("None: one file of every question", {}),
    "80/10/10": ("80/10/10: train, validation, test", {"train": 0.8, "validation": 0.1, "test": 0.1}),
    "80/20": ("80/20: train, test", {"train": 0.8, "test": 0.2}),
    "assigned": ("Assigned: each question's own split (imported); the others 80/10/10", "assigned"),
}


class IntentChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, intent):
        return f"{intent.topic.name}: {intent.intent_full_name}"


class ExportForm(forms.ModelForm):
    split_preset = forms.ChoiceField(label="Split", choices=[(k, label) for k, (label, _) in SPLIT_PRESETS.items()],
                                     initial="none", widget=forms.RadioSelect,
                                     help_text="Stratified per intent; near duplicates stay in one part.")
    statuses = forms.MultipleChoiceField(choices=Question.Status.choices, initial=list(DEFAULT_EXPORT_STATUSES),
                                         widget=forms.CheckboxSelectMultiple)
    intent = IntentChoiceField(queryset=IntentNode.objects.select_related("topic").order_by("topic__name", "sort_key"),
                               required=False, help_text="Only this intent and those under it; blank: every intent.")
    include_out_of_scope = forms.BooleanField(required=False,
                                              help_text="Also the questions of out-of-scope intents (CLINC150's oos).")
    judge_passed = forms.BooleanField(required=False, help_text="Only the questions the LLM judge passed.")
    agreed_only = forms.BooleanField(required=False,
                                     help_text="Only the questions k reviewers decided alike (overlap review).")

    class Meta:
        model = Export
        fields = ["topic", "format", "seed", "system_prompt", "instruction"]

    def clean(self):
        """The export service's own checks, as form errors: it would refuse the export later, and
        an export that matches no question is refused here, before any job starts."""
        data = super().clean()
        topic = data.get("topic")
        try:
            statuses = export_statuses_validate(data.get("statuses"))
            data["split"] = export_split_validate(SPLIT_PRESETS[data.get("split_preset") or "none"][1])
            if topic is not None and data.get("format"):
                intent = export_intent_validate(topic, data.get("intent"))
                filters = {"statuses": statuses, **({"intent": intent.pk} if intent else {}),
                           **{name: True for name in ("include_out_of_scope", "judge_passed", "agreed_only")
                              if data.get(name)}}
                export_matches_validate(topic=topic, format=data["format"], filters=filters, intent=intent)
        except DatasetError as exc:
            raise forms.ValidationError(exc.message) from exc
        data["statuses"] = statuses
        return data


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin):
    form = ExportForm
    list_display = ("id", "topic", "format", "status", "split_summary", "total_rows", "created_by", "created_at",
                    "download")
    list_filter = ("format", "status", ("topic", VisibleTopicFilter))
    date_hierarchy = "created_at"
    list_select_related = ("topic", "created_by")
    readonly_fields = ("status", "download", "counts", "intent_counts", "warnings", "error", "job_id", "created_by",
                       "created_at", "started_at", "finished_at")
    change_form_template = "admin/datasets/export/change_form.html"
    add_fields = ["topic", "format", "split_preset", "statuses", "intent", "include_out_of_scope", "judge_passed",
                  "agreed_only", "seed", "system_prompt", "instruction"]
    # A saved export, read-only: the status first (followed live while the job works), then what it holds.
    view_fields = ["status", "download", "topic", "format", "filters_summary", "split_summary", "counts", "warnings",
                   "error", "intent_counts", "seed", "system_prompt", "instruction", "job_id", "created_by",
                   "created_at", "started_at", "finished_at"]

    def get_fields(self, request, obj=None):
        return self.add_fields if obj is None else self.view_fields

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is None else self.view_fields

    def has_change_permission(self, request, obj=None):
        # A saved export describes files already written (or being written): changing its format,
        # filters or split would make the row lie about them. Start a new export instead.
        return False

    @admin.display(description="Split")
    def split_summary(self, export):
        from datasets.splits import split_describe

        return split_describe(export.split)

    @admin.display(description="Filters")
    def filters_summary(self, export):
        filters = export.filters or {}
        parts = ["statuses " + ", ".join(filters.get("statuses") or DEFAULT_EXPORT_STATUSES)]
        if filters.get("intent"):
            node = IntentNode.objects.filter(pk=filters["intent"]).first()
            parts.append(f"under {node.intent_full_name if node else filters['intent']}")
        parts.append("out-of-scope included" if filters.get("include_out_of_scope") else "out-of-scope left out")
        if filters.get("judge_passed"):
            parts.append("judge passed only")
        if filters.get("agreed_only"):
            parts.append("agreed only")
        return "; ".join(parts)

    @admin.display(description="Rows")
    def total_rows(self, export):
        return sum(v for v in export.counts.values() if isinstance(v, int))

    @admin.display(description="File")
    def download(self, export):
        # Through the API's authorised view: export files are never served from a public URL.
        from django.urls import reverse
        from django.utils.html import format_html

        if export.status != Export.Status.SUCCEEDED or not export.file:
            return "-"
        return format_html('<a href="{}">download</a>', reverse("api-export-download", args=[export.pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        export = Export.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        live = export is not None and export.status in (Export.Status.QUEUED, Export.Status.RUNNING)
        extra_context = {**(extra_context or {}), "export_live": live,
                         "export_status_url": f"/api/v1/exports/{object_id}/" if live else ""}
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_model(self, request, obj):
        export_delete(export=obj)

    def delete_queryset(self, request, queryset):
        for export in queryset:
            export_delete(export=export)

    def save_model(self, request, obj, form, change):
        # Only new exports are saved here (see has_change_permission); each goes through the
        # service, which queues the job (ExportForm validated it).
        data = form.cleaned_data
        created = export_create(
            topic=data["topic"], format=data["format"], statuses=data["statuses"], intent=data.get("intent"),
            split=data["split"], seed=data["seed"], system_prompt=data.get("system_prompt", ""),
            instruction=data.get("instruction", ""), include_out_of_scope=bool(data.get("include_out_of_scope")),
            judge_passed=bool(data.get("judge_passed")), agreed_only=bool(data.get("agreed_only")),
            created_by=request.user)
        obj.pk = created.pk
