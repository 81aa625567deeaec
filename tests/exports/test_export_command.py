"""manage.py export: the API's writers and split from the shell, recorded as an Export; round trips with import."""

import io
import json
import zipfile

import pytest
from django.core.management import CommandError, call_command

from datasets.exports import export_files, export_folder
from datasets.formats import WRITERS
from datasets.models import Export, IntentNode, Question

EXPORTABLE = 9  # approved or relabeled questions of the known dataset


def export(*args) -> str:
    out = io.StringIO()
    call_command("export", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


# The triplets formats write hard negatives only, which the known dataset has none of: refused (below).
@pytest.mark.parametrize("format", [name for name in WRITERS if not name.startswith("triplets")])
def test_every_format_exports_to_a_file_or_folder_and_is_recorded(known_dataset, tmp_path, format):
    output = tmp_path / "out"
    said = export("--topic", "Customer Care", "--format", format, "--output", str(output))
    recorded = Export.objects.get()
    assert (recorded.status, recorded.format, recorded.topic) == ("succeeded", format, known_dataset)
    assert said.startswith(f"Export #{recorded.pk} ({format}) of 'Customer Care': ")
    assert output.exists()
    if output.is_dir():  # several files: the export's folder as it is
        assert sorted(p.name for p in output.iterdir()) == sorted(f.name for f in export_files(recorded))
    else:  # one data file, byte for byte
        (data,) = [f.name for f in export_files(recorded) if f.name.startswith(("train.", "questions."))]
        assert output.read_bytes() == (export_folder(recorded) / data).read_bytes()


@pytest.mark.parametrize("format", ["jsonl", "csv"])
def test_an_export_imports_into_a_new_topic_with_the_same_taxonomy_and_questions(known_dataset, make_topic,
                                                                                  tmp_path, format):
    output = tmp_path / f"questions.{format}"
    export("--topic", str(known_dataset.pk), "--format", format, "--output", str(output))
    copy = make_topic("Copy")
    call_command("import", str(output), "--topic", "Copy", "--format", format, "--create-intents",
                 stdout=io.StringIO(), stderr=io.StringIO())

    def tree(topic):
        return sorted(IntentNode.objects.filter(topic=topic, questions__isnull=False).values_list(
            "number", "name").distinct())

    original = Question.objects.filter(topic=known_dataset, status__in=["approved", "relabeled"])
    assert questions(copy, "intent__number") == sorted(original.values_list("text", "intent__number"))
    assert tree(copy) == tree(known_dataset)


def questions(topic, intent_field):
    return sorted(Question.objects.filter(topic=topic).values_list("text", intent_field))


def test_an_alpaca_export_imports_with_each_question_under_its_intents_name(known_dataset, make_topic, tmp_path):
    """Alpaca's output is the intent's numbered name only ("1.1 Refunds"): the questions come back
    under intents of the same names, created as root intents (the tree above them is not in the file)."""
    output = tmp_path / "questions.json"
    export("--topic", "Customer Care", "--format", "alpaca", "--output", str(output))
    copy = make_topic("Copy")
    call_command("import", str(output), "--topic", "Copy", "--format", "alpaca", "--create-intents",
                 stdout=io.StringIO(), stderr=io.StringIO())
    original = Question.objects.filter(topic=known_dataset, status__in=["approved", "relabeled"])
    assert questions(copy, "intent__name") == sorted(original.values_list("text", "intent__name"))
    assert set(IntentNode.objects.filter(topic=copy).values_list("depth", flat=True)) == {1}


def test_a_split_export_to_a_zip_holds_each_part_and_the_label_map(known_dataset, tmp_path):
    output = tmp_path / "data.zip"
    said = export("--topic", "Customer Care", "--format", "jsonl", "--output", str(output), "--split", "0.5,0.5",
                  "--seed", "7")
    names = sorted(zipfile.ZipFile(output).namelist())
    assert names == ["labels.json", "test.jsonl", "train.jsonl"]
    counts = Export.objects.get().counts
    assert sum(counts.values()) == EXPORTABLE and set(counts) == {"train", "test"}
    assert f"train {counts['train']}" in said and f"test {counts['test']}" in said


def test_assigned_split_keeps_each_questions_own_split(known_dataset, tmp_path):
    Question.objects.filter(topic=known_dataset, text="I forgot my password").update(split="test")
    output = tmp_path / "parts"
    export("--topic", "Customer Care", "--format", "jsonl", "--output", str(output), "--split", "assigned")
    test_rows = [json.loads(line)["question"] for line in (output / "test.jsonl").read_text().splitlines()]
    assert "I forgot my password" in test_rows


@pytest.mark.parametrize("args, message", [
    (["--topic", "Nope", "--format", "jsonl"], "No topic named 'Nope' (or with that id)."),
    (["--topic", "١", "--format", "jsonl"], "No topic named '١' (or with that id)."),
    (["--topic", "Customer Care", "--format", "jsonl", "--split", "0.8,0.8"], "must add up to 1"),
    (["--topic", "Customer Care", "--format", "jsonl", "--split", "a,b"], "--split ratios must be numbers"),
    (["--topic", "Customer Care", "--format", "jsonl", "--statuses", "good"], "Unknown status 'good'"),
    (["--topic", "Customer Care", "--format", "xml"], "invalid choice: 'xml'"),
])
def test_bad_input_is_one_line_and_writes_nothing(known_dataset, tmp_path, args, message):
    output = tmp_path / "out.jsonl"
    with pytest.raises(CommandError) as refused:
        export(*args, "--output", str(output))
    assert message in str(refused.value)
    assert not Export.objects.exists() and not output.exists()


def test_an_output_in_a_missing_folder_is_refused_before_anything_is_written(known_dataset, tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        export("--topic", "Customer Care", "--format", "jsonl", "--output", str(tmp_path / "no" / "x.jsonl"))
    assert not Export.objects.exists()


@pytest.mark.parametrize("args, message", [
    (["--format", "jsonl", "--statuses", "flagged"],
     "Nothing to export: no question of 'Customer Care' has status flagged, outside out-of-scope intents."),
    (["--format", "triplets"], "Nothing to export: the triplets format writes only the hard negatives"),
])
def test_an_export_that_matches_nothing_is_refused_before_a_job_starts(known_dataset, tmp_path, args, message):
    output = tmp_path / "out.jsonl"
    with pytest.raises(CommandError) as refused:
        export("--topic", "Customer Care", *args, "--output", str(output))
    assert str(refused.value).startswith(message)
    assert not Export.objects.exists() and not output.exists()
