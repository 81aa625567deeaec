"""Create the providers the seed tool knew, plus one for any OpenAI-compatible server."""

from decimal import Decimal

from django.db import migrations

DEFAULT_PROVIDERS = [
    # name, kind, base_url, model, key variable, json_schema, concurrency, rpm, $/M in, $/M out
    ("DeepSeek", "deepseek", "https://api.deepseek.com/v1", "deepseek-chat", "DEEPSEEK_API_KEY",
     False, 16, 0, Decimal("0.27"), Decimal("1.10")),
    ("OpenRouter", "openrouter", "https://openrouter.ai/api/v1", "deepseek/deepseek-chat", "OPENROUTER_API_KEY",
     True, 8, 200, Decimal("0.30"), Decimal("1.20")),
    ("OpenAI", "openai", "https://api.openai.com/v1", "gpt-4o-mini", "OPENAI_API_KEY",
     True, 16, 500, Decimal("0.15"), Decimal("0.60")),
    # Blank base URL and model: read LLM_BASE_URL and LLM_MODEL (vLLM, Ollama, llama.cpp, the test teacher).
    ("Custom", "custom", "", "", "LLM_API_KEY", True, 16, 0, Decimal("0"), Decimal("0")),
]


def create_providers(apps, schema_editor):
    LLMProvider = apps.get_model("distiller", "LLMProvider")
    for name, kind, url, model, key_env, schema, conc, rpm, p_in, p_out in DEFAULT_PROVIDERS:
        LLMProvider.objects.get_or_create(
            name=name,
            defaults=dict(
                kind=kind, base_url=url, model=model, api_key_env=key_env, supports_json_schema=schema,
                max_concurrency=conc, requests_per_minute=rpm, price_input_per_mtok=p_in, price_output_per_mtok=p_out,
            ),
        )


def remove_providers(apps, schema_editor):
    LLMProvider = apps.get_model("distiller", "LLMProvider")
    LLMProvider.objects.filter(name__in=[p[0] for p in DEFAULT_PROVIDERS], runs__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("distiller", "0001_initial")]
    operations = [migrations.RunPython(create_providers, remove_providers)]
