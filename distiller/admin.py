from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django_rq.models import Dashboard

from config.queue_dashboard import GuardedQueueAdmin
from datasets.admin import ReadOnlyAdmin, VisibleTopicFilter
from datasets.admin_lists import LargeListAdminMixin
from datasets.permissions import is_dataset_admin
from datasets.services import DatasetError
from distiller.forms import RunStartForm
from distiller.models import DistillationRun, DistillationUnit, LLMCall, LLMProvider, key_variable_problem
from distiller.selectors import judge_summary, run_progress
from distiller.services import (
    provider_adaptations_forget,
    provider_adaptations_text,
    provider_resolve,
    run_cancel,
    run_estimate,
    run_parameters,
    run_resume,
    run_start,
    topic_name_clean,
)

admin.site.register(Dashboard, GuardedQueueAdmin)


@admin.register(LLMProvider)
class LLMProviderAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "effective_base_url", "effective_model", "api_key_env", "key_status",
                    "supports_json_schema", "max_concurrency", "requests_per_minute", "is_active")
    list_filter = ("kind", "is_active", "supports_json_schema")
    search_fields = ("name", "model", "base_url")
    readonly_fields = ("key_status", "refused_parameters", "created_at", "updated_at")
    actions = ["forget_refused_parameters"]

    # What a call really uses: a blank base URL or model reads LLM_BASE_URL / LLM_MODEL.
    @admin.display(description="Base URL")
    def effective_base_url(self, provider):
        if provider.base_url:
            return provider.base_url
        return f"{settings.LLM_BASE_URL} (LLM_BASE_URL)" if settings.LLM_BASE_URL else "none: set LLM_BASE_URL"

    @admin.display(description="Model")
    def effective_model(self, provider):
        if provider.model:
            return provider.model
        return f"{settings.LLM_MODEL} (LLM_MODEL)" if settings.LLM_MODEL else "the server's first (LLM_MODEL unset)"

    @admin.display(description="Key")
    def key_status(self, provider):
        # Only whether the variable is set; the key itself is never shown.
        if not provider.api_key_env:
            return "no key needed"
        if key_variable_problem(provider.api_key_env):
            # Not even whether it is set: that would reveal the environment of the server.
            return f"{provider.api_key_env} is not a provider-key variable"
        if provider.has_key:
            return f"{provider.api_key_env} is set"
        if provider.kind == LLMProvider.Kind.CUSTOM:  # runs start without one (distiller.services.runs)
            return f"none ({provider.api_key_env} unset): fine for a local server that asks for none"
        return f"{provider.api_key_env} is NOT set"


    # Learned by the calls (distiller.llm), so an operator sees e.g. "this server refuses temperature".
    @admin.display(description="Refused parameters")
    def refused_parameters(self, provider):
        return provider_adaptations_text(provider) or "none seen"

    @admin.action(description="Forget refused parameters (send the full request again)")
    def forget_refused_parameters(self, request, queryset):
        for provider in queryset:
            provider_adaptations_forget(provider=provider)
        self.message_user(request, f"Forgot the refused parameters of {len(queryset)} provider(s).", messages.SUCCESS)


class UnitInline(admin.TabularInline):
    model = DistillationUnit
    fields = ("key", "node", "status", "target", "produced", "attempts", "error")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def get_queryset(self, request):
        # A run can have thousands of units: show the ones at work and the ones with a problem.
        interesting = Q(status__in=["running", "failed"]) | ~Q(error="")
        return super().get_queryset(request).select_related("node").filter(interesting)


def progress_bar_html(run):
    return format_html(
        '<div style="width:160px;background:#eee;border-radius:3px"><div style="width:{}%;background:#417690;'
        'color:#fff;font-size:11px;padding:1px 4px;border-radius:3px;white-space:nowrap">{}%</div></div>',
        run.progress_percent, run.progress_percent,
    )


