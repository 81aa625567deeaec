"""The review queue: leases, ordering, expiry, and many reviewers at once."""

import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from datasets.models import Question
from datasets.services import intent_create
from labeling.services import question_lease_next


def next_url(topic, **params):
    return reverse("api-review-next") + "?" + "&".join(f"{k}={v}" for k, v in {"topic": topic.pk, **params}.items())


def test_the_next_question_is_reserved_for_the_reviewer(api, reviewer, topic, taxonomy, make_question):
    question = make_question(taxonomy["refunds"], "refund please")
    response = api(reviewer).get(next_url(topic))
    assert response.status_code == 200
    body = response.json()["question"]
    assert body["id"] == question.pk and body["leased_by"] == "rita"
    assert body["intent"]["path"] == "Customer Support -> 1 Billing -> 1.1 Refunds"
    question.refresh_from_db()
    assert question.leased_by == reviewer and question.lease_expires_at > timezone.now()


def test_a_reviewer_gets_their_own_reserved_question_back_rather_than_a_new_one(
        api, reviewer, topic, taxonomy, make_question):
    make_question(taxonomy["refunds"], "first")
    make_question(taxonomy["refunds"], "second")
    client = api(reviewer)
    first = client.get(next_url(topic)).json()["question"]["id"]
    assert client.get(next_url(topic)).json()["question"]["id"] == first


def test_two_reviewers_get_different_questions(api, reviewer, dataset_admin, topic, taxonomy, make_question):
    make_question(taxonomy["refunds"], "first")
    make_question(taxonomy["refunds"], "second")
    mine = api(reviewer).get(next_url(topic)).json()["question"]["id"]
    theirs = api(dataset_admin).get(next_url(topic)).json()["question"]["id"]
    assert mine != theirs


