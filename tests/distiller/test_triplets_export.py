"""The triplets export (JSONL and TSV) of a run's hard negatives, and exports that require the judge's pass."""

import csv
import io
import json

from datasets.exports import export_questions_of, export_stream
from datasets.models import Export, IntentNode, Question
from distiller.jobs import run_work
from distiller.selectors import intent_neighbours
from distiller.services import run_start
from tests.distiller.conftest import WORKERS

pytestmark = [WORKERS]


def test_triplets_load_with_plain_readers_and_every_negative_is_a_neighbour(topic, provider, teacher, make_intent):
    billing = make_intent(topic, "Billing")
    for name in ("Refunds", "Invoices", "Payment Methods"):
        make_intent(topic, name, parent=billing)
    delivery = make_intent(topic, "Delivery")
    make_intent(topic, "Tracking", parent=delivery)
    make_intent(topic, "Returns Label", parent=delivery)
    run = run_start(topic=topic, provider=provider, kind="questions", questions_per_intent=2, hard_negatives=2,
                    workers=0)
    run_work(run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error and run.hard_negatives_created == (3 * 2 + 2 * 1) * 2

    questions = Question.objects.filter(topic=topic)
    jsonl = [json.loads(line) for line in "".join(export_stream(questions=questions, format="triplets")).splitlines()]
    tsv = list(csv.DictReader(io.StringIO("".join(export_stream(questions=questions, format="triplets_tsv"))),
                              delimiter="\t"))

    assert len(jsonl) == len(tsv) == 16  # only the hard negatives, each once
    assert [{k: str(v) for k, v in row.items()} for row in jsonl] == tsv
    nodes = {node.intent_full_name: node for node in IntentNode.objects.filter(topic=topic)}
    for row in jsonl:
        positive, negative = nodes[row["positive"]], nodes[row["negative"]]
        assert negative in intent_neighbours(intent=positive)
        question = Question.objects.get(pk=row["id"])
        assert (question.text, question.intent, question.contrastive_of) == (row["query"], positive, negative)
    assert set(jsonl[0]) == {"query", "positive", "negative", "positive_path", "negative_path", "id", "source",
                             "transformation"}


def test_an_export_can_require_the_judges_pass(topic, make_intent, make_question):
    refunds = make_intent(topic, "Refunds")
    passed = make_question(refunds, "Where is my refund?", judge_verdict="pass")
    make_question(refunds, "Send me the invoice", judge_verdict="other_intent")
    unjudged = make_question(refunds, "Refund please")

    everything = Export(topic=topic, filters={"statuses": ["pending"]})
    judged = Export(topic=topic, filters={"statuses": ["pending"], "judge_passed": True})

    assert export_questions_of(everything).count() == 3 and unjudged in export_questions_of(everything)
    assert list(export_questions_of(judged)) == [passed]


def test_the_exports_api_takes_judge_passed(topic, superuser, make_intent, make_question):
    from rest_framework.test import APIClient

    make_question(make_intent(topic, "Refunds"), "Where is my refund?", judge_verdict="pass", status="approved")
    api = APIClient()
    api.force_authenticate(superuser)
    response = api.post("/api/v1/exports/", {"topic": topic.pk, "format": "jsonl", "judge_passed": True},
                        format="json")
    assert response.status_code == 202, response.data
    assert Export.objects.get().filters == {"statuses": ["approved", "relabeled"], "judge_passed": True}
