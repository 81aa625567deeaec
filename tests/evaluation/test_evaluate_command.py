"""`manage.py evaluate --topic NAME_OR_ID` finds a topic as `manage.py export` does: by its exact
name first, then by an ASCII-digit id, with the same message when there is none."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from datasets.models import Topic
from evaluation.models import Evaluation
from tests.evaluation.conftest import small_topic_build


def evaluate(*args) -> None:
    call_command("evaluate", *args, "--json", "--no-learning-curve", "--no-label-issues")


@pytest.fixture
def named_2024_and_id_2024(db):
    """A topic named "2024" (with data to evaluate) and another whose id is 2024 (with none)."""
    named = Topic.objects.create(name="2024")
    small_topic_build(named)
    numbered = Topic.objects.create(pk=2024, name="Numbered")
    assert named.pk != 2024
    return named, numbered


def test_a_topic_named_like_a_number_is_found_by_its_name_first(named_2024_and_id_2024, capsys):
    named, _ = named_2024_and_id_2024
    evaluate("--topic", "2024")
    printed = json.loads(capsys.readouterr().out)
    assert printed["topic"] == {"id": named.pk, "name": "2024"} and printed["status"] == "succeeded"
    assert list(Evaluation.objects.values_list("topic_id", flat=True)) == [named.pk]


def test_a_number_that_is_no_topic_name_is_an_id(named_2024_and_id_2024):
    named, _ = named_2024_and_id_2024
    Topic.objects.filter(pk=named.pk).update(name="Renamed")
    with pytest.raises(CommandError) as refused:  # the topic with id 2024 has nothing reviewed
        evaluate("--topic", f" {2024} ")
    assert str(refused.value).startswith("Topic 'Numbered' has no approved or relabeled questions")
    assert not Evaluation.objects.exists()


@pytest.mark.parametrize("raw", ["Nope", "١", "99999", "0"])
def test_no_such_topic_is_said_as_export_says_it(named_2024_and_id_2024, raw):
    with pytest.raises(CommandError) as refused:
        evaluate("--topic", raw)
    assert str(refused.value) == f"No topic named {raw!r} (or with that id)."
    assert not Evaluation.objects.exists()
