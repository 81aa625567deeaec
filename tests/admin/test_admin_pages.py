import json

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from datasets.models import ReviewEvent
from distiller.models import LLMProvider


@pytest.fixture
def populated(topic, make_intent, make_question, superuser):
    """One of everything, so every change page has an object to show."""
    from datasets.models import Export
    from distiller.models import DistillationRun
    from labeling.services import question_review

    parent = make_intent(topic, "Billing")
    leaf = make_intent(topic, "Refunds", parent=parent)
    question = make_question(leaf, "I want my money back")
    question_review(question_id=question.pk, actor=superuser, action="approve")
    Export.objects.create(topic=topic, created_by=superuser)
    DistillationRun.objects.create(topic=topic, provider=LLMProvider.objects.first(), created_by=superuser)
    return dict(topic=topic, leaf=leaf, question=question)


def registered_models():
    return [m for m in admin.site._registry if m._meta.app_label in ("datasets", "distiller", "auth")]


def test_every_changelist_and_change_page_renders_for_a_superuser(client, superuser, populated):
    client.force_login(superuser)
    for model in registered_models():
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        assert client.get(changelist).status_code == 200, changelist
        assert client.get(changelist + "?q=a").status_code == 200, changelist
        obj = model.objects.first()
        if obj is not None:
            change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            assert client.get(change).status_code == 200, change


def test_the_taxonomy_tree_shows_numbered_nodes_with_counts(client, superuser, populated):
    client.force_login(superuser)
    page = client.get(reverse("admin:datasets_topic_taxonomy", args=[populated["topic"].pk])).content.decode()
    assert "1 Billing" in page and "1.1 Refunds" in page
    assert "approved: 1" in page


def test_admin_actions_review_questions_and_write_events(client, superuser, populated, make_question):
    other = make_question(populated["leaf"], "Refund please")
    client.force_login(superuser)
    response = client.post(reverse("admin:datasets_question_changelist"),
                           {"action": "reject_selected", "_selected_action": [other.pk]})
    assert response.status_code == 302
    other.refresh_from_db()
    assert other.status == "rejected" and other.reviewed_by == superuser and other.version == 2
    event = ReviewEvent.objects.get(question=other)
    assert (event.action, event.from_status, event.to_status, event.via) == ("reject", "pending", "rejected", "admin")


def test_a_reviewer_cannot_reach_provider_settings(client, reviewer):
    client.force_login(reviewer)
    provider = LLMProvider.objects.first()
    assert client.get(reverse("admin:distiller_llmprovider_changelist")).status_code == 403
    assert client.get(reverse("admin:distiller_llmprovider_change", args=[provider.pk])).status_code == 403
    assert client.get(reverse("admin:datasets_question_changelist")).status_code == 200


def test_a_dataset_admin_sees_providers_but_cannot_change_them(client, dataset_admin):
    client.force_login(dataset_admin)
    provider = LLMProvider.objects.first()
    page = client.get(reverse("admin:distiller_llmprovider_change", args=[provider.pk]))
    assert page.status_code == 200
    assert client.post(reverse("admin:distiller_llmprovider_change", args=[provider.pk]),
                       {"name": "x"}).status_code == 403


def test_provider_pages_never_show_a_key(client, superuser, monkeypatch):
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-test-secret-value-123456")
    client.force_login(superuser)
    provider = LLMProvider.objects.get(name="DeepSeek")
    for url in (reverse("admin:distiller_llmprovider_changelist"),
                reverse("admin:distiller_llmprovider_change", args=[provider.pk])):
        page = client.get(url).content.decode()
        assert "sk-test-secret-value-123456" not in page
        assert "DEEPSEEK_API_KEY is set" in page


