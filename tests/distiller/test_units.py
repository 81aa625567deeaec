"""One unit's pieces without workers: matching answers to requests, per-call records, the writers' stamps."""

from types import SimpleNamespace

from distiller.dedup import NearDuplicateIndex
from distiller.prompts import QUESTIONS
from distiller.services.questions import _screen


def ctx():
    return SimpleNamespace(parameters={"language": "en", "temperature": 0.7}, run_id=None,
                           provider=SimpleNamespace(name="Local"), model=lambda: "served-model")


def spec(n, complexity="simple"):
    return {"n": n, "style": "request", "complexity": complexity, "audience": "general", "edge_case": "none"}


def test_answers_numbered_from_one_in_a_later_batch_are_matched_by_position():
    batch = [spec(11, "simple"), spec(12, "complex")]
    answer = QUESTIONS.Answer.model_validate({"questions": [{"n": 1, "text": "How do I get my money back?"},
                                                            {"n": 2, "text": "Explain the refund policy in depth"}]})
    rows, counts = _screen(ctx(), 7, answer, batch, set(), NearDuplicateIndex(0.85))
    assert [(r["text"], r["complexity"], r["model"]) for r in rows] == [
        ("How do I get my money back?", "simple", "served-model"),
        ("Explain the refund policy in depth", "complex", "served-model")]
    assert counts["invalid_dropped"] == 0


def test_answers_with_the_requested_numbers_are_matched_by_number():
    batch = [spec(11, "simple"), spec(12, "complex")]
    answer = QUESTIONS.Answer.model_validate({"questions": [{"n": 12, "text": "Explain the refund policy in depth"},
                                                            {"n": 11, "text": "How do I get my money back?"}]})
    rows, counts = _screen(ctx(), 7, answer, batch, set(), NearDuplicateIndex(0.85))
    assert [(r["text"], r["complexity"]) for r in rows] == [("Explain the refund policy in depth", "complex"),
                                                            ("How do I get my money back?", "simple")]
    assert counts["invalid_dropped"] == 0


def test_answers_that_repeat_a_number_are_matched_by_position_not_dropped():
    batch = [spec(11, "simple"), spec(12, "complex"), spec(13, "simple")]
    answer = QUESTIONS.Answer.model_validate({"questions": [{"n": 11, "text": "How do I get my money back?"},
                                                            {"n": 11, "text": "Explain the refund policy in depth"},
                                                            {"n": 11, "text": "refund pls"}]})
    rows, counts = _screen(ctx(), 7, answer, batch, set(), NearDuplicateIndex(0.85))
    assert [(r["text"], r["complexity"]) for r in rows] == [("How do I get my money back?", "simple"),
                                                            ("Explain the refund policy in depth", "complex"),
                                                            ("refund pls", "simple")]
    assert counts["invalid_dropped"] == 0


def test_extra_items_beyond_the_batch_are_invalid_when_matched_by_position():
    answer = QUESTIONS.Answer.model_validate({"questions": [{"n": 1, "text": "First question here?"},
                                                            {"n": 2, "text": "An item nobody asked for"}]})
    rows, counts = _screen(ctx(), 7, answer, [spec(5)], set(), NearDuplicateIndex(0.85))
    assert [r["text"] for r in rows] == ["First question here?"] and counts["invalid_dropped"] == 1


def test_a_verdict_passes_only_the_questions_own_intent_at_the_threshold():
    from distiller.services.judge import verdict_of

    assert verdict_of(intent_id=7, chosen_id=7, naturalness=4, threshold=0.75) == ("pass", 0.75)
    assert verdict_of(intent_id=7, chosen_id=7, naturalness=4, threshold=0.8) == ("low_score", 0.75)
    assert verdict_of(intent_id=7, chosen_id=8, naturalness=5, threshold=0.0) == ("other_intent", 0.0)
    assert verdict_of(intent_id=7, chosen_id=None, naturalness=5, threshold=0.0) == ("no_intent", 0.0)
    assert verdict_of(intent_id=7, chosen_id=7, naturalness=9, threshold=1.0) == ("pass", 1.0)  # clamped to 1-5
