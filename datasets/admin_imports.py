"""The Question admin's import: django-import-export's pages (upload, preview, confirm) over the
project's import service, so the admin and the API follow one rule and say the same things.

The preview is `questions_import(dry_run=True)`: the same report as the API's dry run and the
CLI (would-be created, duplicates, label conflicts by line, intents to create, every problem by
line); the confirmation runs the same import for real: new rows are imported, duplicates
counted, conflicts resolved by `on_conflict`. Nothing goes through a tablib Dataset or a model
resource.
"""

import csv
import io
import json

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST
from import_export.forms import ConfirmImportForm, ImportForm

from datasets.formats.readers import JsonlReader
from datasets.imports import ON_CONFLICT_CHOICES, import_report_lines, questions_import
from datasets.models import Question, Topic
from datasets.permissions import is_dataset_admin
from datasets.services import DatasetError
from datasets.splits import ASSIGNED_SPLITS

SPLIT_CHOICES = [("", "the rows' own (a 'split' column), or none"), *((s, s) for s in ASSIGNED_SPLITS)]


def managed_topics(user):
    """The topics a user may import into: every topic for dataset admins, none for anyone else."""
    return Topic.objects.all() if is_dataset_admin(user) else Topic.objects.none()


class ImportOptionsForm(forms.Form):
    """The import service's options, on the upload form and (hidden) on the confirmation."""

    create_intents = forms.BooleanField(required=False, help_text="Create intents missing from the taxonomy from "
                                                                  "the rows' paths, or plain names as root intents.")
    split = forms.ChoiceField(choices=SPLIT_CHOICES, required=False,
                              help_text="One split for every row; it overrides the rows' own.")
    text_column = forms.CharField(required=False, max_length=200,
                                  help_text="The file's column holding the question, if not 'text' or 'question'.")
    intent_column = forms.CharField(required=False, max_length=200,
                                    help_text="The file's column naming the intent, e.g. 'category'.")
    status = forms.ChoiceField(choices=Question.Status.choices, initial=Question.Status.PENDING, required=False,
                               help_text="For rows without a status of their own.")
    on_conflict = forms.ChoiceField(choices=list(ON_CONFLICT_CHOICES.items()), initial="keep_first", required=False,
                                    help_text="The same text under two intents (in the file or with the topic).")

    def import_options(self) -> dict:
        data = self.cleaned_data
        return {"create_intents": data.get("create_intents", False), "split": data.get("split") or "",
                "text_column": data.get("text_column") or "", "intent_column": data.get("intent_column") or "",
                "status": data.get("status") or Question.Status.PENDING,
                "on_conflict": data.get("on_conflict") or "keep_first"}


class QuestionImportForm(ImportOptionsForm, ImportForm):
    # The choices are set per request to the topics the user may manage (create_import_form).
    topic = forms.ModelChoiceField(
        Topic.objects.none(), required=False,
        help_text="Empty: the topic the file names (a 'topic' column, or the first element of intent_hierarchy "
                  "or intent_path).")


