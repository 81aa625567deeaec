"""Overlap and agreement: k reviewers decide a share of the questions independently; disagreements go
to a lead; agreement figures (Cohen's kappa per pair, Fleiss' kappa per intent) match references."""

import random
import threading

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.urls import reverse
from sklearn.metrics import cohen_kappa_score

from datasets.models import Question, ReviewEvent, ReviewVote
from labeling.agreement import cohen_kappa, fleiss_kappa, reviewer_figures, topic_agreement
from labeling.overlap import question_overlaps
from labeling.services import question_lease_next, question_review, reviewer_undo_last


def make_reviewer(topic, name):
    user = User.objects.create_user(username=name)
    user.groups.add(Group.objects.get(name="reviewer"))
    topic.reviewers.add(user)
    return user


def test_cohen_kappa_equals_scikit_learns():
    rng = random.Random(3)
    for _ in range(20):
        first = [rng.choice("abcd") for _ in range(60)]
        second = [x if rng.random() < 0.7 else rng.choice("abcd") for x in first]
        assert cohen_kappa(first, second) == pytest.approx(cohen_kappa_score(first, second), abs=1e-12)
    assert cohen_kappa(["a", "a"], ["a", "a"]) is None  # undefined: chance agreement is total


def test_fleiss_kappa_of_the_textbook_example():
    # Fleiss (1971) as worked on Wikipedia: 10 items, 14 raters, 5 categories; kappa = 0.210.
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    items = [[category for category, n in enumerate(row) for _ in range(n)] for row in table]
    assert round(fleiss_kappa(items), 3) == 0.210


def test_a_share_of_questions_overlaps_spread_over_the_ids(topic):
    topic.overlap_share = 0.1
    assert sum(question_overlaps(question_id=pk, topic=topic) for pk in range(1, 10001)) == 1000
    assert sum(question_overlaps(question_id=pk, topic=topic) for pk in range(1, 101)) in range(5, 16)
    topic.overlap_share = 0.0
    assert not any(question_overlaps(question_id=pk, topic=topic) for pk in range(1, 1001))


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_reviewers_who_disagree_on_a_known_tenth_of_200_questions(topic, taxonomy, lead):
    topic.overlap_share, topic.overlap_reviewers = 1.0, 2
    topic.save()
    intents = [taxonomy["refunds"], taxonomy["invoices"], taxonomy["password"]]
    questions = [Question.objects.create(topic=topic, intent=intents[n % 3], text=f"question number {n}")
                 for n in range(200)]
    disputed = {q.pk for q in questions[::10]}  # 20 questions: the second reviewer rejects them
    ana, ben = make_reviewer(topic, "ana"), make_reviewer(topic, "ben")
    served = {"ana": [], "ben": []}
    errors = []

    def work(user, disagrees):
        try:
            while (question := question_lease_next(topic=topic, actor=user)) is not None:
                served[user.username].append(question.pk)
                action = "reject" if disagrees and question.pk in disputed else "approve"
                question_review(question_id=question.pk, actor=user, action=action, version=question.version)
        except Exception as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(ana, False)), threading.Thread(target=work, args=(ben, True))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # Each reviewer got every question exactly once: never twice, never one the other could not get.
    assert sorted(served["ana"]) == sorted(served["ben"]) == sorted(q.pk for q in questions)
    assert ReviewVote.objects.filter(decided_at__isnull=False).count() == 400
    statuses = dict(Question.objects.values_list("pk", "status"))
    assert [pk for pk, status in statuses.items() if status == "flagged"] == sorted(disputed)
    assert sum(status == "approved" for status in statuses.values()) == 180
    flagged = ReviewEvent.objects.get(question_id=min(disputed), action="flag")
    votes = [f"ana approve {questions[0].intent.number}", "ben reject"]  # in the order they voted
    assert flagged.actor is None
    assert flagged.reason in ("Reviewers disagree: " + ", ".join(votes), "Reviewers disagree: " + ", ".join(votes[::-1]))

    # The reference: scikit-learn on the same two label lists.
    label = {"approve": lambda q: f"intent:{q.intent_id}", "reject": lambda q: "reject"}
    ana_labels = [label["approve"](q) for q in questions]
    ben_labels = [label["reject" if q.pk in disputed else "approve"](q) for q in questions]
    agreement = topic_agreement(topic=topic)
    assert agreement["overall"]["questions"] == 200 and agreement["overall"]["agreed"] == 180
    assert agreement["pairs"] == [{"reviewers": ["ana", "ben"], "questions": 200, "observed": 0.9,
                                   "cohen_kappa": round(cohen_kappa_score(ana_labels, ben_labels), 4)}]
    by_intent = {row["intent_name"]: row for row in agreement["intents"]}
    refunds = [(a, b) for a, b, q in zip(ana_labels, ben_labels, questions, strict=True)
               if q.intent_id == taxonomy["refunds"].pk]
    assert by_intent["1.1 Refunds"]["questions"] == len(refunds)
    assert by_intent["1.1 Refunds"]["fleiss_kappa"] == round(fleiss_kappa([list(pair) for pair in refunds]), 4)

    # The lead adjudicates the disagreements: upholds ben (reject) on 15, ana (approve) on 5.
    for n, pk in enumerate(sorted(disputed)):
        question_review(question_id=pk, actor=lead, action="reject" if n < 15 else "approve")
    figures = {row.reviewer: row for row in reviewer_figures(topic=topic)}
    assert (figures["ana"].decisions, figures["ana"].agreement_with_others, figures["ana"].compared) == (200, 0.9, 200)
    assert (figures["ana"].adjudicated, figures["ana"].agreement_with_adjudication) == (20, 0.25)
    assert (figures["ben"].adjudicated, figures["ben"].agreement_with_adjudication) == (20, 0.75)
    assert figures["ben"].actions == {"approve": 0.9, "reject": 0.1}
    assert figures["leo"].decisions == 20


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_three_reviewers_racing_for_k_2_never_put_three_on_a_question(topic, taxonomy):
    topic.overlap_share, topic.overlap_reviewers = 1.0, 2
    topic.save()
    for n in range(30):
        Question.objects.create(topic=topic, intent=taxonomy["refunds"], text=f"question number {n}")
    users = [make_reviewer(topic, name) for name in ("ana", "ben", "cem")]
    errors = []

    def work(user):
        try:
            while (question := question_lease_next(topic=topic, actor=user)) is not None:
                question_review(question_id=question.pk, actor=user, action="approve", version=question.version)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    per_question = {}
    for question_id, reviewer_id in ReviewVote.objects.values_list("question_id", "reviewer_id"):
        per_question.setdefault(question_id, []).append(reviewer_id)
    assert len(per_question) == 30 and all(len(set(r)) == len(r) == 2 for r in per_question.values())
    assert set(Question.objects.values_list("status", flat=True)) == {"approved"}


