"""Every format's exact output for the known dataset, against the golden files.

Regenerate after an intended change with `UPDATE_GOLDEN=1` and read the diff before committing.
"""

import io
import json
import os
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from datasets.exports import export_archive_stream
from datasets.formats import WRITERS
from datasets.jobs import export_run
from datasets.models import Export, IntentNode
from datasets.services import DatasetError

GOLDEN = Path(__file__).parent / "golden"


def run_export(topic, **fields) -> Export:
    fields.setdefault("filters", {"statuses": ["approved", "relabeled"]})
    export = Export.objects.create(topic=topic, **fields)
    export_run(export.pk)
    export.refresh_from_db()
    return export


def assert_matches_golden(folder: Path, golden: Path):
    produced = sorted(p.name for p in folder.iterdir())
    if os.environ.get("UPDATE_GOLDEN"):
        golden.mkdir(parents=True, exist_ok=True)
        for stale in golden.iterdir():
            stale.unlink()
        for name in produced:
            (golden / name).write_bytes((folder / name).read_bytes())
    assert produced == sorted(p.name for p in golden.iterdir())
    for name in produced:
        if name.endswith(".parquet"):  # the exact rows and schema (with its metadata), not pyarrow's bytes
            made, expected = pq.read_table(folder / name), pq.read_table(golden / name)
            assert made.schema.equals(expected.schema, check_metadata=True), name
            assert made.to_pylist() == expected.to_pylist(), name
            continue
        assert (folder / name).read_text(encoding="utf-8") == (golden / name).read_text(encoding="utf-8"), name


@pytest.mark.parametrize("format", list(WRITERS))
def test_each_format_writes_the_known_dataset_exactly(known_dataset, export_root, format):
    export = run_export(known_dataset, format=format, system_prompt="You route support questions.",
                        instruction="Which intent is this?")
    assert export.status == "succeeded", export.error
    assert_matches_golden(export_root / str(export.pk), GOLDEN / format)


@pytest.mark.parametrize("format", ["jsonl", "huggingface"])
def test_a_split_export_writes_one_file_per_split(known_dataset, export_root, format):
    export = run_export(known_dataset, format=format, split={"train": 0.5, "test": 0.5}, seed=7)
    assert export.status == "succeeded", export.error
    assert_matches_golden(export_root / str(export.pk), GOLDEN / f"{format}-split")


def test_an_intent_too_big_to_hold_is_read_twice_with_the_same_result(known_dataset, export_root, monkeypatch):
    import datasets.exports

    monkeypatch.setattr(datasets.exports, "INTENT_BUFFER_ROWS", 2)
    export = run_export(known_dataset, format="jsonl", split={"train": 0.5, "test": 0.5}, seed=7)
    assert export.status == "succeeded", export.error
    assert_matches_golden(export_root / str(export.pk), GOLDEN / "jsonl-split")


def test_alpaca_without_an_instruction_or_system_prompt_uses_the_default_instruction(known_dataset, export_root):
    export = run_export(known_dataset, format="alpaca")
    assert export.status == "succeeded", export.error
    assert_matches_golden(export_root / str(export.pk), GOLDEN / "alpaca-default")
    records = json.loads((export_root / str(export.pk) / "questions.json").read_text(encoding="utf-8"))
    # no "system" key at all
    assert {tuple(r) for r in records} == {("instruction", "input", "output", "source", "transformation")}
    assert {r["instruction"] for r in records} == {
        "Classify the user's question into one intent of the Customer Care taxonomy. "
        "Answer with the intent's number and name only."}


