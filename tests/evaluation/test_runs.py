"""An evaluation run end to end on a small topic: what it stores, its figures, its model and its bad inputs."""

import numpy as np
import pytest

from datasets.models import Question
from datasets.services import DatasetError
from datasets.splits import split_plan
from evaluation.backends import TfidfSvmBackend, backend_load
from evaluation.models import Evaluation, LabelIssue
from evaluation.services import evaluation_create, evaluation_files_local, evaluation_predict, evaluation_run


def run(topic, **options):
    evaluation = evaluation_create(topic=topic, enqueue=False, **options)
    assert evaluation_run(evaluation_id=evaluation.pk) is True
    evaluation.refresh_from_db()
    return evaluation


def test_it_trains_tests_and_stores_every_figure(topic, small_topic):
    evaluation = run(topic)
    assert evaluation.status == "succeeded", evaluation.error
    m = evaluation.metrics
    reviewed = set(Question.objects.filter(topic=topic).values_list("pk", flat=True))
    with np.load(evaluation_files_local(evaluation) / "questions.npz", allow_pickle=False) as ids:
        train, test = set(ids["train_ids"].tolist()), set(ids["test_ids"].tolist())
    assert not train & test and train | test == reviewed
    assert (evaluation.train_count, evaluation.test_count) == (len(train), len(test)) == (m["train_count"], m["test_count"])
    assert evaluation.intent_count == m["intent_count"] == 5
    # The export's stratified plan (80/20, seed 42) places the unassigned questions: the same test set.
    rows = Question.objects.filter(topic=topic).order_by("intent_id", "pk").values_list("intent_id", "text", "pk")
    planner = split_plan(rows=[(i, t) for i, t, _ in rows], ratios={"train": 0.8, "test": 0.2}, seed=42)
    assert test == {pk for _, text, pk in rows if planner.split_of(text) == "test"}
    assert {Question.objects.get(pk=pk).intent_id for pk in test} == {i.pk for i in small_topic.values()}
    assert m["accuracy"] == 1.0 and m["macro_f1"] == 1.0
    assert sorted(row["name"] for row in m["per_intent"]) == sorted(small_topic)
    assert all(row["f1"] == 1.0 for row in m["per_intent"]) and sum(row["support"] for row in m["per_intent"]) == len(test)
    assert m["levels"] == [{"level": 1, "accuracy": 1.0}, {"level": 2, "accuracy": 1.0}]
    assert m["gates"]["passed"] is True and m["gates"]["intent"]["failing"] == []
    assert m["out_of_scope"] is None
    assert [p["per_intent"] for p in m["learning_curve"]] == [10, "all"]
    assert m["learning_curve"][0]["examples"] == 50 and m["learning_curve"][1]["examples"] == len(train)
    assert m["label_issues"]["checked"] == len(reviewed)
    assert evaluation.stage == "done" and evaluation.percent == 100
    assert set(evaluation.timings) >= {"read", "train", "cross_validation", "test", "learning_curve", "total"}


def test_a_flipped_label_is_the_first_likely_error(topic, small_topic):
    question = Question.objects.get(topic=topic, text="I need a refund")
    Question.objects.filter(pk=question.pk).update(intent=small_topic["Reset Password"])
    evaluation = run(topic, learning_curve=False)
    first = LabelIssue.objects.filter(evaluation=evaluation).order_by("rank").first()
    assert (first.question_id, first.given_intent_id, first.suggested_intent_id) == (
        question.pk, small_topic["Reset Password"].pk, small_topic["Refunds"].pk)
    assert first.rank == 1 and first.confidence > first.given_confidence


def test_the_model_saved_is_the_model_trained_and_predicts_top_three(topic, small_topic):
    evaluation = run(topic, learning_curve=False, label_issues=False)
    folder = evaluation_files_local(evaluation)
    assert sorted(p.name for p in folder.iterdir()) == ["arrays.npz", "model.json", "questions.npz"]
    model = backend_load(folder)
    assert isinstance(model, TfidfSvmBackend) and model.beta > 0
    [answer] = evaluation_predict(evaluation=evaluation, texts=["I forgot my password"])
    assert [i["name"] for i in answer["intents"]][0] == "Reset Password"
    assert len(answer["intents"]) == 3
    confidences = [i["confidence"] for i in answer["intents"]]
    assert confidences == sorted(confidences, reverse=True) and 0 < sum(confidences) <= 1.0001


