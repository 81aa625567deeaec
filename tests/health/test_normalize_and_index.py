"""The better near-duplicate key, the MinHash of the paraphrase index, and its upkeep on every write path."""

import importlib
import io
import json

import pytest
from datasketch import MinHash

from datasets.health.index import paraphrase_index_fill, question_paraphrases
from datasets.health.paraphrase import NUM_PERM, minhash_signatures, paraphrase_keys, paraphrase_shingles
from datasets.imports import questions_import
from datasets.models import Question, QuestionBand
from datasets.normalize import near_duplicate_key
from datasets.services import question_bulk_create
from labeling.selectors import questions_similar

VARIANT_PAIRS = [
    ("whats my credit rating", "what's my credit rating"),
    ("what is my credit rating", "whats my credit rating"),
    ("goodbye", "good bye"),
    ("is at&t down", "is att down"),
    ("I can't log in", "i cannot login"),
    ("send $50 to mom", "send 20 dollars to mom"),
    ("raise it by 10%", "raise it by three percent"),
    ("wake me at 5pm", "wake me at 10am"),
    ("tom & jerry", "tom and jerry"),
    ("I don't know my PIN", "i do not know my pin"),
]


@pytest.mark.parametrize(("a", "b"), VARIANT_PAIRS)
def test_the_near_duplicate_key_folds_the_variants_a_new_user_writes(a, b):
    assert near_duplicate_key(a) == near_duplicate_key(b)


def test_the_near_duplicate_key_still_tells_different_questions_apart():
    assert near_duplicate_key("Reset my password") != near_duplicate_key("Reset my username")
    assert near_duplicate_key("is at&t down") != near_duplicate_key("is at and t down")
    assert near_duplicate_key("i can not log in") != near_duplicate_key("i can log in")


def test_the_batch_minhash_is_datasketchs():
    texts = ["how much money is left in my checking account", "goodbye", "", "what's the weather in paris"]
    signatures = minhash_signatures([paraphrase_shingles(t) for t in texts])
    for text, signature in zip(texts, signatures, strict=True):
        reference = MinHash(num_perm=NUM_PERM, seed=1, scheme="affine32")
        reference.update_batch([s.encode() for s in paraphrase_shingles(text)])
        assert signature.tolist() == reference.hashvalues.tolist()


def _bands(question):
    return list(QuestionBand.objects.filter(question=question).order_by("band").values_list("key", flat=True))


def test_every_write_path_indexes_the_question(topic, make_intent, make_question):
    intent = make_intent(topic, "Orders")
    saved = make_question(intent, "where is my parcel from last week")
    question_bulk_create(topic=topic, rows=[{"intent_id": intent.pk, "text": "cancel the order i placed on monday"}])
    questions_import(topic=topic, stream=io.BytesIO(json.dumps({"question": "track the red shoes i ordered",
                                                                "intent": "Orders"}).encode() + b"\n"),
                     format="jsonl")
    for question in Question.objects.filter(topic=topic):
        assert _bands(question) == paraphrase_keys(question.text, topic_id=topic.pk)
    saved.text = "where is the parcel i sent to my brother"
    saved.save(update_fields=["text"])
    assert _bands(saved) == paraphrase_keys("where is the parcel i sent to my brother", topic_id=topic.pk)
    assert QuestionBand.objects.count() == 3 * 8
    # Each band row holds its question's near-duplicate key (an edited text's new one).
    for question in Question.objects.filter(topic=topic):
        assert set(question.bands.values_list("near_key", flat=True)) == {question.near_key}


def test_the_migration_gives_existing_band_rows_their_near_key_in_batches(topic, make_intent, make_question):
    from types import SimpleNamespace

    from django.apps import apps
    from django.db import connection

    migration = importlib.import_module("datasets.migrations.0020_questionband_near_key")
    questions = [make_question(make_intent(topic, "Rates"), "whats my credit rating"),
                 make_question(make_intent(topic, "Bye"), "good bye"),
                 make_question(make_intent(topic, "Cards"), "my card was declined at the store")]
    QuestionBand.objects.update(near_key=None)
    migration.BATCH = 2  # two batches
    migration.near_keys_backfill(apps, SimpleNamespace(connection=connection))
    for question in questions:
        assert set(question.bands.values_list("near_key", flat=True)) == {question.near_key}


def test_band_rows_without_a_near_key_still_group_by_the_questions(topic, make_intent, make_question):
    balance, savings = make_intent(topic, "Balance"), make_intent(topic, "Savings")
    question = make_question(balance, "how much money is left in my checking account this month")
    twin = make_question(savings, "how much money is left in my savings account this month")
    copy = make_question(savings, "how much money is left in my savings account this month 2")
    assert twin.near_key == copy.near_key  # numbers fold
    QuestionBand.objects.update(near_key=None)  # written by raw SQL, as an old bench or script would
    rows = question_paraphrases(question=question)
    assert [row["id"] for row in rows] == [min(twin.pk, copy.pk)] and rows[0]["near_copies"] == 1


def test_the_fill_indexes_rows_written_around_the_model(topic, make_intent, make_question):
    question = make_question(make_intent(topic, "Orders"), "track the red shoes i ordered")
    QuestionBand.objects.all().delete()
    assert paraphrase_index_fill(questions=Question.objects.filter(topic=topic)) == 1
    assert _bands(question) == paraphrase_keys(question.text, topic_id=topic.pk)


def test_the_review_screen_sees_paraphrases_under_another_intent(topic, make_topic, make_intent, make_question):
    balance, savings = make_intent(topic, "Balance"), make_intent(topic, "Savings")
    question = make_question(balance, "how much money is left in my checking account this month")
    twin = make_question(savings, "how much money is left in my savings account this month")
    make_question(savings, "open a new savings account for my daughter")
    elsewhere = make_intent(make_topic(), "Balance")
    make_question(elsewhere, "how much money is left in my checking account this month")  # another topic
    assert [row["id"] for row in question_paraphrases(question=question)] == [twin.pk]
    similar = questions_similar(question=question)
    assert similar[0]["id"] == twin.pk and similar[0]["other_intent"] is True and similar[0]["score"] == 0.7


def test_the_migration_rekeys_stale_keys_and_indexes_every_row(topic, make_intent, make_question):
    from django.apps import apps

    migration = importlib.import_module("datasets.migrations.0009_question_bands_and_rekey")
    questions = [make_question(make_intent(topic, "Rates"), "whats my credit rating"),
                 make_question(make_intent(topic, "Bye"), "good bye")]
    Question.objects.update(near_key=12345)
    QuestionBand.objects.all().delete()
    migration.BATCH = 1  # several batches
    migration.rekey_and_index(apps, None)
    for question in questions:
        question.refresh_from_db()
        assert question.near_key == near_duplicate_key(question.text)
        assert _bands(question) == paraphrase_keys(question.text, topic_id=topic.pk)


def test_paraphrase_groups_join_the_near_keys_of_paraphrases(topic, make_intent, make_question):
    from datasets.health.selectors import paraphrase_groups

    balance, savings = make_intent(topic, "Balance"), make_intent(topic, "Savings")
    a = make_question(balance, "how much money is left in my checking account this month")
    b = make_question(savings, "how much money is left in my savings account this month")
    c = make_question(savings, "how much money is left in my savings account this month 2")  # b's near duplicate
    make_question(savings, "open a new savings account for my daughter")
    groups = paraphrase_groups(questions=Question.objects.filter(topic=topic))
    assert b.near_key == c.near_key
    assert groups == {a.near_key: min(a.near_key, b.near_key), b.near_key: min(a.near_key, b.near_key)}
