"""Offline augmentation: the transformations, the service's share, determinism and duplicate
checks, and starting it from the API, the CLI and the admin."""

import random

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from datasets.augment import case, chat, filler, kinds_validate, punctuation, typo, variant_make
from datasets.jobs import augmentation_run
from datasets.models import QUESTION_TEXT_MAX_CHARS, Augmentation, Question
from datasets.services import DatasetError, augmentation_budget, augmentation_create
from tests.api.clients import api_as

BALANCE = [
    "What's my checking balance?", "How much money do I have", "Show me my savings balance please",
    "Can you tell me what my balance is", "balance of my account", "How much is left on my debit card?",
    "What is the balance of my joint account", "I want to know my current balance",
    "tell me how much cash is in my account", "What funds do I have right now?",
]
TRANSFER = ["Send 50 dollars to my mom", "Move money to savings", "I need to transfer funds to Bob",
            "Wire money abroad please", "Transfer between my accounts"]


@pytest.fixture
def bank(make_topic, make_intent, make_question):
    """Banking: Balance (10 approved, 1 pending, 1 rejected) and Transfer (5 approved)."""
    topic = make_topic("Bank")
    balance, transfer = make_intent(topic, "Balance"), make_intent(topic, "Transfer")
    for text in BALANCE:
        make_question(balance, text, status="approved", source="imported", language="en", split="test")
    make_question(balance, "balance pending one", status="pending")
    make_question(balance, "balance rejected one", status="rejected")
    for text in TRANSFER:
        make_question(transfer, text, status="approved", source="generated")
    return topic


def augmented(topic):
    return list(Question.objects.filter(topic=topic, source="augmented").order_by("intent__sort_key", "id")
                .values_list("intent__name", "augmented_from__text", "text", "transformation"))


def augment(topic, **options):
    augmentation = augmentation_create(topic=topic, enqueue_job=False, **{"share": 0.2, "seed": 1, **options})
    augmentation_run(augmentation.pk)
    augmentation.refresh_from_db()
    return augmentation


# The transformations -------------------------------------------------------------------------------

def test_each_transformation_makes_the_variant_a_production_classifier_meets():
    seeded = lambda: random.Random(7)  # noqa: E731
    assert typo("How do I reset my password?", seeded()) == ("How do I rest my password?", "typo:drop")
    assert typo("How do I reset my password?", random.Random(0)) == ("How do I erset my password?", "typo:swap")
    assert typo("How do I reset my password?", random.Random(1)) == ("Hiw do I reset my password?", "typo:neighbour")
    assert punctuation("What's my balance?", seeded()) == ("Whats my balance", "punctuation:none")
    assert punctuation("whats my balance", seeded()) is None
    assert case("What's my balance?", seeded()) == ("WHAT'S MY BALANCE?", "case:upper")
    assert case("What's my balance?", random.Random(1)) == ("what's my balance?", "case:lower")
    assert chat("Can you please tell me your balance, thanks", seeded()) == (
        "Can u pls tell me ur balance, thx", "chat:you>u,please>pls,your>ur,thanks>thx")
    assert chat("As soon as possible please", seeded()) == ("asap pls", "chat:as soon as possible>asap,please>pls")
    assert chat("balance", seeded()) is None
    assert chat("MY ACCOUNT, PLEASE", seeded()) == ("MY ACCT, PLS", "chat:account>acct,please>pls")
    assert filler("What's my balance?", seeded()) == ("ok so what's my balance?", "filler:ok_so")
    assert filler("I lost my card", seeded()) == ("ok so I lost my card", "filler:ok_so")


def test_case_and_punctuation_alone_make_nothing_since_the_duplicate_check_folds_them():
    seeded = lambda: random.Random(7)  # noqa: E731
    assert variant_make("What's my balance?", ["case"], seeded()) is None
    assert variant_make("What's my balance?", ["case", "typo"], seeded()) == (
        "what's my valance?", "case", "case:lower+typo:neighbour")
    assert variant_make("What's my balance?", ["punctuation", "chat"], seeded()) is None


def test_kinds_are_checked_by_name():
    assert kinds_validate("case,typo") == ["typo", "case"]
    assert kinds_validate(None) == ["typo", "punctuation", "case", "chat", "filler"]
    with pytest.raises(ValueError, match="Unknown augmentation kind 'emoji': use typo, punctuation, case, chat, filler."):
        kinds_validate(["typo", "emoji"])


def test_the_budget_is_the_floor_of_the_share_less_what_the_intent_has():
    assert augmentation_budget(share=0.2, approved=10, existing=0) == 2
    assert augmentation_budget(share=0.29, approved=100, existing=0) == 29  # 28.999999999999996 as a float
    assert augmentation_budget(share=0.2, approved=4, existing=0) == 0
    assert augmentation_budget(share=0.2, approved=10, existing=5) == 0


# The service ---------------------------------------------------------------------------------------

