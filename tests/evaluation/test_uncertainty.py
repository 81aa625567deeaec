"""How sure the figures are: 95 % intervals, gate verdicts that say when the test set cannot decide, and
whether two evaluations differ by more than test-set noise (McNemar on the same test questions)."""

import io
import json

import numpy as np
import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils.html import escape
from scipy.stats import binomtest, norm
from sklearn.metrics import f1_score

from config.storage import export_storage
from datasets.models import Question
from evaluation import metrics
from evaluation.comparison import accuracy_difference, mcnemar_exact
from evaluation.models import Evaluation
from evaluation.services import evaluation_create, evaluation_run
from tests.api.clients import api_as

# Three intents: 1 has 5 test questions at F1 0.8 (4 right, 1 taken for 3, one of 3's taken for it);
# 2 has 400 at F1 0.8 (320 right, 80 taken for 3, 80 of 3's taken for it); 3 has 600.
Y_TRUE = np.array([1] * 5 + [2] * 400 + [3] * 600)
Y_PRED = np.array([1] * 4 + [3] + [2] * 320 + [3] * 80 + [1] + [2] * 80 + [3] * 519)


def test_the_wilson_interval_is_the_hand_computed_one():
    # 90 of 100, z = 1.959964: centre (0.9 + z²/200) / (1 + z²/100) = 0.875954,
    # half-width z sqrt(0.9 x 0.1 / 100 + z²/40000) / (1 + z²/100) = 0.059568.
    assert [round(bound, 4) for bound in metrics.wilson_interval(90, 100)] == [0.8256, 0.9448]
    assert [round(bound, 4) for bound in metrics.wilson_interval(10, 10)] == [0.7225, 1.0]
    assert metrics.wilson_interval(0, 10)[0] == 0.0 and metrics.wilson_interval(0, 0) is None


def test_the_bootstrap_is_the_same_for_a_seed_and_contains_the_point_estimates():
    intervals, macro = metrics.bootstrap_f1_intervals(Y_TRUE, Y_PRED, seed=42)
    assert metrics.bootstrap_f1_intervals(Y_TRUE, Y_PRED, seed=42) == (intervals, macro)
    assert intervals == {1: [0.5, 1.0], 2: [0.7694, 0.8296], 3: [0.845, 0.8847]}
    assert macro == [0.7228, 0.9059]  # the upper bound: the per-intent intervals combined (intent 1's 0.5 wide)
    points = f1_score(Y_TRUE, Y_PRED, labels=[1, 2, 3], average=None)
    assert all(intervals[label][0] <= point <= intervals[label][1] for label, point in zip([1, 2, 3], points, strict=True))
    assert macro[0] <= f1_score(Y_TRUE, Y_PRED, average="macro") <= macro[1]


def test_an_intent_with_no_error_on_five_questions_is_not_sure_to_pass():
    # A bootstrap alone draws only what it saw ([1, 1]); the Wilson bound of 5/5 recall gives F1 0.7225.
    labels = np.array([1] * 5 + [2] * 5)
    intervals, macro = metrics.bootstrap_f1_intervals(labels, labels, seed=1)
    assert intervals == {1: [0.7225, 1.0], 2: [0.7225, 1.0]}
    assert metrics.gate_verdict(intervals[1], 0.85) == "uncertain"
    # Nor a macro-F1 of 1.0 on 10 questions: sigma_i = 0.2775 / 3.92 each, the mean's 1.96 sqrt(2) sigma_i / 2.
    assert macro == [0.9019, 1.0]


