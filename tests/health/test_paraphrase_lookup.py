"""The review screen's paraphrase lookup: one row per near-duplicate group, its near copies counted,
the question's own group left to the near-duplicate part, and a bounded number of texts read."""

import pytest
from django.urls import reverse

from datasets.health.index import question_paraphrases
from labeling.api import review_question_data
from labeling.selectors import questions_similar

QUESTION = "how much money is left in my checking account this month"


@pytest.fixture
def groups(topic, make_intent, make_question):
    """The question, a near copy of it, a paraphrase group of three under another intent (same
    shingles: case, punctuation and numbers fold away), a paraphrase of its own and an unrelated
    question. Jaccard with the question: 0.7 for the savings group, 0.778 for `fewer_words`."""
    balance, savings = make_intent(topic, "Balance"), make_intent(topic, "Savings")
    question = make_question(balance, QUESTION)
    own_copy = make_question(balance, "How much money is left in my checking account this month, 2?")
    savings_group = [make_question(savings, "how much money is left in my savings account this month"),
                     make_question(savings, "How much money is left in my SAVINGS account this month, 3!"),
                     make_question(savings, "how much money is left in my savings account this month 2")]
    fewer_words = make_question(balance, "how much money is in my checking account this month")
    make_question(savings, "open a new savings account for my daughter")
    return {"question": question, "own_copy": own_copy, "savings": savings_group, "fewer_words": fewer_words,
            "balance": balance, "savings_intent": savings}


def test_the_lookup_lists_one_question_per_near_duplicate_group_with_its_copies_counted(groups):
    question, savings = groups["question"], groups["savings"]
    assert question_paraphrases(question=question) == [
        {"id": groups["fewer_words"].pk, "text": "how much money is in my checking account this month",
         "status": "pending", "intent_id": groups["balance"].pk, "score": 7 / 9, "near_copies": 0},
        {"id": savings[0].pk, "text": "how much money is left in my savings account this month",
         "status": "pending", "intent_id": groups["savings_intent"].pk, "score": 0.7, "near_copies": 2},
    ]


def test_the_review_screen_shows_the_near_copy_first_then_one_row_per_paraphrase_group(
        client, reviewer, topic, groups):
    question, savings = groups["question"], groups["savings"]
    expected = [(groups["own_copy"].pk, 1.0, False, 0), (groups["fewer_words"].pk, 0.778, False, 0),
                (savings[0].pk, 0.7, True, 2)]
    rows = questions_similar(question=question)
    assert [(r["id"], r["score"], r["other_intent"], r["near_copies"]) for r in rows] == expected
    client.force_login(reviewer)
    body = client.get(reverse("labeling:similar", args=[topic.pk, question.pk])).json()
    assert [(r["id"], r["score"], r["other_intent"], r["near_copies"]) for r in body["similar"]] == expected
    api_rows = review_question_data(question, with_similar=True)["similar"]
    assert [(r["id"], r["score"], r["other_intent"], r["near_copies"]) for r in api_rows] == expected


def test_near_copies_add_no_work_to_the_lookup(groups, make_question, django_assert_num_queries):
    # 40 more copies of the question and of the savings paraphrase: every band of the question is
    # now shared by 41 + 43 questions, yet the same three statements read one text per group.
    question, savings = groups["question"], groups["savings"]
    for n in range(40):
        make_question(groups["balance"], f"{QUESTION} n{n}")
        make_question(groups["savings_intent"], f"how much money is left in my savings account this month n{n}")
    with django_assert_num_queries(3):  # the question's band keys, the groups, the copies' count
        rows = question_paraphrases(question=question)
    assert [(r["id"], r["near_copies"]) for r in rows] == [(groups["fewer_words"].pk, 0), (savings[0].pk, 42)]
