import json

from django.core.management import call_command
from django.db.models import Count

from datasets.clinc150 import DEFAULT_PATH, SPLITS
from datasets.models import IntentNode, Question, Topic
from datasets.normalize import text_hash


def test_it_imports_clinc150_as_a_two_level_taxonomy_with_exact_counts(db, capsys):
    call_command("load_clinc150")
    topic = Topic.objects.get(name="CLINC150")
    assert capsys.readouterr().out.splitlines() == [
        "Loaded 'CLINC150': 10 domains, 150 intents and an out-of-scope intent, 23634 questions (66 repeated texts "
        "skipped, the first kept).",
        "Per CLINC150 list, created (repeats skipped): train 14973 (27), val 2984 (16), test 4477 (23), "
        "oos_train 100 (0), oos_val 100 (0), oos_test 1000 (0).",
    ]
    domains = json.loads((DEFAULT_PATH / "domains.json").read_text())
    data = json.loads((DEFAULT_PATH / "data_full.json").read_text())
    rows = [r for split in SPLITS for r in data[split]]
    unique_hashes = {text_hash(text) for text, _ in rows}

    assert IntentNode.objects.filter(topic=topic, depth=1, out_of_scope=False).count() == 10
    assert list(IntentNode.objects.filter(topic=topic, out_of_scope=True).values_list("number", "name", "depth")) == [
        ("11", "Out Of Scope", 1)]
    assert IntentNode.objects.filter(topic=topic, depth=2).count() == 150
    assert IntentNode.objects.filter(topic=topic, depth=2, parent__isnull=True).count() == 0
    # 150 intents x 150 sentences (train 100, val 20, test 30); 66 repeat another one once
    # case, whitespace and punctuation are folded, and the topic keeps one of each.
    assert len(rows) == 22_500 and len(unique_hashes) == 22_434
    in_scope = Question.objects.filter(topic=topic, intent__out_of_scope=False)
    assert in_scope.count() == 22_434
    # The official split (15,000 / 3,000 / 4,500 before the repeats are dropped), val as validation;
    # a repeated text keeps its first occurrence, in the order train, val, test.
    assert [len(data[s]) for s in SPLITS] == [15_000, 3_000, 4_500]
    assert dict(in_scope.values_list("split").annotate(n=Count("id")).order_by()) == {
        "train": 14_973, "validation": 2_984, "test": 4_477}
    out_of_scope = Question.objects.filter(topic=topic, intent__out_of_scope=True)
    assert dict(out_of_scope.values_list("split").annotate(n=Count("id")).order_by()) == {
        "train": 100, "validation": 100, "test": 1_000}
    assert set(Question.objects.filter(topic=topic).values_list("status", "source").distinct()) == {
        ("approved", "imported")}
    per_intent = in_scope.values("intent").annotate(n=Count("id")).values_list("n", flat=True)
    assert len(per_intent) == 150 and min(per_intent) >= 138 and max(per_intent) == 150
    # The review target is what an intent has, so the dashboard can show an intent complete.
    assert topic.target_per_intent == max(per_intent) == 150
    banking = IntentNode.objects.get(topic=topic, name="Banking")
    assert banking.number == "1"
    assert list(banking.children.values_list("name", flat=True))[:2] == [n.replace("_", " ").title()
                                                                          for n in domains["banking"][:2]]
    # Every domain's intents hang under it, numbered 1.1 .. 1.15.
    assert IntentNode.objects.get(topic=topic, number="1.15").parent == banking


def test_it_refuses_to_import_twice_but_if_missing_is_quiet(db, capsys):
    call_command("load_clinc150", topic="Demo")
    call_command("load_clinc150", topic="Demo", if_missing=True)
    assert "already loaded" in capsys.readouterr().out
    assert Topic.objects.filter(name="Demo").count() == 1
