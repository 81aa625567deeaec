"""Domain presets: shipped by a data migration, listed by the API, chosen when a topic is created
(API, admin, `distill auto`), carried into a run's styles and audiences; dataset admins add theirs."""

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from datasets.models import Topic, TopicPreset
from distiller.mix import DEFAULT_MIX
from distiller.services.runs import run_parameters
from tests.api.clients import api_as

SHIPPED = ["Banking", "Customer support", "E-commerce", "Healthcare", "IT help desk", "Telecom", "Travel"]


def test_the_seven_domain_presets_are_shipped_and_listed_for_dataset_admins(db, dataset_admin, reviewer):
    assert list(TopicPreset.objects.order_by("name").values_list("name", "builtin", "languages")) == [
        (name, True, ["en"]) for name in SHIPPED]
    body = api_as(dataset_admin).get("/api/v1/presets/").json()
    assert [p["name"] for p in body] == SHIPPED
    banking = body[0]
    assert banking["audiences"] == {"general": 4, "beginner": 2, "intermediate": 2, "expert": 1}
    assert banking["description"].startswith("Questions retail banking customers ask")
    assert api_as(reviewer).get("/api/v1/presets/").status_code == 403
    assert api_as(None).get("/api/v1/presets/").status_code == 401


def test_a_topic_created_with_a_preset_takes_its_description_and_its_runs_its_styles_and_audiences(
        db, dataset_admin):
    response = api_as(dataset_admin).post("/api/v1/topics/", {"name": "My Bank", "preset": "Banking"}, format="json")
    assert response.status_code == 201, response.json()
    topic = Topic.objects.get(name="My Bank")
    banking = TopicPreset.objects.get(name="Banking")
    assert (topic.preset, topic.description, topic.language) == (banking, banking.description, "en")
    assert response.json()["preset"] == "Banking"
    mix = run_parameters(topic=topic, kind="taxonomy")["mix"]
    assert mix["style"] == {k: float(v) for k, v in banking.styles.items()}
    assert mix["audience"] == {k: float(v) for k, v in banking.audiences.items()}
    assert mix["complexity"] == {k: float(v) for k, v in DEFAULT_MIX["complexity"].items()}
    # What the request gives wins over the preset; a run's own mix over the topic's preset.
    api_as(dataset_admin).post("/api/v1/topics/", {"name": "Mine", "preset": "Travel", "description": "Ours",
                                                   "language": "de"}, format="json")
    assert Topic.objects.filter(name="Mine").values_list("description", "language").get() == ("Ours", "de")
    own = run_parameters(topic=topic, kind="taxonomy", mix={"style": {"request": 1}})["mix"]
    assert own["style"] == {"request": 1.0} and own["audience"] == {k: float(v) for k, v in DEFAULT_MIX["audience"].items()}


def test_an_unknown_preset_is_a_400_and_no_topic(db, dataset_admin):
    response = api_as(dataset_admin).post("/api/v1/topics/", {"name": "X", "preset": "Mining"}, format="json")
    assert response.status_code == 400 and "preset" in response.json()["error"]["details"]
    assert not Topic.objects.filter(name="X").exists()


def test_distill_auto_starts_a_new_topic_from_a_preset_without_creating_anything_for_an_estimate(db, capsys):
    call_command("distill", "auto", "--topic", "Help", "--preset", "it help desk", "--estimate")
    assert not Topic.objects.filter(name="Help").exists()
    with pytest.raises(CommandError, match="Unknown preset 'Mining'; the presets are: Banking, Customer support"):
        call_command("distill", "auto", "--topic", "Help", "--preset", "Mining", "--estimate")


def test_dataset_admins_add_their_own_presets_in_the_admin_and_cannot_delete_shipped_ones(db, dataset_admin):
    browser = Client()
    browser.force_login(dataset_admin)
    response = browser.post("/admin/datasets/topicpreset/add/", {
        "name": "Insurance", "description": "Questions policy holders ask.", "languages": '["en", "de"]',
        "styles": '{"request": 2}', "audiences": '{"general": 1}'})
    assert response.status_code == 302
    assert TopicPreset.objects.filter(name="Insurance").values_list("languages", "styles", "builtin").get() == (
        ["en", "de"], {"request": 2}, False)
    bad = browser.post("/admin/datasets/topicpreset/add/", {
        "name": "Bad", "description": "x", "languages": '["xx"]', "styles": '{"request": 2}',
        "audiences": '{"general": 1}'})
    assert bad.status_code == 200 and not TopicPreset.objects.filter(name="Bad").exists()
    banking = TopicPreset.objects.get(name="Banking")
    assert browser.post(f"/admin/datasets/topicpreset/{banking.pk}/delete/", {"post": "yes"}).status_code == 403
    # A topic made in the admin with a preset and no description takes the preset's.
    browser.post("/admin/datasets/topic/add/", {
        "name": "Claims", "preset": TopicPreset.objects.get(name="Insurance").pk, "description": "", "language": "en",
        "levels": 2, "tags_per_level": 5, "questions_per_intent": 20, "leaf_only": "on", "target_per_intent": 200,
        "confidence_threshold": 0.7, "review_reasons": '["Wrong intent"]', "overlap_share": 0, "overlap_reviewers": 2,
        "gate_accuracy": 0.9, "gate_intent": 0.85})
    assert Topic.objects.filter(name="Claims").values_list("description", flat=True).get() == \
        "Questions policy holders ask."


def test_start_a_run_makes_the_new_topic_from_a_preset_and_the_run_takes_its_styles(db, superuser, settings):
    import json

    from distiller.mix import DEFAULT_MIX
    from distiller.models import DistillationRun, LLMProvider

    settings.LLM_BASE_URL, settings.LLM_MODEL = "http://127.0.0.1:9/v1", "teacher-1"
    browser = Client()
    browser.force_login(superuser)
    telecom = TopicPreset.objects.get(name="Telecom")
    form = {"topic": "", "new_topic": "Phones", "preset": telecom.pk, "kind": "auto",
            "provider": LLMProvider.objects.get(name="Custom").pk, "levels": 2, "tags_per_level": 3,
            "questions_per_intent": 5, "questions_per_call": 10, "language": "en", "leaf_only": "on",
            "mix": json.dumps(DEFAULT_MIX), "start": "Start run"}
    assert browser.post("/admin/distiller/distillationrun/start/", form).status_code == 302
    topic = Topic.objects.get(name="Phones")
    assert (topic.preset, topic.description) == (telecom, telecom.description)
    mix = DistillationRun.objects.get(topic=topic).parameters["mix"]
    assert mix["style"] == {k: float(v) for k, v in telecom.styles.items()}
    refused = browser.post("/admin/distiller/distillationrun/start/",
                           {**form, "new_topic": "", "topic": topic.pk, "start": "Start run"})
    assert "A preset starts a new topic: name one, or clear the preset." in refused.content.decode()