class QuestionConfirmImportForm(ImportOptionsForm, ConfirmImportForm):
    topic = forms.ModelChoiceField(Topic.objects.none(), widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ImportOptionsForm.base_fields:
            self.fields[name].widget = forms.HiddenInput()


def import_topic_named(raw: bytes, format: str, topics) -> Topic:
    """The one topic, among `topics`, that the rows of an upload name: a `topic` column, or the
    first element of intent_hierarchy or intent_path. Raises DatasetError when there is none or
    more than one."""
    named: dict[str, Topic] = {}
    known = {topic.name.casefold(): topic for topic in topics}
    for row in _rows_as_dicts(raw, format):
        hierarchy = row.get("intent_hierarchy")
        if isinstance(hierarchy, str) and hierarchy.startswith("["):  # a CSV cell holding the JSON list
            try:
                hierarchy = json.loads(hierarchy)
            except ValueError:
                hierarchy = None
        candidates = [row.get("topic"), hierarchy[0] if isinstance(hierarchy, list) and hierarchy else None,
                      str(row.get("intent_path") or "").split("->")[0]]
        for candidate in candidates:
            topic = known.get(str(candidate or "").strip().casefold())
            if topic is not None:
                named[topic.name] = topic
                break
    if len(named) > 1:
        raise DatasetError(f"The file names several topics ({', '.join(sorted(named))}): import one topic at a time, "
                           "or choose the topic on the import form.")
    if not named:
        raise DatasetError("The file names no topic you may import into: choose the topic on the import form.")
    return next(iter(named.values()))


def _rows_as_dicts(raw: bytes, format: str):
    if format == "csv":
        try:
            text = raw.decode("utf-8-sig", errors="replace")
            yield from ({(k or "").strip().lower(): v for k, v in row.items()} for row in csv.DictReader(io.StringIO(text)))
        except csv.Error:
            return
    elif format == "jsonl":
        yield from (item[1] for item in JsonlReader.read_objects(io.BytesIO(raw))
                    if isinstance(item, tuple) and isinstance(item[1], dict))


class QuestionImportAdminMixin:
    """Import for dataset admins only, through datasets.imports.questions_import (see the module docstring)."""

    import_form_class = QuestionImportForm
    confirm_form_class = QuestionConfirmImportForm
    import_template_name = "admin/datasets/question/import.html"

    # Import is dataset admins' work, whatever IMPORT_EXPORT_IMPORT_PERMISSION_CODE says: the
    # library's default lets any staff user (reviewers can be staff) import into any topic.
    def has_import_permission(self, request):
        return is_dataset_admin(request.user)

    def create_import_form(self, request):
        form = super().create_import_form(request)
        form.fields["topic"].queryset = managed_topics(request.user)
        return form

    def create_confirm_form(self, request, import_form=None):
        form = super().create_confirm_form(request, import_form)
        form.fields["topic"].queryset = managed_topics(request.user)
        return form

    def get_confirm_form_initial(self, request, import_form):
        initial = super().get_confirm_form_initial(request, import_form)
        if import_form is None:
            return initial
        return {**initial, **import_form.import_options(), "topic": import_form.resolved_topic.pk}

    def _format_name(self, index) -> str:
        return self.get_import_formats()[int(index)]().get_title()

    def _render(self, request, context):
        context = {**self.admin_site.each_context(request), "title": "Import", "opts": self.model._meta, **context}
        request.current_app = self.admin_site.name
        return TemplateResponse(request, [self.import_template_name], context)

    def import_action(self, request, **kwargs):
        """Upload and preview: a dry run of the import, its report shown, and the confirmation form
        when there is no problem."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = self.create_import_form(request)
        context = {"form": form, "media": self.media + form.media}
        if request.POST and form.is_valid():
            import_file = form.cleaned_data["import_file"]
            input_format = self.get_import_formats()[int(form.cleaned_data["format"])]()
            tmp_storage = self.write_to_tmp_storage(import_file, input_format)
            import_file.tmp_storage_name = tmp_storage.name
            raw = tmp_storage.read()
            format_name = input_format.get_title()
            try:
                topic = form.cleaned_data.get("topic") or import_topic_named(raw, format_name,
                                                                             managed_topics(request.user))
                report = questions_import(topic=topic, stream=io.BytesIO(raw), format=format_name, dry_run=True,
                                          actor=request.user, **form.import_options())
            except DatasetError as exc:
                form.add_error("import_file", exc.message)
                tmp_storage.remove()
            else:
                context["import_topic"] = topic
                context["import_report"] = import_report_lines(report)
                for problem in report.errors:
                    form.add_error("import_file", f"line {problem['line']}: {problem['message']}"
                                   if problem["line"] else problem["message"])
                if report.error_count:
                    tmp_storage.remove()
                else:
                    form.resolved_topic = topic
                    context["confirm_form"] = self.create_confirm_form(request, import_form=form)
        return self._render(request, context)

    @method_decorator(require_POST)
    def process_import(self, request, **kwargs):
        """The confirmed import: the same service, for real, on the file the preview read."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = self.create_confirm_form(request)
        if not form.is_valid():
            return self._render(request, {"confirm_form": form, "errors": form.errors})
        data = form.cleaned_data
        input_format = self.get_import_formats()[int(data["format"])]()
        tmp_storage = self.get_tmp_storage_class()(name=data["import_file_name"], encoding=None,
                                                   read_mode=input_format.get_read_mode(),
                                                   **self.get_tmp_storage_class_kwargs())
        try:
            raw = tmp_storage.read()
        except OSError:
            messages.error(request, "The uploaded file is gone (imported already, or the server restarted): upload "
                                    "it again.")
            return HttpResponseRedirect(reverse("admin:datasets_question_import"))
        try:
            report = questions_import(topic=data["topic"], stream=io.BytesIO(raw), format=input_format.get_title(),
                                      actor=request.user, **form.import_options())
        except DatasetError as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(reverse("admin:datasets_question_import"))
        finally:
            tmp_storage.remove()
        lines = import_report_lines(report)
        messages.success(request, f"Imported into {data['topic'].name}: " + " ".join(
            line for line in lines if not line.startswith("line ")))
        return HttpResponseRedirect(reverse("admin:datasets_question_changelist"))