def test_it_writes_pending_marked_variants_up_to_the_share_of_each_intent(bank):
    augmentation = augment(bank, share=0.2, seed=1)
    # floor(0.2 x 10) = 2 of Balance (its pending and rejected questions are no sources), floor(0.2 x 5) = 1.
    assert augmented(bank) == [
        ("Balance", "What funds do I have right now?", "ok so what funds do I have right now?", "filler:ok_so"),
        ("Balance", "tell me how much cash is in my account", "hi, tell me how much cash is in my account",
         "filler:hi"),
        ("Transfer", "Send 50 dollars to my mom", "ssend 50 dollars to my mom", "case:lower+typo:double"),
    ]
    assert (augmentation.status, augmentation.created, augmentation.intents_total, augmentation.intents_done) == (
        "succeeded", 3, 2, 2)
    rows = Question.objects.filter(topic=bank, source="augmented")
    assert set(rows.values_list("status", flat=True)) == {"pending"}
    # A variant keeps its source's language and split, so it stays on its source's side.
    for question in rows.select_related("augmented_from"):
        assert question.augmented_from.status == "approved" and question.intent_id == question.augmented_from.intent_id
        assert (question.language, question.split) == (question.augmented_from.language,
                                                         question.augmented_from.split)


def test_the_same_seed_gives_the_same_rows_and_another_seed_others(bank):
    augment(bank, seed=1)
    first = augmented(bank)
    Question.objects.filter(topic=bank, source="augmented").delete()
    augment(bank, seed=1)
    assert augmented(bank) == first
    Question.objects.filter(topic=bank, source="augmented").delete()
    augment(bank, seed=2)
    assert augmented(bank) != first and len(augmented(bank)) == len(first)


def test_the_share_is_never_exceeded_across_runs(bank):
    augment(bank, share=0.2, seed=1)
    again = augment(bank, share=0.2, seed=5)
    assert again.created == 0 and len(augmented(bank)) == 3
    augment(bank, share=0.5, seed=3)
    per_intent = {name: n for name in ("Balance", "Transfer")
                  for n in [Question.objects.filter(topic=bank, intent__name=name, source="augmented").count()]}
    assert per_intent == {"Balance": 5, "Transfer": 2}  # floor(0.5 x 10), floor(0.5 x 5)


def test_a_variant_the_topic_already_has_is_passed_over(bank, make_question):
    augment(bank, seed=1)
    first = augmented(bank)
    Question.objects.filter(topic=bank, source="augmented").delete()
    taken_text = first[0][2]
    balance = bank.intents.get(name="Balance")
    make_question(balance, taken_text.upper(), status="rejected")  # the same text to the duplicate check
    augment(bank, seed=1)
    rows = augmented(bank)
    assert len(rows) == len(first) and taken_text not in [r[2] for r in rows]


def test_a_variant_longer_than_the_limit_is_not_written(make_topic, make_intent, make_question):
    topic = make_topic("Long")
    intent = make_intent(topic, "Essay")
    for n in range(5):
        text = f"{n} " + "word " * 998 + "words!"  # 4,998 characters: a filler makes it too long, a typo not
        assert len(text) == QUESTION_TEXT_MAX_CHARS - 2
        make_question(intent, text, status="approved")
    assert augment(topic, share=1, kinds=["filler"]).created == 0
    assert augment(topic, share=1, kinds=["typo"]).created == 5


@pytest.mark.parametrize(("options", "code", "message"), [
    ({"share": 1.5}, "invalid_share", "The share must be a number above 0 and at most 1"),
    ({"share": 0}, "invalid_share", "The share must be a number above 0 and at most 1"),
    ({"kinds": ["typo", "emoji"]}, "invalid_kind", "Unknown augmentation kind 'emoji'"),
])
def test_bad_requests_are_refused_and_write_nothing(bank, options, code, message):
    with pytest.raises(DatasetError) as refused:
        augmentation_create(topic=bank, enqueue_job=False, **{"share": 0.2, **options})
    assert refused.value.code == code and refused.value.message.startswith(message)
    assert not Augmentation.objects.exists() and not augmented(bank)


# The API, the CLI and the admin -------------------------------------------------------------------

def test_a_dataset_admin_starts_an_augmentation_through_the_api_and_follows_it(bank, dataset_admin):
    client = api_as(dataset_admin)
    response = client.post(f"/api/v1/topics/{bank.pk}/augment/", {"share": 0.2, "seed": 1, "kinds": ["typo"]},
                           format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["status"], body["share"], body["seed"], body["kinds"]) == ("queued", 0.2, 1, ["typo"])
    augmentation_run(body["id"])
    body = client.get(f"/api/v1/augmentations/{body['id']}/").json()
    assert (body["status"], body["created"], body["per_kind"], body["intents_done"]) == (
        "succeeded", 3, {"typo": 3}, 2)
    assert all(row[3].startswith("typo:") for row in augmented(bank))
    listed = client.get(f"/api/v1/questions/?topic={bank.pk}&status=pending").json()["results"]
    assert {q["transformation"] for q in listed if q["source"] == "augmented"} == {r[3] for r in augmented(bank)}


