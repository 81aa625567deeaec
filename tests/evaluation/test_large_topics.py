"""Large topics: above the per-intent cap the model is fitted on a seeded sample, the rest is scored in chunks.

A cap of 10 on the small topic (24 questions per intent) stands in for 500 on a large one; a
chunk of 7 questions and no held rows force the chunked paths a million-question topic takes.
"""

import numpy as np
import pytest

from datasets.models import Question
from datasets.services import DatasetError
from evaluation import services
from evaluation.models import Evaluation, LabelIssue
from evaluation.selectors import evaluation_data, seeded_priority, spec_parse
from evaluation.services import evaluation_create, evaluation_files_local, evaluation_run

CAP = 10


@pytest.fixture
def assigned(topic, small_topic):
    """Every fifth question (by id) is a test question, the others training questions."""
    for number, pk in enumerate(Question.objects.filter(topic=topic).order_by("pk").values_list("pk", flat=True)):
        Question.objects.filter(pk=pk).update(split="test" if number % 5 == 0 else "train")
    return small_topic


def bottom(ids, size, seed=42):
    return set(sorted(ids, key=lambda pk: seeded_priority(pk, seed))[:size])


def side(topic, split, intent):
    return list(Question.objects.filter(topic=topic, split=split, intent=intent).values_list("pk", flat=True))


def test_the_training_sample_is_the_seeded_bottom_of_each_intent_and_texts_stay_bounded(topic, assigned):
    data = evaluation_data(topic=topic, train=spec_parse("split=train"), test=spec_parse("split=test", side="test"),
                           include_out_of_scope=False, seed=42, cap=CAP)
    expected = set().union(*(bottom(side(topic, "train", intent), CAP) for intent in assigned.values()))
    assert set(data.train_ids) == expected and len(data.train_texts) == len(data.train_ids) == 5 * CAP
    assert data.train_texts == [Question.objects.get(pk=pk).text for pk in data.train_ids]
    train_side = set(Question.objects.filter(topic=topic, split="train").values_list("pk", flat=True))
    assert set(data.capped_ids) == train_side - expected and len(data.capped_ids) == 96 - 50
    assert list(data.capped_labels) == [Question.objects.get(pk=pk).intent_id for pk in data.capped_ids]
    # The test side (24 questions, at most 5 per intent) is under the cap: the curve tests on all of it.
    assert list(data.test_ids) == list(Question.objects.filter(topic=topic, split="test")
                                       .order_by("intent_id", "pk").values_list("pk", flat=True))
    assert data.curve_test_positions == list(range(24)) and data.capped_intents == 5
    assert data.warnings == ["5 intent(s) have more than 10 training questions: the model is fitted on a seeded "
                             "sample of 10 per intent; 46 training questions were left out of the fit (they are "
                             "still checked for label errors)."]
    again = evaluation_data(topic=topic, train=spec_parse("split=train"), test=spec_parse("split=test", side="test"),
                            include_out_of_scope=False, seed=42, cap=CAP)
    other_seed = evaluation_data(topic=topic, train=spec_parse("split=train"),
                                 test=spec_parse("split=test", side="test"), include_out_of_scope=False, seed=7, cap=CAP)
    assert again.train_ids == data.train_ids and set(other_seed.train_ids) != expected


def test_above_the_cap_it_trains_on_the_sample_scores_in_chunks_and_finds_errors_outside_it(
        topic, assigned, monkeypatch):
    monkeypatch.setattr(services, "SCORE_CHUNK", 7)
    monkeypatch.setattr(services, "LABEL_ISSUES_HELD", 0)
    refunds, reset = assigned["Refunds"], assigned["Reset Password"]
    # A refund question left out of the fit once it is labelled Reset Password, and a refund test question.
    capped = next(pk for pk in side(topic, "train", refunds)
                  if pk not in bottom(side(topic, "train", reset) + [pk], CAP))
    tested = side(topic, "test", refunds)[0]
    Question.objects.filter(pk__in=[capped, tested]).update(intent=reset)
    evaluation = evaluation_create(topic=topic, enqueue=False, train_spec="split=train", test_spec="split=test",
                                   max_train_per_intent=CAP)
    evaluation_run(evaluation_id=evaluation.pk)
    evaluation.refresh_from_db()
    assert evaluation.status == "succeeded", evaluation.error
    assert evaluation.parameters["max_train_per_intent"] == CAP
    m = evaluation.metrics
    assert (evaluation.train_count, evaluation.test_count) == (50, 24)
    assert m["cap"] == {"max_train_per_intent": 10, "capped_intents": 5, "left_out": 46, "curve_test_count": 24}
    with np.load(evaluation_files_local(evaluation) / "questions.npz", allow_pickle=False) as ids:
        assert capped in ids["capped_ids"].tolist() and len(ids["capped_ids"]) == 46
        assert len(ids["train_ids"]) == 50 and tested in ids["test_ids"].tolist()
    # Scored 7 at a time: 23 of 24 test questions right (the flipped one is "wrong" by its given label).
    assert m["accuracy"] == round(23 / 24, 4)
    assert m["confusion_pairs"] == [{"intent": m["confusion_pairs"][0]["intent"], "predicted":
                                     m["confusion_pairs"][0]["predicted"], "count": 1,
                                     "examples": [Question.objects.get(pk=tested).text]}]
    assert m["learning_curve"] == [{"per_intent": "all", "examples": 50, "accuracy": round(23 / 24, 4)}]
    assert m["label_issues"]["checked"] == 120
    first_two = list(LabelIssue.objects.filter(evaluation=evaluation).order_by("rank")[:2]
                     .values_list("question_id", "given_intent_id", "suggested_intent_id"))
    assert sorted(first_two) == sorted([(capped, reset.pk, refunds.pk), (tested, reset.pk, refunds.pk)])


def test_a_cap_below_ten_is_refused(topic, small_topic):
    with pytest.raises(DatasetError) as caught:
        evaluation_create(topic=topic, enqueue=False, max_train_per_intent=5)
    assert caught.value.message == "max_train_per_intent must be a whole number of at least 10, got 5."
    assert Evaluation.objects.count() == 0