def test_an_abandoned_lease_frees_itself(api, reviewer, dataset_admin, topic, taxonomy, make_question):
    question = make_question(taxonomy["refunds"], "only one")
    question_lease_next(topic=topic, actor=reviewer)
    assert api(dataset_admin).get(next_url(topic)).json()["question"] is None
    Question.objects.filter(pk=question.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert api(dataset_admin).get(next_url(topic)).json()["question"]["id"] == question.pk


def test_captured_low_confidence_questions_come_first_lowest_confidence_first(
        reviewer, topic, taxonomy, make_question):
    make_question(taxonomy["refunds"], "generated one")
    make_question(taxonomy["refunds"], "captured sure-ish", source="captured", confidence=0.6)
    make_question(taxonomy["refunds"], "captured unsure", source="captured", confidence=0.2)
    order = []
    while (question := question_lease_next(topic=topic, actor=reviewer)) is not None:
        order.append(question.text)
        Question.objects.filter(pk=question.pk).update(status="approved", leased_by=None)
    assert order == ["captured unsure", "captured sure-ish", "generated one"]


def test_skipping_releases_the_question_and_offers_another(api, reviewer, topic, taxonomy, make_question):
    first = make_question(taxonomy["refunds"], "first")
    second = make_question(taxonomy["refunds"], "second")
    client = api(reviewer)
    assert client.get(next_url(topic)).json()["question"]["id"] == first.pk
    assert client.get(next_url(topic, skip=first.pk)).json()["question"]["id"] == second.pk
    first.refresh_from_db()
    assert first.leased_by is None


def test_the_next_question_says_how_many_this_reviewer_can_still_get(
        api, reviewer, dataset_admin, topic, taxonomy, make_question):
    make_question(taxonomy["refunds"], "mine next")
    make_question(taxonomy["refunds"], "free")
    make_question(taxonomy["refunds"], "decided", status="approved")
    make_question(taxonomy["password"], "outside the filter")
    taken = make_question(taxonomy["invoices"], "reserved for dora")
    Question.objects.filter(pk=taken.pk).update(leased_by=dataset_admin,
                                                lease_expires_at=timezone.now() + timedelta(minutes=5))
    body = api(reviewer).get(next_url(topic, intent=taxonomy["billing"].pk)).json()
    assert (body["question"]["text"], body["remaining"]) == ("mine next", 2)
    assert api(reviewer).get(next_url(topic)).json()["remaining"] == 3


def test_an_empty_queue_has_nothing_remaining(api, reviewer, topic, taxonomy):
    assert api(reviewer).get(next_url(topic)).json() == {"question": None, "remaining": 0}


def test_remaining_is_counted_up_to_a_cap(api, reviewer, topic, taxonomy, make_question, monkeypatch):
    from labeling import selectors

    monkeypatch.setattr(selectors, "REMAINING_COUNT_CAP", 2)
    for n in range(3):
        make_question(taxonomy["refunds"], f"question {n}")
    assert api(reviewer).get(next_url(topic)).json()["remaining"] == 2


def test_skipped_questions_come_back_after_the_rest_longest_skipped_first(
        api, reviewer, topic, taxonomy, make_question):
    first = make_question(taxonomy["refunds"], "first")
    second = make_question(taxonomy["refunds"], "second")
    client = api(reviewer)

    def next_id(*skipped):
        params = {"skip": ",".join(str(q.pk) for q in skipped)} if skipped else {}
        return client.get(next_url(topic, **params)).json()["question"]["id"]

    assert next_id() == first.pk
    assert next_id(first) == second.pk
    assert next_id(first, second) == first.pk  # nothing else left: the first one skipped comes back
    assert next_id(second, first) == second.pk  # skipped again: now it waits behind the second
    second.refresh_from_db()
    first.refresh_from_db()
    assert (second.leased_by, first.leased_by) == (reviewer, None)


def test_a_skipped_question_someone_else_holds_does_not_come_back(
        api, reviewer, dataset_admin, topic, taxonomy, make_question):
    first = make_question(taxonomy["refunds"], "first")
    client = api(reviewer)
    assert client.get(next_url(topic)).json()["question"]["id"] == first.pk
    assert client.get(next_url(topic, skip=first.pk)).json()["question"]["id"] == first.pk
    # Rita lets it lapse and dora takes it: rita passing it over again must not bring it back to her.
    Question.objects.filter(pk=first.pk).update(leased_by=dataset_admin,
                                                lease_expires_at=timezone.now() + timedelta(minutes=5))
    assert client.get(next_url(topic, skip=first.pk)).json() == {"question": None, "remaining": 0}


def test_a_decision_with_next_keeps_skipped_questions_behind_the_rest(
        api, reviewer, topic, taxonomy, make_question):
    first, second, third = (make_question(taxonomy["refunds"], text) for text in ("first", "second", "third"))
    client = api(reviewer)
    assert client.get(next_url(topic)).json()["question"]["id"] == first.pk
    assert client.get(next_url(topic, skip=first.pk)).json()["question"]["id"] == second.pk

    def decide(question):
        response = client.post(reverse("api-question-review", args=[question.pk]),
                               {"action": "approve", "version": 1, "next": True, "skip": [first.pk]}, format="json")
        assert response.status_code == 200
        return response.json()["next"]["id"]

    assert decide(second) == third.pk  # not the skipped first, although it heads the queue
    assert decide(third) == first.pk  # everything else decided: the skipped one comes back


def test_a_filter_narrows_the_queue_to_an_intent_subtree(api, reviewer, topic, taxonomy, make_question):
    make_question(taxonomy["refunds"], "refund")
    password = make_question(taxonomy["password"], "reset my password")
    response = api(reviewer).get(next_url(topic, intent=taxonomy["account"].pk))
    assert response.json()["question"]["id"] == password.pk


def test_the_next_question_lists_its_nearest_existing_questions_when_asked(api, reviewer, topic, taxonomy, make_question):
    make_question(taxonomy["refunds"], "I want a refund for my order", status="approved")
    make_question(taxonomy["password"], "How do I change my password", status="approved")
    make_question(taxonomy["refunds"], "I want a refund for my last order")
    similar = api(reviewer).get(next_url(topic, similar=1)).json()["question"]["similar"]
    assert [s["text"] for s in similar] == ["I want a refund for my order"]
    assert similar[0]["intent_number"] == "1.1" and 0.3 < similar[0]["score"] < 1


def lease_url(question):
    return reverse("api-review-lease", args=[question.pk])


def test_renewing_your_own_lease_extends_it(api, reviewer, topic, taxonomy, make_question, settings):
    settings.REVIEW_LEASE_SECONDS = 300
    question = make_question(taxonomy["refunds"], "refund please")
    question_lease_next(topic=topic, actor=reviewer)
    Question.objects.filter(pk=question.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=5))
    before = timezone.now()
    response = api(reviewer).post(lease_url(question))
    assert response.status_code == 200
    question.refresh_from_db()
    assert question.leased_by == reviewer
    assert before + timedelta(seconds=299) < question.lease_expires_at <= timezone.now() + timedelta(seconds=300)
    assert response.json() == {"question": question.pk, "leased_by": "rita",
                               "lease_expires_at": question.lease_expires_at.isoformat().replace("+00:00", "Z")}


