"""Each prompt version's exact text (a snapshot), and that the newest send every piece of data once."""

import json
from pathlib import Path

import pytest

from distiller import prompts
from distiller.prompts import judge_v1, questions_v1, questions_v2, questions_v3, refine_v1, taxonomy_v1, taxonomy_v2

SNAPSHOTS = Path(__file__).parent / "snapshots" / "prompts.json"
ITEMS = [{"n": 1, "style": "question", "complexity": "simple", "audience": "general", "edge_case": "none"},
         {"n": 2, "style": "request", "complexity": "complex", "audience": "expert", "edge_case": "ambiguous"}]
NEIGHBOURS = [{"name": "Billing -> Invoices", "description": "Invoice copies"}]
PROMPTS = {
    "taxonomy-v1": lambda: taxonomy_v1.messages(topic="Shop", parent_path=["Billing"], count=2, language="en",
                                                existing=["Refunds"]),
    "taxonomy-v2": lambda: taxonomy_v2.messages(
        topic="Shop", parent_path=["Billing"], count=2, language="en", existing=["Refunds"],
        topic_description="An online shoe shop", parent_description="Money matters",
        tree=["Billing", "Delivery", "Delivery -> Tracking"]),
    "questions-v1": lambda: questions_v1.messages(topic="Shop", intent_path=["Billing", "Refunds"],
                                                  description="Money back", language="en", items=ITEMS,
                                                  existing=["Where is my refund?"]),
    "questions-v2": lambda: questions_v2.messages(topic="Shop", intent_path=["Billing", "Refunds"],
                                                  description="Money back", language="en", items=ITEMS,
                                                  existing=["Where is my refund?"]),
    "questions-v3": lambda: questions_v3.messages(
        topic="Shop", intent_path=["Billing", "Refunds"], description="Money back", language="en", items=ITEMS,
        existing=["Where is my refund?"], topic_description="An online shoe shop", neighbours=NEIGHBOURS),
    "judge-v1": lambda: judge_v1.messages(
        topic="Shop", topic_description="An online shoe shop", language="en", intent="Billing -> Refunds",
        candidates=[{"name": "Billing -> Refunds", "description": "Money back"}, *NEIGHBOURS],
        questions=[{"n": 1, "text": "Where is my refund?"}]),
    "refine-v1": lambda: refine_v1.messages(
        topic="Shop", intent_path=["Billing", "Refunds"], description="Money back", language="en",
        neighbours=NEIGHBOURS, items=[{"n": 1, "text": "Send me the invoice", "reason": "It asks about invoices."}]),
}


def text(messages) -> str:
    return "\n".join(m["content"] for m in messages)


@pytest.mark.parametrize("version", sorted(PROMPTS))
def test_each_prompt_version_says_exactly_its_snapshot(version):
    assert PROMPTS[version]() == json.loads(SNAPSHOTS.read_text())[version]


def test_the_current_prompts_are_the_newest_versions():
    assert (prompts.TAXONOMY.VERSION, prompts.QUESTIONS.VERSION, prompts.JUDGE.VERSION, prompts.REFINE.VERSION) == (
        "taxonomy-v2", "questions-v3", "judge-v1", "refine-v1")


@pytest.mark.parametrize("version, data", [
    ("taxonomy-v2", ["An online shoe shop", "Money matters", "Refunds", "Delivery -> Tracking"]),
    ("questions-v3", ["An online shoe shop", "Money back", "Where is my refund?", "Invoice copies", "expert"]),
    ("judge-v1", ["An online shoe shop", "Money back", "Where is my refund?", "Invoice copies"]),
    ("refine-v1", ["Money back", "Send me the invoice", "It asks about invoices.", "Invoice copies"]),
])
def test_the_newest_prompts_send_each_piece_of_data_once(version, data):
    prompt = text(PROMPTS[version]())
    assert {piece: prompt.count(piece) for piece in data} == dict.fromkeys(data, 1)


def test_the_older_versions_sent_the_existing_questions_twice():
    assert text(PROMPTS["questions-v2"]()).count("Where is my refund?") == 2  # why questions-v3 exists


def test_ambiguous_now_asks_for_vague_wording_that_still_belongs_to_the_intent():
    prompt = text(PROMPTS["questions-v3"]())
    assert "- edge_case ambiguous: vague or indirect wording, yet it still clearly belongs to the intent" in prompt
    assert "must be inferred" not in prompt


def test_hard_negative_and_out_of_scope_prompts_say_what_they_ask_for():
    contrast = text(questions_v3.messages(topic="Shop", intent_path=["Billing", "Refunds"], description="", language="en",
                                          items=ITEMS[:1], existing=[], neighbours=NEIGHBOURS, contrast=NEIGHBOURS[0]))
    assert "shares wording and vocabulary with the neighbouring intent `contrast`, yet clearly belongs to" in contrast
    assert '"contrast": {"name": "Billing -> Invoices"' in contrast and contrast.count("Invoice copies") == 1
    outside = text(questions_v3.messages(topic="Shop", intent_path=["Out of scope"], description="", language="en",
                                         items=ITEMS[:1], existing=[], neighbours=NEIGHBOURS, out_of_scope=True))
    assert "belong to NONE of the intents listed in `neighbours`" in outside and '"task": "out_of_scope"' in outside
