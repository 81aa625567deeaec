"""Split "assigned": a dataset's own split survives an export in every format and a re-import;
the questions without one are placed by the stratified plan; out-of-scope intents stay out unless
asked for."""

import csv
import io
import json

import pyarrow.parquet as pq
import pytest
import yaml

from datasets.exports import export_create
from datasets.formats import WRITERS
from datasets.imports import questions_import
from datasets.jobs import export_run
from datasets.models import Export, IntentNode, Question
from datasets.services import DatasetError
from datasets.splits import export_split_validate
from tests.api.clients import api_as

pytestmark = pytest.mark.django_db

# (text, intent, own split): every intent has rows in each split, and rows without one.
ROWS = [
    *[(f"track parcel {w}", "Tracking", s) for w, s in zip("abcdef", ["train"] * 3 + ["validation", "test", "test"],
                                                                 strict=True)],
    *[(f"cancel order {w}", "Orders", s) for w, s in zip("ghijk", ["train", "train", "validation", "test", "dev"],
                                                          strict=True)],
    *[(f"unassigned tracking {w}", "Tracking", "") for w in "lmnopqrstu"],
    *[(f"unassigned orders {w}", "Orders", "") for w in "vwxyz"],
]
OWN = {text: {"dev": "validation"}.get(split, split) for text, _, split in ROWS if split}


def import_rows(topic, rows=ROWS):
    data = "".join(json.dumps({"question": t, "intent": i, "split": s, "status": "approved"}) + "\n"
                   for t, i, s in rows).encode()
    return questions_import(topic=topic, stream=io.BytesIO(data), format="jsonl", create_intents=True)


def texts_of(format: str, raw: str) -> list[str]:
    """The question texts of one exported file, as each format writes them."""
    if format in ("jsonl", "huggingface"):
        key = "question" if format == "jsonl" else "text"
        return [json.loads(line)[key] for line in raw.splitlines()]
    if format == "json":
        return [r["question"] for r in json.loads(raw)]
    if format == "alpaca":
        return [r["input"] for r in json.loads(raw)]
    if format == "csv":
        return [r["text"] for r in csv.DictReader(io.StringIO(raw))]
    if format == "sharegpt":
        return [json.loads(line)["conversations"][0]["value"] for line in raw.splitlines()]
    if format == "openai":
        return [json.loads(line)["messages"][0]["content"] for line in raw.splitlines()]
    if format == "rasa":
        return [example[2:] for block in yaml.safe_load(raw)["nlu"] for example in block["examples"].splitlines()]
    raise AssertionError(format)


def membership(export_root, export) -> dict[str, str]:
    found = {}
    for part in export.counts:
        path = export_root / str(export.pk) / f"{part}.{WRITERS[export.format].extension}"
        texts = (pq.read_table(path).column("text").to_pylist() if WRITERS[export.format].binary
                 else texts_of(export.format, path.read_text()))
        for text in texts:
            assert text not in found
            found[text] = part
    return found


def run_export(topic, format, split, **options) -> Export:
    export = Export.objects.create(topic=topic, format=format, split=export_split_validate(split), seed=3, **options)
    export_run(export.pk)
    export.refresh_from_db()
    assert export.status == "succeeded", export.error
    return export


# Every format that writes a topic's questions (the triplets formats write only hard negatives,
# which an import does not make).
QUESTION_FORMATS = [name for name in WRITERS if not name.startswith("triplets")]


@pytest.mark.parametrize("format", QUESTION_FORMATS)
def test_an_imported_split_column_survives_an_assigned_export_in_every_format(topic, export_root, format):
    assert import_rows(topic).splits == {"train": 5, "validation": 3, "test": 3, "none": 15}
    export = run_export(topic, format, "assigned")
    placed = membership(export_root, export)
    assert {text: placed[text] for text in OWN} == OWN
    assert len(placed) == len(ROWS)
    # The 15 without a split: 0.8/0.1/0.1 per intent (10 -> 8/1/1, 5 -> 4/1/0 by largest remainder).
    unassigned = [placed[t] for t, _, s in ROWS if not s]
    assert [unassigned.count(s) for s in ("train", "validation", "test")] == [12, 2, 1]
    assert export.counts == {"train": 17, "validation": 5, "test": 4}
    # Orders' 5 unassigned rows give test none, but its own test row is there: no intent is too small.
    assert export.warnings == []


def test_unassigned_questions_can_all_go_to_train_keeping_the_official_test_set_pure(topic, export_root):
    import_rows(topic)
    export = run_export(topic, "jsonl", {"mode": "assigned", "unassigned": {"train": 1}})
    assert export.counts == {"train": 20, "validation": 3, "test": 3}
    placed = membership(export_root, export)
    assert {t for t, p in placed.items() if p == "test"} == {t for t, s in OWN.items() if s == "test"}