def test_a_lapsed_lease_nobody_took_is_still_yours_to_renew(api, reviewer, topic, taxonomy, make_question):
    question = make_question(taxonomy["refunds"], "refund please")
    question_lease_next(topic=topic, actor=reviewer)
    Question.objects.filter(pk=question.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert api(reviewer).post(lease_url(question)).status_code == 200
    question.refresh_from_db()
    assert question.lease_expires_at > timezone.now()


def test_renewing_someone_elses_lease_answers_409_and_changes_nothing(
        api, reviewer, dataset_admin, topic, taxonomy, make_question):
    question = make_question(taxonomy["refunds"], "refund please")
    question_lease_next(topic=topic, actor=dataset_admin)
    question.refresh_from_db()
    expires = question.lease_expires_at
    response = api(reviewer).post(lease_url(question))
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "conflict", "message": f"Question {question.pk} is no longer reserved for you: dora has it now.",
        "details": {"leased_by": "dora", "status": "pending"}}
    question.refresh_from_db()
    assert (question.leased_by, question.lease_expires_at) == (dataset_admin, expires)


def test_a_decided_question_has_no_lease_to_renew(api, reviewer, topic, taxonomy, make_question):
    question = make_question(taxonomy["refunds"], "refund please")
    question_lease_next(topic=topic, actor=reviewer)
    api(reviewer).post(reverse("api-question-review", args=[question.pk]), {"action": "approve", "version": 1},
                       format="json")
    response = api(reviewer).post(lease_url(question))
    assert response.status_code == 409
    assert response.json()["error"]["message"] == (
        f"Question {question.pk} is no longer reserved for you: it is approved.")
    question.refresh_from_db()
    assert (question.leased_by, question.lease_expires_at) == (None, None)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_many_concurrent_reviewers_never_get_the_same_question():
    """16 reviewers on separate connections ask for 8 questions each at once: 128 distinct leases."""
    from datasets.models import Topic

    topic = Topic.objects.create(name="Concurrency")
    intent = intent_create(topic=topic, name="Anything")
    Question.objects.bulk_create([Question(topic=topic, intent=intent, text=f"question {n}", text_hash=f"{n:040d}")
                                  for n in range(200)])
    group = Group.objects.get(name="reviewer")
    reviewers = []
    for n in range(16):
        user = User.objects.create_user(username=f"reviewer{n}")
        user.groups.add(group)
        topic.reviewers.add(user)
        reviewers.append(user)
    handed_out: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(reviewers))

    def work(user):
        try:
            start.wait()
            for _ in range(8):
                question = question_lease_next(topic=topic, actor=user)
                handed_out.append((user.pk, question.pk))
                # Decide, so the next call hands out a new question instead of this one again.
                Question.objects.filter(pk=question.pk).update(status="approved", leased_by=None)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(user,)) for user in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    ids = [pk for _, pk in handed_out]
    assert len(ids) == 128
    assert len(set(ids)) == 128


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_http_requests_for_the_next_question_never_collide(live_server):
    """8 reviewers with tokens hit /review/next/ over HTTP at once, each holding what it got."""
    import json
    import urllib.request

    from rest_framework.authtoken.models import Token

    from datasets.models import Topic

    topic = Topic.objects.create(name="HTTP concurrency")
    intent = intent_create(topic=topic, name="Anything")
    Question.objects.bulk_create([Question(topic=topic, intent=intent, text=f"question {n}", text_hash=f"{n:040d}")
                                  for n in range(20)])
    group = Group.objects.get(name="reviewer")
    tokens = []
    for n in range(8):
        user = User.objects.create_user(username=f"http{n}")
        user.groups.add(group)
        topic.reviewers.add(user)
        tokens.append(Token.objects.create(user=user).key)
    got: list[int] = []
    start = threading.Barrier(len(tokens))

    def ask(token):
        request = urllib.request.Request(f"{live_server.url}/api/v1/review/next/?topic={topic.pk}&similar=0",
                                         headers={"Authorization": f"Token {token}"})
        start.wait()
        with urllib.request.urlopen(request, timeout=30) as response:
            got.append(json.load(response)["question"]["id"])

    threads = [threading.Thread(target=ask, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 8 and len(set(got)) == 8


def test_without_skip_locked_a_conditional_update_claims_the_question(
        api, reviewer, dataset_admin, topic, taxonomy, make_question, monkeypatch):
    """The path the SQLite demo takes: no SELECT ... FOR UPDATE SKIP LOCKED."""
    monkeypatch.setattr(connection.features, "has_select_for_update_skip_locked", False)
    first = make_question(taxonomy["refunds"], "first")
    second = make_question(taxonomy["refunds"], "second")
    assert question_lease_next(topic=topic, actor=reviewer).pk == first.pk
    assert question_lease_next(topic=topic, actor=dataset_admin).pk == second.pk
    assert question_lease_next(topic=topic, actor=reviewer).pk == first.pk  # still hers
    first.refresh_from_db()
    assert first.leased_by == reviewer
