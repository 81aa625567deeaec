"""The LLM judge's verdict in the review tools: shown, served first on request, filtered in the list."""

from django.test import Client
from django.urls import reverse

from tests.api.clients import api_as


def judged(make_question, taxonomy, text, verdict, *, chosen=None, score=0.75):
    return make_question(taxonomy["refunds"], text, judge_verdict=verdict, judge_intent=chosen or taxonomy["refunds"],
                         judge_disagrees=chosen is not None, judge_score=0.0 if chosen else score,
                         judge_reason=f"reason for {text}", judge_model="judge-9", judge_prompt_version="judge-v1")


def test_the_queue_serves_judge_disagreements_first_and_shows_the_verdict(topic, taxonomy, make_question, reviewer):
    topic.reviewers.add(reviewer)
    plain = make_question(taxonomy["refunds"], "Not judged yet")
    passed = judged(make_question, taxonomy, "Where is my refund?", "pass")
    other = judged(make_question, taxonomy, "Send me the March invoice", "other_intent", chosen=taxonomy["invoices"])
    api = api_as(reviewer)

    served = api.get(reverse("api-review-next"), {"topic": topic.pk, "judge_disagrees_first": "1"}).json()["question"]
    assert served["id"] == other.pk
    assert served["judge"] == {
        "verdict": "other_intent", "verdict_display": "Belongs to another intent", "score": 0.0,
        "reason": "reason for Send me the March invoice", "model": "judge-9", "prompt_version": "judge-v1",
        "intent": {"id": taxonomy["invoices"].pk, "name": "Invoices", "full_name": "1.2 Invoices"},
        "disagrees": True}
    # Then the passes, then the unjudged; without the option, oldest first.
    api.post(reverse("api-question-review", args=[other.pk]), {"action": "approve", "version": 1}, format="json")
    after = api.get(reverse("api-review-next"), {"topic": topic.pk, "judge_disagrees_first": "1"}).json()["question"]
    assert after["id"] == passed.pk and after["judge"]["intent"] is None  # the judge agreed: no other intent
    api.post(reverse("api-question-review", args=[passed.pk]), {"action": "approve", "version": 1}, format="json")
    last = api.get(reverse("api-review-next"), {"topic": topic.pk, "judge_disagrees_first": "1"}).json()["question"]
    assert last["id"] == plain.pk and last["judge"] == ""


def test_the_list_filters_on_verdict_and_score(topic, taxonomy, make_question, reviewer):
    topic.reviewers.add(reviewer)
    make_question(taxonomy["refunds"], "Not judged yet")
    passed = judged(make_question, taxonomy, "Where is my refund?", "pass", score=1.0)
    low = judged(make_question, taxonomy, "refund??", "low_score", score=0.25)
    other = judged(make_question, taxonomy, "Send me the March invoice", "other_intent", chosen=taxonomy["invoices"])
    client = Client()
    client.force_login(reviewer)

    def listed(**params):
        page = client.get(reverse("labeling:questions", args=[topic.pk]), params)
        assert page.status_code == 200
        return {q.text for q in page.context["page"].object_list}

    assert listed(judge_verdict="other_intent") == listed(judge_verdict="disagrees") == {other.text}
    assert listed(judge_verdict="pass") == {passed.text}
    assert listed(judge_verdict="unjudged") == {"Not judged yet"}
    assert listed(judge_score_min="0.2", judge_score_max="0.5") == {low.text}
    page = client.get(reverse("labeling:questions", args=[topic.pk]), {"judge_verdict": "maybe"}, follow=True)
    assert "Unknown judge_verdict 'maybe': use one of pass, other_intent, no_intent, low_score, unjudged, disagrees." \
        in [str(m) for m in page.context["messages"]]
