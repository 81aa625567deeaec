from django.contrib import admin
from django.utils.html import format_html

from distiller.models import DistillationRun, LLMProvider


@admin.register(LLMProvider)
class LLMProviderAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "base_url", "model", "api_key_env", "key_status", "supports_json_schema",
                    "max_concurrency", "requests_per_minute", "is_active")
    list_filter = ("kind", "is_active", "supports_json_schema")
    search_fields = ("name", "model", "base_url")
    readonly_fields = ("key_status", "created_at", "updated_at")

    @admin.display(description="Key")
    def key_status(self, provider):
        # Only whether the variable is set; the key itself is never shown.
        if not provider.api_key_env:
            return "no key needed"
        return f"{provider.api_key_env} is set" if provider.has_key else f"{provider.api_key_env} is NOT set"


@admin.register(DistillationRun)
class DistillationRunAdmin(admin.ModelAdmin):
    list_display = ("id", "topic", "kind", "provider", "status", "progress_bar", "questions_created", "calls",
                    "tokens_in", "tokens_out", "cost", "created_at")
    list_filter = ("status", "kind", "provider", "topic")
    date_hierarchy = "created_at"
    list_select_related = ("topic", "provider")
    search_fields = ("topic__name", "error")
    readonly_fields = [f.name for f in DistillationRun._meta.fields if f.name not in ("id",)] + ["progress_bar"]

    @admin.display(description="Progress")
    def progress_bar(self, run):
        return format_html(
            '<div style="width:140px;background:#eee;border-radius:3px"><div style="width:{}%;background:#417690;'
            'color:#fff;font-size:11px;padding:1px 4px;border-radius:3px;white-space:nowrap">{}%</div></div>',
            run.progress_percent, run.progress_percent,
        )

    def has_add_permission(self, request):
        return False
