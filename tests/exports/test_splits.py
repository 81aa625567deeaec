"""The split: stratified by intent, deterministic for a seed, duplicates on one side, ratios checked."""

from collections import Counter

import pytest

from datasets.services import DatasetError
from datasets.splits import SplitPlanner, near_duplicate_key, split_plan, split_ratios_validate, split_targets

RATIOS = {"train": 0.8, "validation": 0.1, "test": 0.1}


def word(number: int) -> str:
    """A distinct word per number, without digits (numbers do not make questions distinct)."""
    letters = ""
    while True:
        number, rest = divmod(number, 26)
        letters += "abcdefghijklmnopqrstuvwxyz"[rest]
        if not number:
            return letters


def rows_for(intent_sizes: dict[int, int]) -> list[tuple[int, str]]:
    """Questions that are distinct, also across intents ("b question about c" and "c question
    about b" would be one bag of words)."""
    return [(intent, f"{word(intent)}intent question about {word(i)}") for intent, n in intent_sizes.items()
            for i in range(n)]


def placement(rows, plan) -> Counter:
    return Counter((intent, plan.split_of(text)) for intent, text in rows)


def test_every_intent_gets_the_ratios_exactly_when_questions_are_distinct():
    rows = rows_for({1: 100, 2: 50, 3: 20})
    plan = split_plan(rows=rows, ratios=RATIOS, seed=1)
    counts = placement(rows, plan)
    assert [counts[(1, s)] for s in ("train", "validation", "test")] == [80, 10, 10]
    assert [counts[(2, s)] for s in ("train", "validation", "test")] == [40, 5, 5]
    assert [counts[(3, s)] for s in ("train", "validation", "test")] == [16, 2, 2]
    assert plan.warnings == []


def test_the_same_seed_gives_the_same_split_and_another_seed_a_different_one():
    rows = rows_for({1: 60, 2: 60})
    first = {text: split_plan(rows=rows, ratios=RATIOS, seed=5).split_of(text) for _, text in rows}
    again = {text: split_plan(rows=rows, ratios=RATIOS, seed=5).split_of(text) for _, text in rows}
    other = {text: split_plan(rows=rows, ratios=RATIOS, seed=6).split_of(text) for _, text in rows}
    assert first == again
    assert first != other


def test_near_duplicates_never_straddle_train_and_test():
    variants = ["Reset my password!", "reset my password", "Please reset my password", "password reset my",
                "Can you reset my password?"]
    rows = [(1, text) for text in variants] + rows_for({1: 30})
    for seed in range(20):
        plan = split_plan(rows=rows, ratios={"train": 0.5, "test": 0.5}, seed=seed)
        assert len({plan.split_of(text) for text in variants}) == 1


def test_a_near_duplicate_under_another_intent_stays_on_the_same_side():
    rows = [(1, "Where is my parcel 123?")] + rows_for({1: 9}) + [(2, "where is my parcel 987")] + rows_for({2: 9})
    for seed in range(20):
        plan = split_plan(rows=rows, ratios={"train": 0.5, "test": 0.5}, seed=seed)
        assert plan.split_of("Where is my parcel 123?") == plan.split_of("where is my parcel 987")


def test_near_duplicate_keys_ignore_case_punctuation_numbers_order_and_filler_but_not_meaning():
    assert near_duplicate_key("Reset my password!") == near_duplicate_key("please RESET   password")
    assert near_duplicate_key("Order 12 pizzas") == near_duplicate_key("order 7 pizzas")
    assert near_duplicate_key("Reset my password") != near_duplicate_key("Reset my username")


def test_intents_too_small_for_the_split_are_reported_and_still_placed():
    rows = rows_for({1: 100, 7: 2})
    plan = split_plan(rows=rows, ratios=RATIOS, seed=1, intent_label=lambda i: f"#{i}")
    assert plan.warnings == ["Intent #7 has 2 questions (2 distinct), too few for this split: validation, test "
                             "get none of it."]
    assert sum(n for (intent, _), n in placement(rows, plan).items() if intent == 7) == 2


def test_targets_add_up_to_the_intent_size():
    for n in range(0, 40):
        assert sum(split_targets(n, [0.8, 0.1, 0.1])) == n
    assert split_targets(10, [0.8, 0.1, 0.1]) == [8, 1, 1]


@pytest.mark.parametrize("ratios, message", [
    ({"train": 0.8, "test": 0.3}, "add up to 1"),
    ({"train": 1.2, "test": -0.2}, "above 0 and at most 1"),
    ({"train": "0.5", "test": 0.5}, "must be a number"),
    ({"Train Set": 1.0}, "lowercase letters"),
    ([0.8, 0.2], "must be an object"),
    ({f"s{i}": 1 / 6 for i in range(6)}, "at most 5 parts"),
])
def test_bad_ratios_are_refused_with_a_reason(ratios, message):
    with pytest.raises(DatasetError, match=message):
        split_ratios_validate(ratios)


def test_ratios_come_back_in_conventional_order():
    assert list(split_ratios_validate({"test": 0.1, "validation": 0.1, "train": 0.8})) == ["train", "validation",
                                                                                             "test"]
    assert split_ratios_validate({}) == {}


def test_a_planner_told_which_groups_span_intents_remembers_only_those():
    shared_text = "where is my parcel"
    rows = [(1, shared_text)] + rows_for({1: 19}) + [(2, "Where is my parcel 987?")] + rows_for({2: 19})
    planner = SplitPlanner(ratios={"train": 0.5, "test": 0.5}, seed=3, shared={near_duplicate_key(shared_text)})
    parts = {}
    for intent in (1, 2):
        texts = [text for i, text in rows if i == intent]
        parts[intent] = dict(zip(texts, planner.place(intent, [near_duplicate_key(t) for t in texts]), strict=True))
    assert parts[1][shared_text] == parts[2]["Where is my parcel 987?"]
    assert list(planner.assignment) == [near_duplicate_key(shared_text)]
    assert [sum(1 for p in parts[i].values() if p == 0) for i in (1, 2)] == [10, 10]
