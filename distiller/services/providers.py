"""Writes on providers: what a server refused, as learned by the LLM client (distiller.llm)."""

from django.db import transaction

from distiller.llm import adaptation_describe
from distiller.models import LLMProvider


def provider_adaptations_record(*, provider_id: int, adaptations: dict[str, str]) -> bool:
    """Add `adaptations` ({parameter: adaptation}) to the provider's request_adaptations.

    Other workers' clients start from the row, so they send the adapted request the first time.
    Returns whether the row changed. Takes the row's lock: two workers learning at once both land.
    """
    with transaction.atomic():
        provider = LLMProvider.objects.select_for_update().filter(pk=provider_id).first()
        if provider is None:
            return False
        merged = {**(provider.request_adaptations or {}), **adaptations}
        if merged == provider.request_adaptations:
            return False
        LLMProvider.objects.filter(pk=provider_id).update(request_adaptations=merged)
        return True


def provider_adaptations_forget(*, provider: LLMProvider) -> None:
    """Forget what the server refused (after a server upgrade or a model change): calls send the
    full request again, and adapt again if it is still refused. Workers already running keep what
    they learned until they restart."""
    LLMProvider.objects.filter(pk=provider.pk).update(request_adaptations={})
    provider.request_adaptations = {}


def provider_adaptations_text(provider: LLMProvider) -> str:
    """'max_tokens sent as max_completion_tokens; temperature not sent', or '' when nothing is adapted."""
    return "; ".join(adaptation_describe(name, adaptation)
                     for name, adaptation in sorted((provider.request_adaptations or {}).items()))
