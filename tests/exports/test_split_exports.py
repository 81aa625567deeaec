"""A split export keeps near duplicates on one side across intents, reading the stored near_key."""

import io
import json

import pytest

from datasets.imports import questions_import
from datasets.jobs import export_run
from datasets.models import Export, Question
from datasets.normalize import near_duplicate_key
from datasets.services import question_bulk_create


@pytest.fixture
def two_intents(make_topic, make_intent, make_question):
    topic = make_topic("Parcels")
    track, lost = make_intent(topic, "Track"), make_intent(topic, "Lost")
    for intent in (track, lost):
        for i in range(9):
            make_question(intent, f"{intent.name} question about thing {'abcdefghi'[i]}", status="approved")
    make_question(track, "Where is my parcel 123?", status="approved")
    make_question(lost, "where is my parcel 987", status="approved")
    # A question written before near_key existed (or by a path that bypassed it): the export
    # computes its key from the text.
    legacy = make_question(lost, "Parcel where is it", status="approved")
    make_question(track, "where is it, the parcel?", status="approved")
    Question.objects.filter(pk=legacy.pk).update(near_key=None)
    return topic


def split_of(export_root, export, text) -> str:
    for name in export.counts:
        for line in (export_root / str(export.pk) / f"{name}.jsonl").read_text().splitlines():
            if json.loads(line)["question"] == text:
                return name
    raise AssertionError(f"{text!r} is in no split")


@pytest.mark.parametrize("backfill", [True, False], ids=["missing keys filled", "missing keys computed"])
def test_near_duplicates_under_two_intents_land_in_one_split_for_every_seed(two_intents, export_root, monkeypatch,
                                                                         backfill):
    if not backfill:  # a row without a key that appears mid-export: the planner remembers every group
        monkeypatch.setattr("datasets.exports.question_near_keys_fill", lambda **kwargs: 0)
    for seed in range(8):
        export = Export.objects.create(topic=two_intents, format="jsonl", filters={"statuses": ["approved"]},
                                       split={"train": 0.5, "test": 0.5}, seed=seed)
        export_run(export.pk)
        export.refresh_from_db()
        assert export.status == "succeeded", export.error
        assert sum(export.counts.values()) == 22
        assert split_of(export_root, export, "Where is my parcel 123?") == split_of(
            export_root, export, "where is my parcel 987")
        assert split_of(export_root, export, "Parcel where is it") == split_of(
            export_root, export, "where is it, the parcel?")
    assert Question.objects.filter(topic=two_intents, near_key=None).exists() is not backfill


def test_every_write_path_stores_the_near_duplicate_key(topic, make_intent, make_question):
    intent = make_intent(topic, "Orders")
    saved = make_question(intent, "Please cancel my order 12!")
    question_bulk_create(topic=topic, rows=[{"intent_id": intent.pk, "text": "cancel order 7 now"}])
    questions_import(topic=topic, stream=_jsonl({"question": "my order: cancel, please", "intent": "Orders"}),
                     format="jsonl")
    keys = set(Question.objects.filter(topic=topic).values_list("near_key", flat=True))
    assert keys == {near_duplicate_key("cancel order")}
    saved.text = "Track my order"
    saved.save(update_fields=["text"])
    saved.refresh_from_db()
    assert saved.near_key == near_duplicate_key("track order")


def _jsonl(row):
    return io.BytesIO((json.dumps(row) + "\n").encode())