def test_an_overlapping_question_hides_the_others_decision_and_settles_on_agreement(api, topic, taxonomy,
                                                                                    make_question):
    topic.overlap_share = 1.0
    topic.save()
    question = make_question(taxonomy["refunds"], "I want my money back")
    ana, ben = make_reviewer(topic, "ana"), make_reviewer(topic, "ben")
    first = api(ana).post(reverse("api-question-review", args=[question.pk]),
                          {"action": "relabel", "intent": taxonomy["invoices"].pk, "version": 1}, format="json")
    assert first.status_code == 200
    shown = api(ben).get(reverse("api-review-next"), {"topic": topic.pk}).json()["question"]
    assert (shown["id"], shown["status"], shown["intent"]["id"], shown["reviewed_by"], shown["overlap"]) == (
        question.pk, "pending", taxonomy["refunds"].pk, None, {"reviewers": 2})
    assert api(ben).post(reverse("api-question-review", args=[question.pk]),
                         {"action": "relabel", "intent": taxonomy["invoices"].pk, "version": 1},
                         format="json").status_code == 200
    question.refresh_from_db()
    assert (question.status, question.intent, question.original_intent, question.reviewed_by) == (
        "relabeled", taxonomy["invoices"], taxonomy["refunds"], ben)
    event = question.events.get()
    assert (event.action, event.actor, event.changes) == (
        "relabel", ben, {"overlap": {"ana": ["relabel", taxonomy["invoices"].pk],
                                     "ben": ["relabel", taxonomy["invoices"].pk]}})