def test_few_test_questions_make_an_intent_uncertain_and_many_make_it_fail():
    rows = metrics.per_intent_scores(Y_TRUE, Y_PRED, {})
    metrics.intent_gate_verdicts(rows, metrics.bootstrap_f1_intervals(Y_TRUE, Y_PRED, seed=42)[0], 0.85)
    by_id = {row["id"]: row for row in rows}
    assert (by_id[1]["f1"], by_id[1]["support"], by_id[1]["gate"]) == (0.8, 5, "uncertain")
    assert (by_id[2]["f1"], by_id[2]["support"], by_id[2]["gate"]) == (0.8, 400, "fail")
    gates = metrics.gates(accuracy=0.8388, per_intent=rows, gate_accuracy=0.9, gate_intent=0.85,
                          accuracy_interval=[0.8148, 0.8602])
    # What existing clients read is unchanged: the point estimates against the thresholds.
    assert gates["passed"] is False and gates["intent"]["passed"] is False
    assert [row["id"] for row in gates["intent"]["failing"]] == [1, 2] and gates["intent"]["failing_count"] == 2
    assert gates["accuracy"] == {"threshold": 0.9, "value": 0.8388, "passed": False,
                                 "interval": [0.8148, 0.8602], "verdict": "fail"}
    # 1: the upper side (0.2 from 0.8) must shrink to 0.05: 5 x 4² = 80 questions, 75 more.
    assert gates["intent"]["uncertain"] == [
        {"id": 1, "number": "", "name": "#1", "f1": 0.8, "f1_interval": [0.5, 1.0], "support": 5,
         "more_test_questions": 75},
        {"id": 3, "number": "", "name": "#3", "f1": 0.865, "f1_interval": [0.845, 0.8847], "support": 600,
         "more_test_questions": 467}]
    assert gates["intent"]["verdicts"] == {"pass": 0, "uncertain": 2, "fail": 1}


def test_an_f1_on_the_gate_cannot_be_settled_by_more_questions():
    assert metrics.more_test_questions(value=0.85, interval=[0.8, 0.9], support=40, threshold=0.85) is None
    assert metrics.more_test_questions(value=0.9, interval=[0.8, 0.95], support=40, threshold=0.85) == 120


def test_the_mcnemar_p_value_is_scipys_binomial_test_of_the_discordant_pairs():
    correct_a = np.array([True] * 50 + [True] * 3 + [False] * 12 + [False] * 5)
    correct_b = np.array([True] * 50 + [False] * 3 + [True] * 12 + [False] * 5)
    only_a, only_b, p_value = mcnemar_exact(correct_a, correct_b)
    assert (only_a, only_b) == (3, 12)
    assert p_value == binomtest(3, 15, 0.5).pvalue == pytest.approx(0.03515625)
    assert mcnemar_exact(correct_a, correct_a) == (0, 0, 1.0)


# Whole evaluations of the small topic ------------------------------------------------------------

def run(topic):
    evaluation = evaluation_create(topic=topic, enqueue=False, learning_curve=False, label_issues=False)
    evaluation_run(evaluation_id=evaluation.pk)
    evaluation.refresh_from_db()
    assert evaluation.status == "succeeded", evaluation.error
    return evaluation


@pytest.fixture
def before_and_after(topic, small_topic):
    """Two evaluations on the same 15 test questions ("where is my ..."): before, and after the training
    questions of Refunds and Invoices swapped their intents (so their 6 test questions go wrong)."""
    Question.objects.filter(topic=topic).update(split="train")
    Question.objects.filter(topic=topic, text__startswith="where is my").update(split="test")
    before = run(topic)
    refunds, invoices = small_topic["Refunds"], small_topic["Invoices"]
    train = Question.objects.filter(topic=topic, split="train")
    refund_ids = list(train.filter(intent=refunds).values_list("pk", flat=True))
    train.filter(intent=invoices).update(intent=refunds)
    Question.objects.filter(pk__in=refund_ids).update(intent=invoices)
    return before, run(topic)


def test_two_evaluations_on_the_same_questions_are_compared_with_mcnemar(before_and_after, reviewer, other_reviewer):
    before, after = before_and_after
    assert (before.metrics["accuracy"], after.metrics["accuracy"]) == (1.0, 0.6)
    difference = accuracy_difference(a=before, b=after)
    assert difference == {
        "a": before.pk, "b": after.pk, "difference": -0.4, "same_test_set": True, "test": "mcnemar",
        "p_value": 0.03125, "significant": True, "only_a_right": 6, "only_b_right": 0,
        "note": f"Same 15 test questions: #{before.pk} alone got 6 right, #{after.pk} alone 0; McNemar's exact "
                "test p = 0.03125: the difference is significant at 0.05."}
    assert difference["p_value"] == binomtest(6, 6, 0.5).pvalue
    answer = api_as(reviewer).get(reverse("api-evaluation-compare") + f"?a={before.pk}&b={after.pk}")
    assert answer.status_code == 200 and answer.json() == difference
    assert api_as(other_reviewer).get(reverse("api-evaluation-compare") + f"?a={before.pk}&b={after.pk}").status_code == 404
    refused = api_as(reviewer).get(reverse("api-evaluation-compare") + f"?a={before.pk}&b=x")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_parameter"
    client = Client()
    client.force_login(reviewer)
    html = client.get(reverse("evaluation:compare") + f"?a={before.pk}&b={after.pk}").content.decode()
    assert (f'#{after.pk} − #{before.pk}: <b>-0.4000</b>\n  <span class="chip warn">significant</span>\n  p = 0.0312'
            in html)
    assert escape(difference["note"]) in html
    # Ids in other digits or past a bigint: not found, not a 500 (int() read "١" as 1).
    for bad in ("\u0661", "99999999999999999999"):
        assert client.get(reverse("evaluation:compare"), {"a": bad, "b": after.pk}).status_code == 404
    assert client.get(reverse("evaluation:compare"), {"a": "1\x00", "b": after.pk}).status_code == 400  # refused first


