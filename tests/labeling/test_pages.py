"""The review UI's HTML pages: home, dashboard chart, review screen, list filters and bulk."""

from django.urls import reverse

from datasets.models import Question, ReviewEvent


def test_the_site_root_is_the_reviewers_home(client, reviewer, topic):
    client.force_login(reviewer)
    page = client.get("/").content.decode()
    assert "Your topics" in page and reverse("labeling:dashboard", args=[topic.pk]) in page


def test_the_dashboard_charts_intents_short_of_target_first(client, reviewer, topic, taxonomy, make_question):
    topic.target_per_intent = 2
    topic.save()
    for n in range(2):
        make_question(taxonomy["refunds"], f"refund {n}", status="approved")
    make_question(taxonomy["invoices"], "invoice", status="approved")
    client.force_login(reviewer)
    page = client.get(reverse("labeling:dashboard", args=[topic.pk])).content.decode()
    assert "<svg" in page
    order = [page.index(name) for name in ("2.1 Password reset", "1.2 Invoices", "1.1 Refunds")]
    assert order == sorted(order)  # 0/2, then 1/2, then the one at its target
    assert "2 of 3 intents short of the target of 2" in page


def test_the_review_screen_carries_the_taxonomy_and_the_api_urls(client, reviewer, topic, taxonomy):
    client.force_login(reviewer)
    page = client.get(reverse("labeling:review", args=[topic.pk])).content.decode()
    assert 'id="review-config"' in page and "Password reset" in page and "/api/v1/review/next/" in page
    assert "csrfmiddlewaretoken" in page


def test_the_list_filters_by_intent_subtree_status_source_confidence_and_text(
        client, reviewer, topic, taxonomy, make_question):
    make_question(taxonomy["refunds"], "refund one", source="captured", confidence=0.2)
    make_question(taxonomy["refunds"], "refund two", source="captured", confidence=0.6)
    make_question(taxonomy["invoices"], "invoice one", status="approved")
    make_question(taxonomy["password"], "password one")
    client.force_login(reviewer)
    url = reverse("labeling:questions", args=[topic.pk])

    def shown(**params):
        page = client.get(url, params).content.decode()
        return sorted(t for t in ("refund one", "refund two", "invoice one", "password one") if t in page)

    assert shown(intent=taxonomy["billing"].pk) == ["invoice one", "refund one", "refund two"]
    assert shown(status="approved") == ["invoice one"]
    assert shown(source="captured", confidence_max="0.5") == ["refund one"]
    assert shown(search="PASSWORD") == ["password one"]


def test_a_bad_filter_says_what_is_wrong(client, reviewer, topic):
    client.force_login(reviewer)
    response = client.get(reverse("labeling:questions", args=[topic.pk]), {"confidence_min": "high"}, follow=True)
    assert "confidence_min must be a number" in response.content.decode()


def test_bulk_relabel_of_everything_the_filter_matches(client, reviewer, topic, taxonomy, make_question):
    for n in range(3):
        make_question(taxonomy["refunds"], f"refund {n}")
    make_question(taxonomy["password"], "password")
    client.force_login(reviewer)
    response = client.post(reverse("labeling:questions", args=[topic.pk]),
                           {"intent": taxonomy["refunds"].pk, "action": "relabel", "scope": "all",
                            "to_intent": taxonomy["invoices"].pk}, follow=True)
    assert "Relabel: 3 question(s)." in response.content.decode()
    assert Question.objects.filter(intent=taxonomy["invoices"], status="relabeled").count() == 3
    assert ReviewEvent.objects.filter(action="relabel", via="ui").count() == 3


def test_the_duplicates_pane_lists_the_nearest_questions_of_the_topic(client, reviewer, topic, taxonomy,
                                                                      make_question):
    make_question(taxonomy["refunds"], "I want a refund for my order", status="approved")
    question = make_question(taxonomy["refunds"], "I want a refund for my last order")
    client.force_login(reviewer)
    body = client.get(reverse("labeling:similar", args=[topic.pk, question.pk])).json()
    assert [s["text"] for s in body["similar"]] == ["I want a refund for my order"]


def test_the_duplicates_pane_puts_the_same_words_under_another_intent_first(client, reviewer, topic, taxonomy,
                                                                            make_question):
    make_question(taxonomy["refunds"], "I want a refund for my order", status="approved")
    make_question(taxonomy["invoices"], "my order: I want a refund!!", status="approved")
    make_question(taxonomy["invoices"], "Where is my March invoice?", status="approved")
    question = make_question(taxonomy["refunds"], "Refund for my order, I want")
    client.force_login(reviewer)
    body = client.get(reverse("labeling:similar", args=[topic.pk, question.pk])).json()
    assert [(s["text"], s["intent_number"], s["other_intent"], s["score"]) for s in body["similar"]] == [
        ("I want a refund for my order", "1.1", False, 1.0),
        ("my order: I want a refund!!", "1.2", True, 1.0),
    ]


def test_the_duplicates_pane_is_closed_to_a_reviewer_of_another_topic(client, other_reviewer, topic, taxonomy,
                                                                      make_question):
    question = make_question(taxonomy["refunds"])
    client.force_login(other_reviewer)
    assert client.get(reverse("labeling:similar", args=[topic.pk, question.pk])).status_code == 404
