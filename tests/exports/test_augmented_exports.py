"""Every export format carries an augmented question's source and transformation where it has a
place for per-row metadata, so a user can filter augmented rows out of a test set; the imports
that read a format back keep them."""

import csv
import io
import json

import pyarrow.parquet as pq
import pytest
import yaml

from datasets.formats import WRITERS
from datasets.imports import questions_import
from datasets.models import Question
from tests.exports.test_formats import run_export

pytestmark = pytest.mark.django_db
TRANSFORMATION = "typo:swap+case:lower"
# (text, source, transformation) of the two rows, in export order (by id).
ROWS = [("how do I reset my password", "generated", ""), ("how do i rseet my password", "augmented", TRANSFORMATION)]


@pytest.fixture
def augmented_topic(make_topic, make_intent):
    """Account: one generated question and its augmented variant, both approved; each written
    against Billing, so the triplet formats (hard negatives only) take them too."""
    topic = make_topic("Account care")
    account, billing = make_intent(topic, "Account"), make_intent(topic, "Billing")
    generated = Question.objects.create(topic=topic, intent=account, text=ROWS[0][0], source="generated",
                                        status="approved", contrastive_of=billing)
    Question.objects.create(topic=topic, intent=account, text=ROWS[1][0], source="augmented",
                            transformation=TRANSFORMATION, augmented_from=generated, status="approved",
                            contrastive_of=billing)
    return topic


def exported(export_root, topic, format) -> str:
    export = run_export(topic, format=format)
    assert export.status == "succeeded", export.error
    extension = WRITERS[format].extension
    name = "train" if format.startswith("huggingface") else "questions"
    return export_root / str(export.pk) / f"{name}.{extension}"


def jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_seed_schema_writes_the_transformation_on_augmented_rows_only(augmented_topic, export_root):
    for format in ("jsonl", "json"):
        path = exported(export_root, augmented_topic, format)
        records = jsonl(path) if format == "jsonl" else json.loads(path.read_text())
        assert [(r["question"], r["source"], r.get("transformation")) for r in records] == [
            (ROWS[0][0], "generated", None), (ROWS[1][0], "augmented", TRANSFORMATION)]


def test_csv_and_parquet_have_source_and_transformation_columns(augmented_topic, export_root):
    table = list(csv.DictReader(io.StringIO(exported(export_root, augmented_topic, "csv").read_text())))
    assert [(r["text"], r["source"], r["transformation"]) for r in table] == ROWS
    parquet = pq.read_table(exported(export_root, augmented_topic, "parquet")).to_pylist()
    assert [(r["text"], r["source"], r["transformation"]) for r in parquet] == ROWS


def test_the_instruction_formats_that_have_a_place_carry_it_on_every_record(augmented_topic, export_root):
    alpaca = json.loads(exported(export_root, augmented_topic, "alpaca").read_text())
    assert [(r["input"], r["source"], r["transformation"]) for r in alpaca] == ROWS
    sharegpt = jsonl(exported(export_root, augmented_topic, "sharegpt"))
    assert [(r["conversations"][0]["value"], r["source"], r["transformation"]) for r in sharegpt] == ROWS
    # OpenAI's fine-tuning file has no per-row metadata: its records stay exactly `messages`.
    openai = jsonl(exported(export_root, augmented_topic, "openai"))
    assert [list(r) for r in openai] == [["messages"], ["messages"]]


def test_hugging_face_folders_declare_and_write_the_two_columns(augmented_topic, export_root):
    rows = jsonl(exported(export_root, augmented_topic, "huggingface"))
    assert [(r["text"], r["source"], r["transformation"]) for r in rows] == ROWS
    path = exported(export_root, augmented_topic, "huggingface_parquet")
    assert [(r["text"], r["source"], r["transformation"]) for r in pq.read_table(path).to_pylist()] == ROWS
    card = yaml.safe_load((path.parent / "README.md").read_text().split("---")[1])
    assert [f["name"] for f in card["dataset_info"]["features"]] == ["text", "label", "intent", "source",
                                                                     "transformation"]


def test_triplets_carry_them_as_their_last_two_columns(augmented_topic, export_root):
    rows = jsonl(exported(export_root, augmented_topic, "triplets"))
    assert [(r["query"], r["source"], r["transformation"]) for r in rows] == ROWS
    lines = exported(export_root, augmented_topic, "triplets_tsv").read_text().splitlines()
    assert [tuple(line.split("\t")[i] for i in (0, 6, 7)) for line in lines] == [
        ("query", "source", "transformation"), *ROWS]


def test_rasa_has_no_place_for_it_and_writes_the_texts_alone(augmented_topic, export_root):
    assert exported(export_root, augmented_topic, "rasa").read_text() == (
        'version: "3.1"\nnlu:\n- intent: account\n  examples: |\n'
        f"    - {ROWS[0][0]}\n    - {ROWS[1][0]}\n")


@pytest.mark.parametrize("format", ["jsonl", "csv", "alpaca"])
def test_an_export_imported_back_keeps_the_augmented_row_and_its_transformation(
        augmented_topic, export_root, make_topic, format):
    data = exported(export_root, augmented_topic, format).read_bytes()
    copy = make_topic("Account copy")
    report = questions_import(topic=copy, stream=io.BytesIO(data), format=format, create_intents=True)
    assert report.created == 2
    # The generated row has no run or model in a file: it is imported; the augmented row stays augmented.
    assert list(Question.objects.filter(topic=copy).order_by("text").values_list("text", "source", "transformation")) \
        == [(ROWS[0][0], "imported", ""), (ROWS[1][0], "augmented", TRANSFORMATION)]


def test_an_import_ignores_a_transformation_on_a_row_that_is_not_augmented(make_topic):
    topic = make_topic("Plain")
    data = (json.dumps({"question": "close my account", "intent": "Account", "source": "generated",
                        "transformation": "typo:swap"}) + "\n").encode()
    questions_import(topic=topic, stream=io.BytesIO(data), format="jsonl", create_intents=True)
    assert list(Question.objects.filter(topic=topic).values_list("source", "transformation")) == [("imported", "")]


def test_an_import_refuses_a_transformation_that_is_not_a_string(make_topic):
    topic = make_topic("Plain")
    data = (json.dumps({"question": "close my account", "intent": "Account", "source": "augmented",
                        "transformation": ["typo"]}) + "\n").encode()
    report = questions_import(topic=topic, stream=io.BytesIO(data), format="jsonl", create_intents=True,
                              dry_run=True)
    assert report.errors == [{"line": 1, "message": "field 'transformation' must be a string"}]
