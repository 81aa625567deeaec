import json

from django.core.management import call_command

from datasets.clinc150 import DEFAULT_PATH, SPLITS
from datasets.models import IntentNode, Question, Topic
from datasets.normalize import text_hash


def test_it_imports_clinc150_as_a_two_level_taxonomy_with_exact_counts(db):
    call_command("load_clinc150")
    topic = Topic.objects.get(name="CLINC150")
    domains = json.loads((DEFAULT_PATH / "domains.json").read_text())
    data = json.loads((DEFAULT_PATH / "data_full.json").read_text())
    rows = [r for split in SPLITS for r in data[split]]
    unique_hashes = {text_hash(text) for text, _ in rows}

    assert IntentNode.objects.filter(topic=topic, depth=1).count() == 10
    assert IntentNode.objects.filter(topic=topic, depth=2).count() == 150
    assert IntentNode.objects.filter(topic=topic, depth=2, parent__isnull=True).count() == 0
    assert Question.objects.filter(topic=topic).count() == len(unique_hashes)
    assert not Question.objects.filter(topic=topic).exclude(status="approved").exclude(source="imported").exists()
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