def test_review_events_are_read_only_in_the_admin(client, superuser, populated):
    client.force_login(superuser)
    event = ReviewEvent.objects.first()
    assert client.post(reverse("admin:datasets_reviewevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    assert ReviewEvent.objects.filter(pk=event.pk).exists()


def test_the_default_providers_and_roles_exist(db):
    assert set(LLMProvider.objects.values_list("name", "base_url")) >= {
        ("DeepSeek", "https://api.deepseek.com/v1"), ("OpenRouter", "https://openrouter.ai/api/v1")}
    assert LLMProvider.objects.get(name="DeepSeek").model == "deepseek-chat"
    group_model = apps.get_model("auth", "Group")
    reviewer = group_model.objects.get(name="reviewer")
    assert set(reviewer.permissions.values_list("codename", flat=True)) == {
        "view_topic", "view_intentnode", "view_question", "change_question", "view_reviewevent"}
    assert group_model.objects.get(name="dataset admin").permissions.filter(codename="add_export").exists()


def test_question_admin_exports_jsonl(client, superuser, populated):
    from datasets.resources import QUESTION_EXPORT_FORMATS

    jsonl = next(i for i, f in enumerate(QUESTION_EXPORT_FORMATS) if f.writer_class.name == "jsonl")
    client.force_login(superuser)
    response = client.post(reverse("admin:datasets_question_export"),
                           {"format": jsonl, "resource": 0, "questionresource_text": "on"})
    assert response.status_code == 200
    (line,) = b"".join(response.streaming_content).decode().splitlines()
    row = json.loads(line)
    assert (row["question"], row["intent_full_name"], row["status"]) == ("I want my money back", "1.1 Refunds",
                                                                          "approved")


def test_parent_counts_in_the_tree_include_descendants(topic, make_intent, make_question):
    from datasets.selectors import taxonomy_with_counts

    parent = make_intent(topic, "Billing")
    leaf = make_intent(topic, "Refunds", parent=parent)
    make_question(leaf, "refund please")
    make_question(parent, "billing question", status="flagged")
    nodes = {n.name: n for n in taxonomy_with_counts(topic=topic)}
    assert nodes["Billing"].counts == {"flagged": 1}
    assert nodes["Billing"].subtree_counts == {"flagged": 1, "pending": 1}
    assert nodes["Refunds"].subtree_counts == {"pending": 1}


def test_the_topic_page_links_to_its_tree_and_to_starting_a_run(client, dataset_admin, topic):
    client.force_login(dataset_admin)
    page = client.get(reverse("admin:datasets_topic_change", args=[topic.pk])).content.decode()
    assert reverse("admin:datasets_topic_taxonomy", args=[topic.pk]) in page
    assert reverse("admin:distiller_distillationrun_start") + f"?topic={topic.pk}" in page


def test_api_token_pages_show_a_key_once_when_it_is_made_and_never_again(client, superuser, dataset_admin):
    # The stock Token admin listed every user's key, named the key in its "was added" message (a cookie),
    # its breadcrumbs and the admin log ("Recent actions: Added: <key>"): anyone who could read one
    # of those pages could act as any user through the API.
    from django.contrib.admin.models import LogEntry
    from rest_framework.authtoken.models import Token

    other = Token.objects.create(user=superuser)
    client.force_login(superuser)
    added = client.post("/admin/authtoken/tokenproxy/add/", {"user": dataset_admin.pk})
    made = Token.objects.get(user=dataset_admin)
    assert added.status_code == 200
    assert added.content.decode().count(made.key) == 1  # shown once, on the page that made it
    assert "not shown again" in added.content.decode()
    assert made.key not in "".join(f"{c.value}" for c in added.cookies.values())
    pages = ["/admin/authtoken/tokenproxy/", f"/admin/authtoken/tokenproxy/{dataset_admin.pk}/change/",
             f"/admin/authtoken/tokenproxy/{superuser.pk}/change/",
             f"/admin/authtoken/tokenproxy/{dataset_admin.pk}/delete/", "/admin/"]
    for page in pages:
        html = client.get(page).content.decode()
        assert made.key not in html and other.key not in html, page
    assert f"{made.key[:4]}…" in client.get("/admin/authtoken/tokenproxy/").content.decode()
    assert list(LogEntry.objects.values_list("object_repr", flat=True)) == ["API token of dora"]
    client.post(f"/admin/authtoken/tokenproxy/{dataset_admin.pk}/delete/", {"post": "yes"})
    assert not Token.objects.filter(user=dataset_admin).exists()
    assert made.key not in "".join(LogEntry.objects.values_list("object_repr", flat=True))


def test_a_migration_takes_the_keys_out_of_admin_log_entries_written_before(superuser, dataset_admin):
    import importlib

    from django.apps import apps
    from django.contrib.admin.models import ADDITION, LogEntry
    from django.contrib.contenttypes.models import ContentType
    from rest_framework.authtoken.models import Token, TokenProxy

    token = Token.objects.create(user=dataset_admin)
    proxy_type = ContentType.objects.get_for_model(TokenProxy, for_concrete_model=False)
    token_type = ContentType.objects.get_for_model(Token)
    # As the stock admin wrote them: named by the key; object_id the user's id (TokenProxy) or the key (Token).
    LogEntry.objects.create(user=superuser, content_type=proxy_type, object_id=str(dataset_admin.pk),
                            object_repr=token.key, action_flag=ADDITION)
    LogEntry.objects.create(user=superuser, content_type=token_type, object_id=token.key,
                            object_repr=token.key, action_flag=ADDITION)
    other = LogEntry.objects.create(user=superuser, content_type=ContentType.objects.get_for_model(superuser),
                                    object_id=str(superuser.pk), object_repr="root", action_flag=ADDITION)
    importlib.import_module("datasets.migrations.0021_admin_log_without_token_keys").token_keys_scrub(apps, None)
    rows = list(LogEntry.objects.exclude(pk=other.pk).order_by("pk").values_list("object_repr", "object_id"))
    assert rows == [(f"API token of {dataset_admin.username}", str(dataset_admin.pk)), ("API token of a user", "")]
    assert LogEntry.objects.get(pk=other.pk).object_repr == "root"