def test_specs_select_by_source_and_split(topic, small_topic):
    refunds = small_topic["Refunds"]
    Question.objects.filter(topic=topic, text__startswith="where is my").update(source=Question.Source.IMPORTED)
    evaluation = run(topic, train_spec="source=generated", test_spec="source=imported", learning_curve=False,
                     label_issues=False)
    assert evaluation.test_count == Question.objects.filter(source="imported").count() == 15
    assert evaluation.train_count == 105
    Question.objects.filter(topic=topic).update(split="train")
    Question.objects.filter(topic=topic, text__startswith="help me").update(split="test")
    Question.objects.filter(intent=refunds, text__startswith="how do").update(split="validation")
    evaluation = run(topic, train_spec="split=train,validation", test_spec="split=test", learning_curve=False,
                     label_issues=False)
    assert (evaluation.train_count, evaluation.test_count) == (105, 15)


def test_the_default_plan_keeps_assigned_splits(topic, small_topic):
    Question.objects.filter(topic=topic).update(split="train")
    assigned_test = Question.objects.filter(topic=topic, text__startswith="help me")
    assigned_test.update(split="test")
    evaluation = run(topic, learning_curve=False, label_issues=False)
    with np.load(evaluation_files_local(evaluation) / "questions.npz", allow_pickle=False) as ids:
        assert set(ids["test_ids"].tolist()) == set(assigned_test.values_list("pk", flat=True))


def test_out_of_scope_intents_are_left_out_unless_asked(topic, small_topic, make_intent, make_question):
    oos = make_intent(topic, "Out Of Scope")
    oos.out_of_scope = True
    oos.save()
    for word, frame in zip(["weather", "joke", "song", "recipe", "movie", "poem", "news", "sport", "game", "car"],
                           ["tell me the {}", "what is a good {}", "any {} today", "give me a {}", "{} please"] * 2,
                           strict=True):
        make_question(oos, frame.format(word), status="approved")
    assert run(topic, learning_curve=False, label_issues=False).intent_count == 5
    evaluation = run(topic, learning_curve=False, label_issues=False, include_out_of_scope=True)
    assert evaluation.intent_count == 6
    assert evaluation.metrics["out_of_scope"]["support"] == 2


@pytest.mark.parametrize("options, message", [
    ({"train_spec": "split=training", "test_spec": "split=test"},
     "Unknown split 'training' in the train SPEC: use train, validation, test, none."),
    ({"train_spec": "source=generated", "test_spec": "source=scraped"},
     "Unknown source 'scraped' in the test SPEC: use generated, imported, captured, manual, augmented."),
    ({"train_spec": "colour=red", "test_spec": "split=test"},
     "The train SPEC 'colour=red' has 'colour=red': write key=value[,value], with key one of split, status, "
     "source (e.g. split=train,validation)."),
    ({"train_spec": "split=train", "test_spec": "split=test"}, "The test SPEC selects no questions: the test set is empty."),
    ({"train_spec": "split=train"}, "Give both --train and --test SPECs, or neither (the default plan)."),
])
def test_bad_specs_are_refused_and_nothing_is_created(topic, small_topic, options, message):
    Question.objects.filter(topic=topic).update(split="train")
    with pytest.raises(DatasetError) as caught:
        evaluation_create(topic=topic, enqueue=False, **options)
    assert caught.value.message == message
    assert Evaluation.objects.count() == 0


def test_a_topic_with_nothing_approved_is_refused(topic, small_topic):
    Question.objects.filter(topic=topic).update(status="pending")
    with pytest.raises(DatasetError) as caught:
        evaluation_create(topic=topic, enqueue=False)
    assert caught.value.message == ("Topic 'Customer Support' has no approved or relabeled questions to evaluate on; "
                                    "review some first.")
    assert Evaluation.objects.count() == 0


def test_a_single_intent_is_refused(topic, small_topic):
    Question.objects.filter(topic=topic).exclude(intent=small_topic["Refunds"]).update(status="rejected")
    with pytest.raises(DatasetError) as caught:
        evaluation_create(topic=topic, enqueue=False)
    assert caught.value.message == ("An evaluation needs questions of at least two intents to train on; topic "
                                    "'Customer Support' has 1 (only 'Refunds').")
    assert Evaluation.objects.count() == 0


def test_an_intent_with_one_example_is_named(topic, small_topic):
    Question.objects.filter(intent=small_topic["Invoices"]).exclude(text="I need a invoice").update(status="rejected")
    with pytest.raises(DatasetError) as caught:
        evaluation_create(topic=topic, enqueue=False)
    assert caught.value.message == ("Intent 'Invoices' has fewer than two training examples: add or approve more, "
                                    "or leave it out.")
    assert caught.value.details == {"intents": [small_topic["Invoices"].pk]}
    assert Evaluation.objects.count() == 0


def test_it_runs_once_when_delivered_twice(topic, small_topic):
    evaluation = run(topic, learning_curve=False, label_issues=False)
    finished = evaluation.finished_at
    assert evaluation_run(evaluation_id=evaluation.pk) is False
    evaluation.refresh_from_db()
    assert evaluation.finished_at == finished and evaluation.status == "succeeded"