def test_reviewers_and_anonymous_callers_cannot_augment(bank, reviewer):
    bank.reviewers.add(reviewer)
    url = f"/api/v1/topics/{bank.pk}/augment/"
    assert api_as(reviewer).post(url, {"share": 0.2}, format="json").status_code == 403
    response = api_as(None).post(url, {"share": 0.2}, format="json")
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"
    assert not Augmentation.objects.exists()


@pytest.mark.parametrize(("payload", "field"), [
    ({"share": 1.5}, "share"), ({"share": 0}, "share"), ({"share": "lots"}, "share"),
    ({"share": 0.2, "kinds": ["emoji"]}, "kinds"), ({"share": 0.2, "colour": "red"}, None),
    ({"share": 0.2, "kinds": ["typo"] * 100_000}, "kinds"), ({"share": 0.2, "seed": "١"}, "seed"),
    ({"share": "0.2\x00"}, None),
])
def test_bad_api_input_is_a_400_naming_the_field_and_writes_nothing(bank, dataset_admin, payload, field):
    response = api_as(dataset_admin).post(f"/api/v1/topics/{bank.pk}/augment/", payload, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    if field:
        assert field in error["details"]
    assert not Augmentation.objects.exists()


def test_an_unknown_topic_is_a_404(dataset_admin):
    assert api_as(dataset_admin).post("/api/v1/topics/999999/augment/", {"share": 0.2},
                                      format="json").status_code == 404
    assert not Augmentation.objects.exists()


def test_the_cli_augments_a_topic_by_name(bank, capsys):
    call_command("augment", "--topic", "Bank", "--share", "0.2", "--seed", "1", "--kinds", "typo,chat")
    augmentation = Augmentation.objects.get()
    assert capsys.readouterr().out == (f"Augmentation #{augmentation.pk} of 'Bank': 3 pending questions written over "
                                       f"2 intents ({', '.join(f'{k} {n}' for k, n in sorted(augmentation.per_kind.items()))}).\n")
    assert {row[3].split(":")[0] for row in augmented(bank)} <= {"typo", "chat"}


@pytest.mark.parametrize(("arguments", "message"), [
    (["--topic", "Nope", "--share", "0.2"], "No topic named 'Nope' (or with that id)."),
    (["--topic", "Bank", "--share", "2"], "The share must be a number above 0 and at most 1"),
    (["--topic", "Bank", "--share", "0.2", "--kinds", "typo,emoji"], "Unknown augmentation kind 'emoji'"),
])
def test_the_cli_refuses_bad_input_and_writes_nothing(bank, arguments, message):
    with pytest.raises(CommandError) as refused:
        call_command("augment", *arguments)
    assert str(refused.value).startswith(message)
    assert not Augmentation.objects.exists() and not augmented(bank)


def test_the_admin_topic_action_asks_for_the_share_then_queues_a_job(bank, dataset_admin):
    browser = Client()
    browser.force_login(dataset_admin)
    url = "/admin/datasets/topic/"
    form = browser.post(url, {"action": "augment_selected", "_selected_action": [bank.pk]})
    assert form.status_code == 200 and b'name="share"' in form.content
    done = browser.post(url, {"action": "augment_selected", "_selected_action": [bank.pk], "apply": "1",
                              "share": "0.2", "seed": "4", "kinds": ["typo", "filler"]})
    assert done.status_code == 302
    augmentation = Augmentation.objects.get()
    assert (augmentation.topic, augmentation.share, augmentation.seed, augmentation.kinds, augmentation.status) == (
        bank, 0.2, 4, ["typo", "filler"], "queued")
    assert browser.get(f"/admin/datasets/augmentation/{augmentation.pk}/change/").status_code == 200


def test_an_export_marks_augmented_rows_and_keeps_each_with_its_source_in_a_split(bank, settings, tmp_path):
    import json

    from datasets.exports import export_create
    from datasets.jobs import export_run

    settings.EXPORT_ROOT = tmp_path
    augment(bank, share=0.5, seed=1)
    Question.objects.filter(topic=bank).update(status="approved", split="")
    export = export_create(topic=bank, format="jsonl", split={"train": 0.5, "test": 0.5}, seed=3, enqueue_job=False)
    export_run(export.pk)
    side = {}
    marked = {}
    for part in ("train", "test"):
        for line in (tmp_path / str(export.pk) / f"{part}.jsonl").read_text().splitlines():
            row = json.loads(line)
            side[row["question"]] = part
            if row["source"] == "augmented":
                marked[row["question"]] = row["transformation"]
            else:
                assert "transformation" not in row
    variants = Question.objects.filter(topic=bank, source="augmented").select_related("augmented_from")
    assert marked == {q.text: q.transformation for q in variants} and len(marked) == 7
    # A typo or a chat spelling changes the near-duplicate key: the split joins a variant to its source anyway.
    assert {q.text: side[q.text] for q in variants} == {q.text: side[q.augmented_from.text] for q in variants}