def test_a_third_reviewer_is_not_served_a_question_two_have_decided_and_undo_withdraws_a_vote(topic, taxonomy,
                                                                                              make_question):
    topic.overlap_share = 1.0
    topic.overlap_reviewers = 3
    topic.save()
    question = make_question(taxonomy["refunds"], "money back")
    ana, ben = make_reviewer(topic, "ana"), make_reviewer(topic, "ben")
    question_review(question_id=question.pk, actor=ana, action="approve")
    assert question_lease_next(topic=topic, actor=ana) is None  # already decided by ana
    assert question_lease_next(topic=topic, actor=ben).pk == question.pk
    question_review(question_id=question.pk, actor=ben, action="reject", reason="Unnatural")
    assert reviewer_undo_last(topic=topic, actor=ben).pk == question.pk
    vote = ReviewVote.objects.get(reviewer=ben)
    assert (vote.action, vote.decided_at, vote.claim_expires_at is not None) == ("", None, True)
    assert question_lease_next(topic=topic, actor=ben).pk == question.pk  # back to ben to decide again


@pytest.mark.parametrize("persona, status, sees", [
    ("reviewer", 200, ["rita"]), ("lead", 200, ["leo", "rita"]), ("dataset_admin", 200, ["leo", "rita"]),
    ("other_reviewer", 404, None)])
def test_reviewer_figures_reviewers_see_their_own_leads_and_admins_the_topics(
        api, request, topic, taxonomy, make_question, reviewer, lead, persona, status, sees):
    question_review(question_id=make_question(taxonomy["refunds"]).pk, actor=reviewer, action="approve")
    flagged = make_question(taxonomy["refunds"])
    question_review(question_id=flagged.pk, actor=reviewer, action="flag")
    question_review(question_id=flagged.pk, actor=lead, action="approve")
    response = api(request.getfixturevalue(persona)).get(reverse("api-topic-reviewers", args=[topic.pk]))
    assert response.status_code == status
    if sees:
        body = response.json()
        assert sorted(row["reviewer"] for row in body["reviewers"]) == sees
        assert (body["agreement"] is None) == (sees == ["rita"])
        rita = next(row for row in body["reviewers"] if row["reviewer"] == "rita")
        assert (rita["decisions"], rita["actions"], rita["undos"]) == (2, {"approve": 0.5, "flag": 0.5}, 0)


@pytest.mark.parametrize("persona, status", [("reviewer", 200), ("lead", 200), ("other_reviewer", 404)])
def test_the_reviewer_figures_page(client, request, topic, taxonomy, reviewer, lead, persona, status):
    client.force_login(request.getfixturevalue(persona))
    response = client.get(reverse("labeling:reviewers", args=[topic.pk]))
    assert response.status_code == status
    if status == 200:
        page = response.content.decode()
        assert ("<h1>Reviewers of Customer Support</h1>" in page) == (persona == "lead")
        assert ("<h1>Your figures on Customer Support</h1>" in page) == (persona == "reviewer")


def test_an_export_can_take_only_the_questions_reviewers_agreed_on(topic, taxonomy, make_question, lead):
    from datasets.exports import export_create, export_questions_of

    topic.overlap_share = 1.0
    topic.save()
    agreed, disputed = make_question(taxonomy["refunds"], "agreed one"), make_question(taxonomy["refunds"], "disputed")
    ana, ben = make_reviewer(topic, "ana"), make_reviewer(topic, "ben")
    for user in (ana, ben):
        question_review(question_id=agreed.pk, actor=user, action="approve")
    question_review(question_id=disputed.pk, actor=ana, action="approve")
    question_review(question_id=disputed.pk, actor=ben, action="reject")
    question_review(question_id=disputed.pk, actor=lead, action="approve")  # adjudicated, not agreed
    single = make_question(taxonomy["invoices"], "one reviewer", status="approved")
    every = export_create(topic=topic, format="jsonl", enqueue_job=False)
    only_agreed = export_create(topic=topic, format="jsonl", agreed_only=True, enqueue_job=False)
    assert sorted(q.text for q in export_questions_of(every)) == sorted([agreed.text, disputed.text, single.text])
    assert [q.text for q in export_questions_of(only_agreed)] == ["agreed one"]
    assert only_agreed.filters == {"statuses": ["approved", "relabeled"], "agreed_only": True}
