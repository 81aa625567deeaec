"""The split leakage guard: a ratio split keeps near duplicates and paraphrases on one side, so
the health report finds no pair across train and test in the exported CLINC150 files."""

from collections import Counter

from datasets.clinc150 import clinc150_import
from datasets.exports import export_create
from datasets.health.report import health_report
from datasets.health.sources import file_health_data
from datasets.jobs import export_run
from datasets.models import Export, Question
from datasets.splits import SplitPlanner

SPLIT = {"train": 0.8, "test": 0.2}


def test_a_paraphrase_group_is_placed_whole_under_the_key_of_its_group():
    # Keys 11 and 12 are paraphrases (one group, key 11); 13 is alone. With the group, 11 and 12
    # always land together; the planner remembers the group across intents.
    planner = SplitPlanner(ratios={"train": 0.5, "test": 0.5}, seed=1, groups={11: 11, 12: 11}, shared=set())
    parts = planner.place(1, [planner.group_of(k) for k in [11, 12, 13, 14]])
    assert parts[0] == parts[1]
    assert planner.assignment == {11: parts[0]}
    assert planner.place(2, [planner.group_of(12)]) == [parts[0]]


def test_the_clinc150_export_with_a_split_has_no_near_duplicate_or_paraphrase_across_train_and_test(
        db, settings, tmp_path):
    settings.EXPORT_ROOT = tmp_path
    topic = clinc150_import().topic
    export = export_create(topic=topic, format="jsonl", split=SPLIT, seed=42, enqueue_job=False)
    export_run(export.pk)
    export.refresh_from_db()
    assert export.status == Export.Status.SUCCEEDED, export.error
    exported = Question.objects.filter(topic=topic, intent__out_of_scope=False).count()
    # Whole groups move, the fair rounding keeps the parts within a few questions of 80/20.
    assert sum(export.counts.values()) == exported == 22_434
    assert abs(export.counts["test"] - exported * 0.2) < 20

    folder = tmp_path / str(export.pk)
    with open(folder / "train.jsonl", "rb") as train, open(folder / "test.jsonl", "rb") as test:
        report = health_report(file_health_data(files=[("train.jsonl", train), ("test.jsonl", test)]))
    leakage = report["leakage"]
    assert leakage["checked"] is True and leakage["split"] == "the rows' splits"
    assert (leakage["near"]["count"], leakage["paraphrases"]["count"]) == (0, 0)
    assert Counter(r["a"]["split"] for r in leakage["paraphrases"]["listed"]) == Counter()