def test_an_evaluation_on_other_questions_is_compared_without_pairing(before_and_after, topic):
    before, after = before_and_after
    Question.objects.filter(topic=topic, text__startswith="help me with").update(split="test")
    other = run(topic)
    difference = accuracy_difference(a=after, b=other)
    right_a, right_b = 9, round(other.metrics["accuracy"] * 30)
    pooled = (right_a + right_b) / 45
    z = (right_b / 30 - right_a / 15) / np.sqrt(pooled * (1 - pooled) * (1 / 15 + 1 / 30))
    assert (difference["same_test_set"], difference["test"], difference["only_a_right"]) == (False, "two_proportion",
                                                                                              None)
    assert difference["p_value"] == round(float(2 * norm.sf(abs(z))), 6)
    assert difference["note"].startswith("The test sets differ (15 and 30 questions, 15 in common), so part of any "
                                         "difference is the questions, not the models; two-proportion z-test")


def test_new_figures_reach_the_api_the_page_and_the_cli(before_and_after, topic, reviewer, capsys):
    _, after = before_and_after
    m = after.metrics
    assert m["accuracy_interval"] == [round(b, 4) for b in metrics.wilson_interval(9, 15)] == [0.3575, 0.8018]
    assert m["intervals"] == {"confidence": 0.95, "accuracy": "wilson", "f1": "bootstrap, stratified by intent",
                              "resamples": 1000, "seed": 42}
    by_name = {row["name"]: row for row in m["per_intent"]}
    assert by_name["Refunds"]["f1"] == 0.0 and by_name["Refunds"]["gate"] == "fail"
    # 3 test questions, all right: no bootstrap error, but 3/3 cannot show F1 >= 0.85.
    assert by_name["Reset Password"]["f1"] == 1.0 and by_name["Reset Password"]["gate"] == "uncertain"
    assert m["gates"]["intent"]["verdicts"] == {"pass": 0, "uncertain": 3, "fail": 2}
    # Old fields, old meaning.
    assert m["gates"]["passed"] is False and m["gates"]["intent"]["failing_count"] == 2
    assert {row["name"] for row in m["gates"]["intent"]["failing"]} == {"Refunds", "Invoices"}
    assert api_as(reviewer).get(reverse("api-evaluation-detail", args=[after.pk])).json()["metrics"] == m

    client = Client()
    client.force_login(reviewer)
    html = client.get(reverse("evaluation:page", args=[after.pk])).content.decode()
    assert "<b>Accuracy 0.600 (0.358–0.802)</b>" in html
    assert html.count('class="f1-whisker"') == 5 and html.count('class="f1-row uncertain"') == 3
    assert html.count('class="f1-row failing"') == 2
    low, high = by_name["Reset Password"]["f1_interval"]
    assert f'1.000 ({low:.3f}–{high:.3f}) <span class="chip uncertain">uncertain</span>' in html
    listed = client.get(reverse("evaluation:list", args=[topic.pk])).content.decode()
    assert '<span class="chip warn">fail</span> <span class="chip uncertain">3 uncertain</span>' in listed
    # An F1 a hair from the gate would need a test set no one has: said so, not as a six-digit count.
    stored = after.metrics
    after.metrics = {**stored, "gates": {**stored["gates"], "intent": {**stored["gates"]["intent"], "uncertain": [
        {**stored["gates"]["intent"]["uncertain"][0], "more_test_questions": 137191}]}}}
    after.save(update_fields=["metrics"])
    html = client.get(reverse("evaluation:page", args=[after.pk])).content.decode()
    assert "too close to the gate for more test questions to settle it soon" in html and "137191" not in html
    after.metrics = stored
    after.save(update_fields=["metrics"])

    call_command("evaluate", "--topic", topic.name, "--wait", "--no-learning-curve", "--no-label-issues")
    out = capsys.readouterr().out
    latest = Evaluation.objects.latest("id").metrics
    a_low, a_high = latest["accuracy_interval"]
    assert f"  accuracy 0.6000 ({a_low:.4f}–{a_high:.4f}) (gate 0.9: FAIL)" in out
    assert "  by 95 % interval: 0 pass, 2 fail, 3 uncertain (the interval contains the gate)\n" in out
    uncertain = latest["gates"]["intent"]["uncertain"][0]
    assert (f"    uncertain: {uncertain['name']} F1 1.0000 ({uncertain['f1_interval'][0]:.4f}–1.0000), n=3; about "
            f"{uncertain['more_test_questions']} more test questions would settle it") in out


