"""ShareGPT as LLaMA-Factory reads it and OpenAI messages, dataset_info.json, Parquet written in
row groups, labels.json in every split export, and a dataset card that states only what is true."""

import importlib
import io
import json
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from django.apps import apps

from datasets.exports import export_archive_stream, export_stream
from datasets.formats import WRITERS
from datasets.imports import questions_import
from datasets.models import Export
from datasets.selectors import export_questions
from datasets.services import DatasetError
from tests.exports.test_formats import run_export

pytestmark = pytest.mark.django_db
SPLIT = {"train": 0.5, "test": 0.5}


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_sharegpt_is_llama_factorys_conversations_and_openai_the_messages_shape(known_dataset, export_root):
    sharegpt = run_export(known_dataset, format="sharegpt", system_prompt="Route it.")
    openai = run_export(known_dataset, format="openai")
    assert lines(export_root / str(sharegpt.pk) / "questions.jsonl")[0] == {
        "conversations": [{"from": "human", "value": "I want my money back"}, {"from": "gpt", "value": "1.1 Refunds"}],
        "system": "Route it.", "source": "generated", "transformation": ""}
    assert lines(export_root / str(openai.pk) / "questions.jsonl")[0] == {
        "messages": [{"role": "user", "content": "I want my money back"},
                     {"role": "assistant", "content": "1.1 Refunds"}]}
    # Without a system prompt the column is not declared: LLaMA-Factory would look for it in every row.
    info = json.loads((export_root / str(openai.pk) / "dataset_info.json").read_text())
    assert info == {"customer_care": {"file_name": "questions.jsonl", "formatting": "sharegpt",
                                      "columns": {"messages": "messages"},
                                      "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                                               "assistant_tag": "assistant", "system_tag": "system"}}}


@pytest.mark.parametrize("format", ["alpaca", "sharegpt", "openai"])
def test_a_split_instruction_export_has_one_dataset_info_entry_per_file(known_dataset, export_root, format):
    export = run_export(known_dataset, format=format, split=SPLIT, seed=7)
    with zipfile.ZipFile(io.BytesIO(b"".join(export_archive_stream(export)))) as bundle:
        info = json.loads(bundle.read("dataset_info.json"))
        extension = WRITERS[format].extension
        assert {name: entry["file_name"] for name, entry in info.items()} == {
            "customer_care_train": f"train.{extension}", "customer_care_test": f"test.{extension}"}
        assert {entry["formatting"] for entry in info.values()} == {"alpaca" if format == "alpaca" else "sharegpt"}
        assert set(bundle.namelist()) == {"dataset_info.json", "labels.json", f"train.{extension}",
                                          f"test.{extension}"}


def test_exports_made_as_sharegpt_before_become_openai_which_is_what_their_files_hold(known_dataset):
    old = Export.objects.create(topic=known_dataset, format="sharegpt")
    other = Export.objects.create(topic=known_dataset, format="alpaca")
    migration = importlib.import_module("datasets.migrations.0011_export_formats_openai_parquet")
    migration.sharegpt_exports_to_openai(apps, None)
    assert list(Export.objects.filter(pk__in=[old.pk, other.pk]).order_by("pk").values_list("format", flat=True)) == [
        "openai", "alpaca"]


# Triplets have no class labels of their own: their labels.json names the intents of their rows.
@pytest.mark.parametrize("format", [name for name in WRITERS if not name.startswith("triplets")])
def test_every_split_export_names_its_labels_in_labels_json(known_dataset, export_root, format):
    export = run_export(known_dataset, format=format, split=SPLIT, seed=7)
    assert json.loads((export_root / str(export.pk) / "labels.json").read_text()) == [
        "1.1 Refunds", "1.2 Invoices", "2 Account", "2.1 Reset Password"]


def test_parquet_holds_exactly_the_rows_of_the_csv_typed_and_in_row_groups(known_dataset, export_root, monkeypatch):
    monkeypatch.setattr("datasets.formats.parquet.ROW_GROUP_ROWS", 2)
    export = run_export(known_dataset, format="parquet", split=SPLIT, seed=7)
    jsonl = run_export(known_dataset, format="jsonl", split=SPLIT, seed=7)
    for part in ("train", "test"):
        path = export_root / str(export.pk) / f"{part}.parquet"
        table = pq.read_table(path)
        expected = lines(export_root / str(jsonl.pk) / f"{part}.jsonl")
        assert table.to_pylist() == [
            {"text": r["question"], "label": r["label"], "intent": r["intent_full_name"],
             "intent_number": r["intent_number"], "intent_path": r["intent_path"], "status": r["status"],
             "source": r["source"], "id": table.column("id")[i].as_py(), "transformation": r.get("transformation", "")}
            for i, r in enumerate(expected)]
        assert table.schema.field("label").type == pa.int64()
        assert pq.ParquetFile(path).metadata.num_row_groups == (len(expected) + 1) // 2
    assert export.counts == jsonl.counts == {"train": 5, "test": 4}


def test_the_parquet_hugging_face_folder_matches_the_jsonl_one_row_for_row(known_dataset, export_root):
    parquet = run_export(known_dataset, format="huggingface_parquet", split=SPLIT, seed=7)
    jsonl = run_export(known_dataset, format="huggingface", split=SPLIT, seed=7)
    folder = export_root / str(parquet.pk)
    for part in ("train", "test"):
        table = pq.read_table(folder / f"{part}.parquet")
        assert table.to_pylist() == lines(export_root / str(jsonl.pk) / f"{part}.jsonl")
        features = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]
        assert features["label"] == {"names": ["1.1 Refunds", "1.2 Invoices", "2 Account", "2.1 Reset Password"],
                                     "_type": "ClassLabel"}
    card = yaml.safe_load((folder / "README.md").read_text().split("---")[1])
    assert card["configs"][0]["data_files"] == [{"split": "train", "path": "train.parquet"},
                                                {"split": "test", "path": "test.parquet"}]


def test_the_card_gives_each_splits_size_as_the_arrow_table_datasets_builds(known_dataset, export_root):
    export = run_export(known_dataset, format="huggingface", split=SPLIT, seed=7)
    folder = export_root / str(export.pk)
    card = yaml.safe_load((folder / "README.md").read_text().split("---")[1])
    schema = pa.schema([("text", pa.string()), ("label", pa.int64()), ("intent", pa.string()),
                        ("source", pa.string()), ("transformation", pa.string())])
    sizes = {part: pa.Table.from_pylist(lines(folder / f"{part}.jsonl"), schema=schema).nbytes
             for part in ("train", "test")}
    assert card["dataset_info"]["splits"] == [
        {"name": "train", "num_bytes": sizes["train"], "num_examples": 5},
        {"name": "test", "num_bytes": sizes["test"], "num_examples": 4}]
    assert card["dataset_info"]["dataset_size"] == sizes["train"] + sizes["test"]


def test_the_card_of_an_imported_topic_states_no_generation_settings(make_topic, export_root):
    topic = make_topic("Banking")
    data = b"".join(json.dumps({"question": f"card question {w}", "intent": "Cards", "status": "approved"}).encode()
                    + b"\n" for w in "abc")
    questions_import(topic=topic, stream=io.BytesIO(data), format="jsonl", create_intents=True)
    export = run_export(topic, format="huggingface")
    card = (export_root / str(export.pk) / "README.md").read_text()
    assert "## Where the questions come from\n\n| source | questions |\n| --- | ---: |\n| imported | 3 |\n" in card
    for untrue in ("taxonomy levels", "tags per level", "questions per intent", "leaf intents only", "## Generation",
                   "distilled from LLMs"):
        assert untrue not in card


def test_the_card_states_the_runs_that_generated_questions_with_their_parameters(known_dataset, export_root):
    from datasets.models import Question
    from distiller.models import DistillationRun, LLMProvider

    provider = LLMProvider.objects.create(name="local-test", base_url="http://127.0.0.1:9/v1", model="teacher-1")
    run = DistillationRun.objects.create(topic=known_dataset, kind="questions", provider=provider,
                                         parameters={"levels": 2, "tags_per_level": 5, "questions_per_intent": 3,
                                                     "questions_per_call": 10, "temperature": 0.7, "seed": 0,
                                                     "leaf_only": True, "mix": None})
    Question.objects.filter(topic=known_dataset, source="generated").update(run=run)
    export = run_export(known_dataset, format="huggingface")
    card = (export_root / str(export.pk) / "README.md").read_text()
    assert f"| {run.pk} | local | teacher-1 | 0.7 | questions-v1 | 5 |" in card
    # A questions-only run made no taxonomy: its levels and tags per level are not stated.
    assert (f"- **run {run.pk}** (questions): leaf intents only True, questions per intent 3, questions per call 10, "
            "temperature 0.7, seed 0\n") in card


def test_parquet_is_refused_where_files_are_streamed_as_text(known_dataset):
    with pytest.raises(DatasetError, match="written by export jobs only"):
        export_stream(questions=export_questions(topic=known_dataset), format="parquet")
