"""The newcomer's admin pages (issue 15, item 7): the run page leads with progress and offers only
the actions that apply, *Start a run* makes a topic in place with the default provider chosen, the
providers list says what a provider really uses, a topic's creator owns it, the topic list counts
leaf intents as the README does."""

import re

import pytest

from datasets.models import IntentNode, Topic
from distiller.models import DistillationRun, LLMProvider

START_URL = "/admin/distiller/distillationrun/start/"


@pytest.fixture
def local_provider(db):
    """The Custom provider the migrations make, as the demo uses it: base URL, model and key from the
    environment (LLM_BASE_URL, LLM_MODEL, LLM_API_KEY)."""
    return LLMProvider.objects.get(name="Custom", base_url="", model="", api_key_env="LLM_API_KEY")


def run_page(client, run) -> str:
    return client.get(f"/admin/distiller/distillationrun/{run.pk}/change/").content.decode()


@pytest.mark.parametrize("status, actions", [
    ("queued", ["Cancel run"]), ("running", ["Cancel run"]), ("failed", ["Resume run"]),
    ("cancelled", ["Resume run"]), ("succeeded", []),
])
def test_the_run_page_leads_with_progress_and_offers_only_the_actions_that_apply(client, superuser, topic,
                                                                                 local_provider, status, actions):
    run = DistillationRun.objects.create(topic=topic, provider=local_provider, status=status, units_total=4,
                                         units_done=1, parameters={"levels": 2, "mix": {"style": {"plain": 1}}})
    client.force_login(superuser)
    page = run_page(client, run)
    assert [action for action in ("Cancel run", "Resume run") if action in page] == actions
    assert 'name="_save"' not in page and 'name="_continue"' not in page and 'name="_addanother"' not in page
    headings = re.findall(r"<h2[^>]*>([^<]+)</h2>", page)
    assert headings[1:3] == ["Progress", "Run"]  # after the title
    assert page.index("Live progress") < page.index("Parameters")
    assert "1/4 units" in page


def test_start_a_run_preselects_the_default_provider(client, superuser, local_provider, settings):
    openai = LLMProvider.objects.get(name="OpenAI")
    settings.LLM_DEFAULT_PROVIDER = "OpenAI"
    client.force_login(superuser)
    page = client.get(START_URL).content.decode()
    assert f'<option value="{openai.pk}" selected>OpenAI</option>' in page
    settings.LLM_DEFAULT_PROVIDER = ""  # unset: the Custom provider, as the API and CLI take it
    page = client.get(START_URL).content.decode()
    assert f'<option value="{local_provider.pk}" selected>Custom</option>' in page


def test_start_a_run_creates_the_topic_in_place_owned_by_its_creator(client, superuser, local_provider, settings):
    settings.LLM_BASE_URL, settings.LLM_MODEL = "http://127.0.0.1:9/v1", "teacher-1"
    client.force_login(superuser)
    form = {"topic": "", "new_topic": "  Pet Shop ", "kind": "auto", "provider": local_provider.pk, "levels": 2,
            "tags_per_level": 3, "questions_per_intent": 5, "questions_per_call": 10, "language": "en",
            "leaf_only": "on", "mix": ""}
    estimate = client.post(START_URL, {**form, "estimate": "Estimate"})
    assert estimate.status_code == 200 and 'id="estimate"' in estimate.content.decode()
    assert not Topic.objects.exists()  # an estimate makes nothing

    started = client.post(START_URL, {**form, "start": "Start run"})
    assert started.status_code == 302, started.content.decode()[:3000]
    topic = Topic.objects.get()
    assert (topic.name, topic.owner, topic.levels, topic.tags_per_level, topic.questions_per_intent) == (
        "Pet Shop", superuser, 2, 3, 5)
    assert DistillationRun.objects.get().topic == topic

    again = client.post(START_URL, {**form, "new_topic": "pet shop", "estimate": "Estimate"})
    assert "A topic named &#x27;pet shop&#x27; exists already: choose it in the list." in again.content.decode()
    neither = client.post(START_URL, {**form, "new_topic": "", "estimate": "Estimate"})
    assert "Choose a topic, or name a new one." in neither.content.decode()
    assert Topic.objects.count() == 1


def test_the_providers_list_shows_what_a_provider_really_uses(client, superuser, local_provider, settings,
                                                              monkeypatch):
    monkeypatch.delenv("LLM_API_KEY", raising=False)
    settings.LLM_BASE_URL, settings.LLM_MODEL = "http://127.0.0.1:8001/v1", "teacher-1"
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    client.force_login(superuser)
    page = client.get("/admin/distiller/llmprovider/").content.decode()
    assert "http://127.0.0.1:8001/v1 (LLM_BASE_URL)" in page and "teacher-1 (LLM_MODEL)" in page
    assert "none (LLM_API_KEY unset): fine for a local server that asks for none" in page
    assert "LLM_API_KEY is NOT set" not in page
    assert "https://api.deepseek.com/v1" in page and "DEEPSEEK_API_KEY is NOT set" in page


def test_a_topic_added_in_the_admin_without_an_owner_is_its_creators(client, dataset_admin, superuser):
    client.force_login(dataset_admin)
    response = client.post("/admin/datasets/topic/add/", {
        "name": "Travel", "description": "", "language": "en", "owner": "", "levels": 2, "tags_per_level": 5,
        "questions_per_intent": 20, "leaf_only": "on", "target_per_intent": 200, "confidence_threshold": 0.8,
        "guidelines": "", "review_reasons": "[]", "overlap_share": 0, "overlap_reviewers": 2, "gate_accuracy": 0.9,
        "gate_intent": 0.8})
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    assert Topic.objects.get(name="Travel").owner == dataset_admin


def test_the_topic_list_counts_leaf_intents_and_the_out_of_scope_one_apart(client, superuser, topic, make_intent):
    banking = make_intent(topic, "Banking")
    for name in ("Balance", "Transfer"):
        make_intent(topic, name, parent=banking)
    make_intent(topic, "Greeting")
    IntentNode.objects.filter(pk=make_intent(topic, "oos").pk).update(out_of_scope=True)
    client.force_login(superuser)
    page = client.get("/admin/datasets/topic/").content.decode()
    assert "Leaf intents" in page
    assert '<td class="field-intent_count">3 + out-of-scope</td>' in page