@pytest.mark.parametrize("format", ["jsonl", "csv"])
def test_the_export_files_reimport_with_the_same_membership(topic, make_topic, export_root, format):
    import_rows(topic)
    export = run_export(topic, format, "assigned")
    copy = make_topic("Copy")
    for part in export.counts:
        path = export_root / str(export.pk) / f"{part}.{format}"
        report = questions_import(topic=copy, stream=io.BytesIO(path.read_bytes()), format=format, split=part,
                                  create_intents=True)
        assert report.created == export.counts[part]
    original = dict(Question.objects.filter(topic=topic).values_list("text", "split"))
    expected = membership(export_root, export)
    assert dict(Question.objects.filter(topic=copy).values_list("text", "split")) == expected
    assert {t: expected[t] for t, s in original.items() if s} == {t: s for t, s in original.items() if s}


def test_an_unassigned_near_duplicate_joins_its_assigned_group_and_split_groups_are_counted(topic, export_root):
    rows = [("where is my parcel", "Tracking", "test"), ("Where is my parcel 123?", "Tracking", ""),
            ("parcel where is", "Orders", ""),  # the same words under another intent
            ("refund my order", "Orders", "train"), ("order refund please", "Orders", "test"),
            *[(f"filler question {w}", "Tracking", "") for w in "abcdefgh"]]
    import_rows(topic, rows)
    for seed in range(4):
        export = Export.objects.create(topic=topic, format="jsonl", split=export_split_validate("assigned"), seed=seed)
        export_run(export.pk)
        export.refresh_from_db()
        placed = membership(export_root, export)
        assert placed["Where is my parcel 123?"] == placed["parcel where is"] == "test"
        assert (placed["refund my order"], placed["order refund please"]) == ("train", "test")
        assert export.warnings[:1] == ["1 near-duplicate group has questions the dataset itself assigned to more than "
                                   "one split; they stay where the dataset put them."]


def test_a_ratio_split_ignores_the_questions_own_split_as_before(topic, export_root):
    import_rows(topic)
    export = run_export(topic, "jsonl", {"train": 0.5, "test": 0.5})
    assert export.counts == {"train": 13, "test": 13}


@pytest.mark.parametrize("split, message", [
    ("random", "Unknown split 'random'"),
    ({"mode": "assigned", "unassigned": {"holdout": 1}}, "not 'holdout'"),
    ({"mode": "stratified"}, "A split mode is"),
    ({"mode": "assigned", "unassigned": {"train": 0.5}}, "add up to 1"),
])
def test_a_bad_assigned_split_is_refused_with_the_reason(topic, split, message):
    with pytest.raises(DatasetError, match=message):
        export_create(topic=topic, format="jsonl", split=split)


@pytest.fixture
def with_out_of_scope(topic, make_intent, make_question):
    orders, oos = make_intent(topic, "Orders"), make_intent(topic, "Out Of Scope")
    IntentNode.objects.filter(pk=oos.pk).update(out_of_scope=True)
    make_question(orders, "cancel my order", status="approved")
    make_question(oos, "what is the weather on mars", status="approved")
    return topic


def test_out_of_scope_questions_are_exported_only_when_asked_for(with_out_of_scope, export_root):
    left_out = run_export(with_out_of_scope, "huggingface", {})
    assert left_out.counts == {"train": 1}
    assert json.loads((export_root / str(left_out.pk) / "labels.json").read_text()) == ["1 Orders"]
    included = run_export(with_out_of_scope, "huggingface", {}, filters={"include_out_of_scope": True})
    assert included.counts == {"train": 2}
    assert json.loads((export_root / str(included.pk) / "labels.json").read_text()) == ["1 Orders", "2 Out Of Scope"]


def test_the_export_api_takes_assigned_and_include_out_of_scope(dataset_admin, with_out_of_scope):
    client = api_as(dataset_admin)
    response = client.post("/api/v1/exports/", {"topic": with_out_of_scope.pk, "format": "jsonl", "split": "assigned",
                                                "include_out_of_scope": True}, format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["split"] == {"mode": "assigned", "unassigned": {"train": 0.8, "validation": 0.1, "test": 0.1}}
    assert body["filters"] == {"statuses": ["approved", "relabeled"], "include_out_of_scope": True}
    stream = client.get(f"/api/v1/labeling/export?format=jsonl&topic={with_out_of_scope.pk}")
    assert [json.loads(line)["question"] for line in b"".join(stream.streaming_content).decode().splitlines()] == [
        "cancel my order"]
    stream = client.get(f"/api/v1/labeling/export?format=jsonl&topic={with_out_of_scope.pk}&include_out_of_scope=true")
    assert len(b"".join(stream.streaming_content).decode().splitlines()) == 2
