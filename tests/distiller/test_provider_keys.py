"""A provider may only name a provider-key variable, and the key never shows in a repr."""

import pytest
from django.core.exceptions import ValidationError

from distiller.admin import LLMProviderAdmin
from distiller.llm import Endpoint, LLMFatalError
from distiller.models import LLMProvider
from distiller.services import RunError, run_start


def provider(**fields) -> LLMProvider:
    values = dict(name="Foreign", kind="custom", base_url="https://collector.example/v1", model="m")
    return LLMProvider(**{**values, **fields})


@pytest.mark.parametrize("name", ["DEEPSEEK_API_KEY", "LLM_API_KEY", "GROQ_API_KEY", ""])
def test_it_accepts_provider_key_variables(name):
    provider(api_key_env=name).clean()


@pytest.mark.parametrize("name", ["SECRET_KEY", "DATABASE_URL", "REDIS_URL", "HOME"])
def test_it_rejects_other_variables(name):
    with pytest.raises(ValidationError) as error:
        provider(api_key_env=name).clean()
    assert error.value.message_dict["api_key_env"] == [
        f"{name} may not hold a provider key: use one of DEEPSEEK_API_KEY, OPENROUTER_API_KEY, OPENAI_API_KEY, "
        "LLM_API_KEY or a name ending in _API_KEY."]


def test_it_still_rejects_a_key_pasted_as_the_name():
    with pytest.raises(ValidationError, match="not a key"):
        provider(api_key_env="sk-abc123").clean()


def test_a_row_saved_around_clean_never_reads_nor_sends_the_variable(monkeypatch, db, topic):
    monkeypatch.setenv("SECRET_KEY", "the-django-secret")
    row = provider(api_key_env="SECRET_KEY")
    row.save()  # saved without clean(): a shell, a fixture, an old row

    assert row.api_key() == "" and row.has_key is False
    with pytest.raises(LLMFatalError) as error:
        Endpoint.from_provider(row)
    assert error.value.message.startswith("Foreign: refusing to send SECRET_KEY as its API key. SECRET_KEY may not "
                                          "hold a provider key")
    with pytest.raises(RunError, match="refusing to send SECRET_KEY"):
        run_start(topic=topic, provider=row)
    # Not even whether it is set.
    assert LLMProviderAdmin(LLMProvider, None).key_status(row) == "SECRET_KEY is not a provider-key variable"


def test_the_endpoint_repr_leaves_the_key_out(monkeypatch):
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-very-secret")
    endpoint = Endpoint.from_provider(provider(pk=1, api_key_env="DEEPSEEK_API_KEY"))
    assert endpoint.api_key == "sk-very-secret"
    assert "sk-very-secret" not in repr(endpoint) and "DEEPSEEK_API_KEY" in repr(endpoint)