def test_an_evaluation_stored_before_the_intervals_still_renders_and_compares(before_and_after, reviewer):
    before, after = before_and_after
    old = {key: value for key, value in before.metrics.items()
           if key not in ("accuracy_interval", "macro_f1_interval", "intervals")}
    old["per_intent"] = [{k: v for k, v in row.items() if k not in ("f1_interval", "gate")} for row in old["per_intent"]]
    old["gates"] = {**old["gates"], "accuracy": {k: v for k, v in old["gates"]["accuracy"].items()
                                                 if k in ("threshold", "value", "passed")},
                    "intent": {k: v for k, v in old["gates"]["intent"].items()
                               if k in ("threshold", "passed", "failing", "failing_count")}}
    Evaluation.objects.filter(pk=before.pk).update(metrics=old)
    # Its questions.npz as it was stored then: the ids, no labels or predictions.
    storage, name = export_storage(), f"{before.model_folder}/questions.npz"
    with storage.open(name, "rb") as stored, np.load(io.BytesIO(stored.read())) as arrays:
        ids = {key: arrays[key] for key in ("train_ids", "test_ids", "capped_ids")}
    storage.delete(name)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **ids)
    storage.save(name, io.BytesIO(buffer.getvalue()))
    before.refresh_from_db()

    client = Client()
    client.force_login(reviewer)
    page = client.get(reverse("evaluation:page", args=[before.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "<b>Accuracy 1.0</b>" in html and 'class="f1-whisker"' not in html and 'class="chip uncertain"' not in html
    assert html.count('class="f1-row"') == 5
    difference = accuracy_difference(a=before, b=after)
    assert (difference["same_test_set"], difference["test"]) == (True, "two_proportion")
    assert difference["note"].startswith("Same test questions, but one was stored before per-question outcomes "
                                         "were kept; two-proportion z-test (unpaired) p = ")
    compare = client.get(reverse("evaluation:compare") + f"?a={before.pk}&b={after.pk}")
    assert compare.status_code == 200 and json.dumps(difference["difference"]) == "-0.4"


def test_the_comparison_reads_only_the_questions_file_from_the_object_store(topic, small_topic, bucket, settings,
                                                                              tmp_path):
    first, second = run(topic), run(topic)  # the same data and seed: the same test questions and answers
    assert {f"evaluations/{e.pk}/questions.npz" for e in (first, second)} <= set(bucket.keys())
    settings.EXPORT_ROOT = tmp_path / "web"  # another machine: no local copy of anything
    difference = accuracy_difference(a=first, b=second)
    assert (difference["same_test_set"], difference["test"], difference["p_value"], difference["significant"]) == (
        True, "mcnemar", 1.0, False)
    assert (difference["only_a_right"], difference["only_b_right"]) == (0, 0)
    assert not (tmp_path / "web").exists()  # the models were not fetched to compare
    bucket.client.delete_object(Bucket=bucket.name, Key=f"evaluations/{second.pk}/questions.npz")
    missing = accuracy_difference(a=first, b=second)
    assert (missing["same_test_set"], missing["test"]) == (None, "two_proportion")
    assert missing["note"].startswith("The test questions of one of them are not stored; two-proportion z-test")