def test_an_export_of_an_intent_subtree_holds_only_that_subtree(known_dataset, export_root):
    billing = IntentNode.objects.get(topic=known_dataset, name="Billing")
    export = run_export(known_dataset, format="jsonl", filters={"statuses": ["approved", "relabeled"],
                                                                 "intent": billing.pk})
    assert export.status == "succeeded", export.error
    assert_matches_golden(export_root / str(export.pk), GOLDEN / "jsonl-billing")
    rows = [json.loads(line) for line in (export_root / str(export.pk) / "questions.jsonl").read_text().splitlines()]
    assert [(r["question"], r["intent_full_name"], r["label"], r["question_index"]) for r in rows] == [
        ("I want my money back", "1.1 Refunds", 0, 1),
        ("How do I get a refund for order #1234?", "1.1 Refunds", 0, 2),
        ("Refund please, the item arrived broken", "1.1 Refunds", 0, 3),
        ('Where is my "invoice" for March?', "1.2 Invoices", 1, 1),
        ("Send me a copy of the bill, with VAT: 20%", "1.2 Invoices", 1, 2),
        ("Rechnung für März bitte", "1.2 Invoices", 1, 3),
    ]
    assert export.counts == {"questions": 6}
    assert export.intent_counts == {"1.1 Refunds": {"questions": 3}, "1.2 Invoices": {"questions": 3}}


def test_a_subtree_export_lists_only_its_intents_as_labels(known_dataset, export_root):
    account = IntentNode.objects.get(topic=known_dataset, name="Account")
    export = run_export(known_dataset, format="huggingface", filters={"statuses": ["approved"], "intent": account.pk})
    assert export.status == "succeeded", export.error
    folder = export_root / str(export.pk)
    assert json.loads((folder / "labels.json").read_text()) == ["2 Account", "2.1 Reset Password"]
    assert [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()] == [
        {"text": "Delete my account | close it", "label": 0, "intent": "2 Account", "source": "manual",
         "transformation": ""},
        {"text": "I forgot my password", "label": 1, "intent": "2.1 Reset Password", "source": "generated",
         "transformation": ""},
        {"text": "reset password\nnow", "label": 1, "intent": "2.1 Reset Password", "source": "generated",
         "transformation": ""},
    ]
    assert "- **intent subtree**: 2 Account\n" in (folder / "README.md").read_text()


def test_the_archive_holds_every_file(known_dataset, export_root):
    export = run_export(known_dataset, format="huggingface", split={"train": 0.5, "test": 0.5})
    with zipfile.ZipFile(io.BytesIO(b"".join(export_archive_stream(export)))) as bundle:
        assert sorted(bundle.namelist()) == ["README.md", "labels.json", "test.jsonl", "train.jsonl"]
        assert bundle.read("train.jsonl") == (export_root / str(export.pk) / "train.jsonl").read_bytes()
    assert export.file.path == str(export_root / str(export.pk) / "train.jsonl")


def test_counts_per_split_and_intent_are_recorded(known_dataset):
    export = run_export(known_dataset, format="csv")
    assert export.counts == {"questions": 9}
    assert export.intent_counts == {
        "1.1 Refunds": {"questions": 3}, "1.2 Invoices": {"questions": 3},
        "2 Account": {"questions": 1}, "2.1 Reset Password": {"questions": 2},
    }


def test_an_unknown_format_fails_the_export_with_its_message(known_dataset):
    export = run_export(known_dataset, format="docx")
    assert export.status == "failed"
    assert "Unknown format 'docx'" in export.error


def test_a_job_delivered_twice_writes_once(known_dataset):
    export = run_export(known_dataset, format="jsonl")
    finished = export.finished_at
    export_run(export.pk)
    export.refresh_from_db()
    assert export.status == "succeeded" and export.finished_at == finished


def test_a_bug_in_a_writer_fails_the_export_and_leaves_no_partial_folder(known_dataset, export_root, monkeypatch):
    def broken(self, row, intent, index):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(WRITERS["csv"], "row", broken)
    export = Export.objects.create(topic=known_dataset, format="csv")
    with pytest.raises(RuntimeError):
        export_run(export.pk)
    export.refresh_from_db()
    assert export.status == "failed" and export.error == "RuntimeError: disk on fire"
    assert not export_root.exists() or list(export_root.iterdir()) == []


def test_export_create_refuses_bad_ratios_before_queueing(known_dataset):
    from datasets.exports import export_create

    with pytest.raises(DatasetError, match="add up to 1"):
        export_create(topic=known_dataset, format="jsonl", split={"train": 0.8, "test": 0.3})
    assert not Export.objects.exists()


def test_every_export_format_of_the_model_has_a_writer():
    assert list(WRITERS) == list(Export.Format.values)