@admin.register(DistillationRun)
class DistillationRunAdmin(admin.ModelAdmin):
    list_display = ("id", "topic", "kind", "provider", "status", "progress_bar", "questions_created", "calls",
                    "tokens_in", "tokens_out", "cost", "created_at")
    list_filter = ("status", "kind", "provider", ("topic", VisibleTopicFilter))
    date_hierarchy = "created_at"
    list_select_related = ("topic", "provider")
    search_fields = ("topic__name", "error")
    readonly_fields = [f.name for f in DistillationRun._meta.fields if f.name not in ("id",)] + [
        "progress_bar", "live_progress", "llm_calls"]
    # The run page leads with where the run is; the parameters and raw figures come after.
    progress_fields = ["status", "progress_bar", "live_progress", "stage", "error"]
    inlines = [UnitInline]
    actions = ["cancel_runs", "resume_runs"]
    change_list_template = "admin/distiller/distillationrun/change_list.html"
    change_form_template = "admin/distiller/distillationrun/change_form.html"

    @admin.display(description="Progress")
    def progress_bar(self, run):
        return progress_bar_html(run)

    @admin.display(description="Live progress")
    def live_progress(self, run):
        p = run_progress(run=run)
        eta = f", about {p['eta_seconds']:.0f}s left" if p["eta_seconds"] is not None else ""
        stalled = f" — STALLED: {p['hint']}" if p["stalled"] else ""
        waiting = (f" — waiting for a free slot of {run.provider.name} (its concurrency or per-minute limit is used "
                   "by other runs or workers)") if p["waiting_for_slots"] else ""
        judge = f" — judge: {judge_summary(run)}" if run.judge_provider_id else ""
        return (f"{p['stage']}: {p['units_done']}/{p['units_total']} units, {p['questions_created']}/"
                f"{p['questions_target']} questions, {p['calls']} calls, {p['tokens_in'] + p['tokens_out']:,} tokens, "
                f"${p['cost']}{eta}{stalled}{waiting}{judge}")

    @admin.display(description="LLM calls")
    def llm_calls(self, run):
        url = reverse("admin:distiller_llmcall_changelist") + f"?run__id__exact={run.pk}"
        return format_html('<a href="{}">{} calls, one row each</a>', url, run.calls)

    def has_add_permission(self, request):
        return False

    def get_fieldsets(self, request, obj=None):
        rest = [name for name in self.readonly_fields if name not in self.progress_fields]
        return [("Progress", {"fields": self.progress_fields}), ("Run", {"fields": rest})]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Every field is read-only: no Save buttons; Cancel and Resume only where they apply.
        run = DistillationRun.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        extra_context = {**(extra_context or {}), "show_save": False, "show_save_and_continue": False,
                         "show_save_and_add_another": False,
                         "can_cancel": bool(run and run.is_active),
                         "can_resume": bool(run and run.status in (DistillationRun.Status.FAILED,
                                                                   DistillationRun.Status.CANCELLED))}
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [
            path("start/", self.admin_site.admin_view(self.start_view), name="distiller_distillationrun_start"),
            path("<int:run_id>/cancel/", self.admin_site.admin_view(self.cancel_view),
                 name="distiller_distillationrun_cancel"),
            path("<int:run_id>/resume/", self.admin_site.admin_view(self.resume_view),
                 name="distiller_distillationrun_resume"),
            *super().get_urls(),
        ]

    def start_view(self, request):
        """Pick the parameters, see the estimate, then start."""
        if not is_dataset_admin(request.user):
            messages.error(request, "Only dataset admins may start runs.")
            return redirect("admin:distiller_distillationrun_changelist")
        initial = {}
        topic_id = request.GET.get("topic", "")
        # Only an ASCII id preselects a topic (isdigit() takes "²", which the lookup refuses with a 500).
        if topic_id.isascii() and topic_id.isdigit():
            from datasets.models import Topic

            topic = Topic.objects.filter(pk=topic_id).first()
            if topic:
                initial = {"topic": topic, "levels": topic.levels, "tags_per_level": topic.tags_per_level,
                           "questions_per_intent": topic.questions_per_intent, "language": topic.language,
                           "leaf_only": topic.leaf_only,
                           # Prefilled from the topic's domain preset, as a run started elsewhere defaults.
                           "languages": list(topic.preset.languages) if topic.preset_id else [topic.language]}
        try:  # the default provider (LLM_DEFAULT_PROVIDER, else the Custom one), as the API and CLI take it
            initial.setdefault("provider", provider_resolve())
        except DatasetError:
            pass
        form = RunStartForm(request.POST or None, initial=initial)
        estimate = None
        if request.method == "POST" and form.is_valid():
            args = form.run_arguments()
            try:
                # A new topic is saved in the same transaction as its run: a refused run, or only an
                # estimate (rolled back), leaves no topic behind.
                with transaction.atomic():
                    if form.cleaned_data["new_topic"]:
                        args["topic"] = self._new_topic(form.cleaned_data, request.user)
                        args["topic"].save()
                    if "start" in request.POST:
                        run = run_start(user=request.user, **args)
                    else:
                        topic, kind, provider = args.pop("topic"), args.pop("kind"), args.pop("provider")
                        estimate = run_estimate(topic=topic, provider=provider, kind=kind,
                                                parameters=run_parameters(topic=topic, kind=kind, **args))
                        transaction.set_rollback(True)
                if "start" in request.POST:
                    messages.success(request, f"Run #{run.pk} queued.")
                    return redirect("admin:distiller_distillationrun_change", run.pk)
            except DatasetError as exc:
                form.add_error(None, exc.message)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "form": form,
                   "estimate": estimate, "title": "Start a distillation run"}
        return TemplateResponse(request, "admin/distiller/distillationrun/start.html", context)

    @staticmethod
    def _new_topic(data: dict, user):
        """The topic named on the form, owned by its creator, with the form's generation settings
        as its defaults (unsaved)."""
        from datasets.models import Topic
        from datasets.services import topic_preset_apply

        topic = Topic(name=topic_name_clean(data["new_topic"]), owner=user, levels=data["levels"],
                      tags_per_level=data["tags_per_level"], questions_per_intent=data["questions_per_intent"],
                      language=data["language"], leaf_only=data["leaf_only"])
        if data.get("preset") is not None:
            topic_preset_apply(topic=topic, preset=data["preset"])
            topic.language = data["language"]  # the form's own choice wins
        return topic

    def _act(self, request, run_id, service, verb):
        run = get_object_or_404(DistillationRun, pk=run_id)
        if request.method != "POST" or not is_dataset_admin(request.user):
            messages.error(request, f"Only dataset admins may {verb} runs (with POST).")
        else:
            try:
                service(run=run)
                messages.success(request, f"Run #{run.pk}: {verb} done.")
            except DatasetError as exc:
                messages.error(request, exc.message)
        return redirect(reverse("admin:distiller_distillationrun_change", args=[run.pk]))

    def cancel_view(self, request, run_id):
        return self._act(request, run_id, run_cancel, "cancel")

    def resume_view(self, request, run_id):
        return self._act(request, run_id, run_resume, "resume")

    def _bulk(self, request, queryset, service, verb):
        if not is_dataset_admin(request.user):
            self.message_user(request, f"Only dataset admins may {verb} runs.", messages.ERROR)
            return
        for run in queryset:
            try:
                service(run=run)
                self.message_user(request, f"Run #{run.pk}: {verb} done.")
            except DatasetError as exc:
                self.message_user(request, exc.message, messages.WARNING)

    @admin.action(description="Cancel selected runs")
    def cancel_runs(self, request, queryset):
        self._bulk(request, queryset, run_cancel, "cancel")

    @admin.action(description="Resume selected runs")
    def resume_runs(self, request, queryset):
        self._bulk(request, queryset, run_resume, "resume")


@admin.register(LLMCall)
class LLMCallAdmin(LargeListAdminMixin, ReadOnlyAdmin):
    """Every call of every run, read-only: what each cost and why it failed."""

    list_display = ("id", "run", "kind", "outcome", "error_code", "model", "tokens_in", "tokens_out", "cost",
                    "latency_ms", "created_at")
    list_filter = ("outcome", "kind", "provider", "error_code")
    list_select_related = ("run__topic",)
    search_fields = ("=run__id", "error_code", "model")
    date_hierarchy = "created_at"
    # Millions of rows: counts bounded or estimated, pages capped (LargeListAdminMixin).
