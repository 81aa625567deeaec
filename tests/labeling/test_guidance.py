"""Guidance on the review screen: the topic's guidelines (safe Markdown), intent descriptions in the
picker, approved examples on demand."""

import json
import re

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from labeling.selectors import guidelines_html, intent_examples, taxonomy_choices


def test_guidelines_render_markdown_and_no_html_or_script(topic):
    topic.guidelines = (
        "# Refunds\n\nA **refund** asks for money back.\n\n"
        "<script>alert('x')</script>\n\n<img src=x onerror=alert(1)>\n\n"
        "[click](javascript:alert(1)) and [docs](https://example.com/guide)\n")
    html = guidelines_html(topic=topic)
    assert "<h1>Refunds</h1>" in html
    assert "<strong>refund</strong>" in html
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'href="javascript' not in html
    assert '<a href="https://example.com/guide">docs</a>' in html


def test_the_review_screen_shows_the_guidelines_behind_g_without_running_their_html(client, reviewer, topic,
                                                                                     taxonomy):
    topic.guidelines = "## Be strict\n\n<script>window.pwned = 1</script>"
    topic.save()
    client.force_login(reviewer)
    page = client.get(reverse("labeling:review", args=[topic.pk])).content.decode()
    assert '<div id="guidelines" class="help" hidden>' in page
    assert "<h2>Be strict</h2>" in page
    assert "<script>window.pwned" not in page and "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in page
    # Help in words, not a setting's name.
    assert "REVIEW_LEASE_SECONDS" not in page and "after 5 minutes without a key" in page


def test_intent_descriptions_go_to_the_picker_which_searches_them(client, reviewer, topic, make_intent):
    billing = make_intent(topic, "Billing")
    make_intent(topic, "Money back", parent=billing, description="The customer asks for a refund of a payment.")
    make_intent(topic, "Invoices", parent=billing)
    choices = {c["name"]: c["description"] for c in taxonomy_choices(topic=topic)}
    assert choices == {"Billing": "", "Money back": "The customer asks for a refund of a payment.", "Invoices": ""}
    client.force_login(reviewer)
    page = client.get(reverse("labeling:review", args=[topic.pk])).content.decode()
    config = json.loads(re.search(r'id="review-config"[^>]*>(.*?)</script>', page, re.S).group(1))
    assert [t["description"] for t in config["taxonomy"]] == ["", "The customer asks for a refund of a payment.", ""]
    assert config["reasons"] == ["Wrong intent", "Unnatural", "Duplicate", "Ambiguous", "Out of scope", "Offensive"]


def test_approved_examples_of_the_asked_intents_newest_decision_first(topic, taxonomy, make_question):
    from django.utils import timezone

    now = timezone.now()
    make_question(taxonomy["refunds"], "refund old", status="approved", reviewed_at=now - timezone.timedelta(days=1))
    make_question(taxonomy["refunds"], "refund new", status="relabeled", reviewed_at=now)
    make_question(taxonomy["refunds"], "refund pending")
    make_question(taxonomy["refunds"], "refund rejected", status="rejected")
    make_question(taxonomy["invoices"], "invoice ok", status="approved", reviewed_at=now)
    rows = intent_examples(topic=topic, intent_ids=[taxonomy["invoices"].pk, taxonomy["refunds"].pk])
    assert [(r["full_name"], r["examples"]) for r in rows] == [
        ("1.1 Refunds", ["refund new", "refund old"]), ("1.2 Invoices", ["invoice ok"])]


@pytest.mark.parametrize("persona, expected", [("reviewer", 200), ("other_reviewer", 404), ("lead", 200),
                                               ("dataset_admin", 200)])
def test_the_examples_pane_is_for_the_topics_reviewers(client, request, topic, taxonomy, make_question, persona,
                                                        expected):
    make_question(taxonomy["refunds"], "refund ok", status="approved")
    client.force_login(request.getfixturevalue(persona))
    response = client.get(reverse("labeling:examples", args=[topic.pk]), {"intents": taxonomy["refunds"].pk})
    assert response.status_code == expected
    if expected == 200:
        assert response.json()["intents"][0]["examples"] == ["refund ok"]


def test_a_topics_reasons_must_be_a_short_list_of_words(topic):
    topic.review_reasons = "wrong"
    with pytest.raises(ValidationError, match="JSON list"):
        topic.clean()
    topic.review_reasons = [f"r{n}" for n in range(10)]
    with pytest.raises(ValidationError, match="At most 9"):
        topic.clean()
    topic.review_reasons = ["Wrong intent", "Not English"]
    topic.clean()
