"""Kept question counts (datasets/question_counts.py, issue 18): after every write path the counts
the triggers keep equal a real GROUP BY over the question table, and the pages that read them
show what counting showed."""

import io
import json
import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from datasets import question_counts
from datasets.imports import question_copy_defaults, questions_import
from datasets.lifecycle import (
    intent_delete,
    intent_merge,
    questions_purge,
    questions_remove,
    questions_restore,
    topic_delete_in_batches,
    topic_deletion_start,
)
from datasets.models import IntentNode, Question, QuestionCount, Topic
from datasets.normalize import near_duplicate_key, text_hash
from datasets.question_counts import (
    kept_counts,
    question_counts_compact,
    question_counts_rebuild,
    status_counts_by,
)
from datasets.selectors import taxonomy_with_counts, topic_status_counts
from datasets.services import intent_create, question_bulk_create
from labeling.selectors import topic_progress, topics_overview
from labeling.services import question_review, questions_review_matching

pytestmark = pytest.mark.django_db


def counted() -> dict[tuple, int]:
    """What a GROUP BY over the question table says: {(topic, intent, status, removed): n}."""
    rows = Question.objects.values("topic_id", "intent_id", "status").annotate(
        live=Count("pk", filter=Q(removed_at__isnull=True)), removed=Count("pk", filter=Q(removed_at__isnull=False)))
    counts = {}
    for row in rows.order_by():
        for removed in (False, True):
            if row["removed" if removed else "live"]:
                counts[(row["topic_id"], row["intent_id"], row["status"], removed)] = row[
                    "removed" if removed else "live"]
    return counts


def kept() -> dict[tuple, int]:
    """What the kept rows sum to, keys with no questions left out."""
    sums = {}
    for row in QuestionCount.objects.values_list("topic_id", "intent_id", "status", "removed", "n"):
        sums[row[:4]] = sums.get(row[:4], 0) + row[4]
    return {key: n for key, n in sums.items() if n}


def assert_kept_equals_counted():
    assert kept() == counted()


@pytest.fixture
def tree(topic, make_intent):
    billing = make_intent(topic, "Billing")
    return {"billing": billing, "refunds": make_intent(topic, "Refunds", parent=billing),
            "invoices": make_intent(topic, "Invoices", parent=billing)}


def test_created_bulk_created_and_raw_sql_updated_questions_are_counted(topic, tree, make_question):
    make_question(tree["refunds"], "Where is my refund?")
    make_question(tree["invoices"], "Send the invoice", status="approved")
    question_bulk_create(topic=topic, rows=[{"text": f"refund {n}", "intent": tree["refunds"]} for n in range(7)])
    assert kept() == {(topic.pk, tree["refunds"].pk, "pending", False): 8,
                      (topic.pk, tree["invoices"].pk, "approved", False): 1}
    with connection.cursor() as cursor:
        cursor.execute("UPDATE datasets_question SET status = 'rejected' WHERE text LIKE 'refund %%'")
    assert_kept_equals_counted()
    rows_before = QuestionCount.objects.count()
    # Columns the counts do not depend on: no row is added.
    Question.objects.update(lease_expires_at=timezone.now(), judge_reason="fine")
    Question.objects.filter(text="Send the invoice").update(status="approved")
    assert QuestionCount.objects.count() == rows_before
    # INSERT … ON CONFLICT DO NOTHING: only the rows really inserted are counted.
    Question.objects.bulk_create([Question(topic=topic, intent=tree["invoices"], text="refund 1", text_hash=text_hash(
        "refund 1")), Question(topic=topic, intent=tree["invoices"], text="fresh one", text_hash="fresh")],
        ignore_conflicts=True)
    assert_kept_equals_counted()
    Question.objects.filter(text__in=["refund 3", "fresh one"]).delete()
    assert kept() == {(topic.pk, tree["refunds"].pk, "pending", False): 1,
                      (topic.pk, tree["refunds"].pk, "rejected", False): 6,
                      (topic.pk, tree["invoices"].pk, "approved", False): 1}
    assert_kept_equals_counted()


def test_captured_queries_and_their_repeats_are_counted(topic, tree):
    from labeling.services import capture_record

    topic.confidence_threshold = 0.7
    topic.save()
    for confidence in (0.5, 0.4, 0.9):
        capture_record(topic=topic, text="Where did my refund go", predicted_intent=tree["refunds"],
                       confidence=confidence)
    capture_record(topic=topic, text="Invoice missing", predicted_intent=tree["invoices"], confidence=0.2)
    assert Question.objects.get(text="Where did my refund go").occurrences >= 2
    assert kept() == counted() == {(topic.pk, tree["refunds"].pk, "pending", False): 1,
                                   (topic.pk, tree["invoices"].pk, "pending", False): 1}


def test_an_imported_file_is_counted_a_few_rows_per_copy_batch(topic, tree, monkeypatch):
    monkeypatch.setattr("datasets.imports.COPY_BATCH", 4)
    lines = [{"question": f"Refund number {n}", "intent_number": tree["refunds"].number} for n in range(9)]
    lines += [{"question": f"Invoice number {n}", "intent_number": tree["invoices"].number, "status": "approved"}
              for n in range(3)]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    report = questions_import(topic=topic, stream=io.BytesIO(data), format="jsonl")
    assert report.created == 12
    assert kept() == {(topic.pk, tree["refunds"].pk, "pending", False): 9,
                      (topic.pk, tree["invoices"].pk, "approved", False): 3}
    # One aggregated row per key and COPY statement (batches of 4: 4, 4, 1+3), not one per question.
    assert QuestionCount.objects.count() == 4


def test_a_copy_load_like_the_benchmarks_adds_one_row_per_key(topic, tree):
    columns, defaults = question_copy_defaults(timezone.now())
    attnames = list(defaults)
    with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY datasets_question ({', '.join(columns)}) FROM STDIN") as copy:
        for n in range(3000):
            text = f"copied question {n}"
            row = {**defaults, "topic_id": topic.pk, "intent_id": tree["refunds" if n % 3 else "invoices"].pk,
                   "text": text, "text_hash": text_hash(text), "near_key": near_duplicate_key(text),
                   "status": "approved" if n % 10 < 8 else "pending"}
            copy.write_row([row[name] for name in attnames])
    assert kept() == counted() == {(topic.pk, tree["refunds"].pk, "approved", False): 1600,
                                   (topic.pk, tree["refunds"].pk, "pending", False): 400,
                                   (topic.pk, tree["invoices"].pk, "approved", False): 800,
                                   (topic.pk, tree["invoices"].pk, "pending", False): 200}
    assert QuestionCount.objects.count() == 4


def test_reviews_bulk_reviews_and_undo_are_counted(topic, tree, make_question, dataset_admin):
    questions = [make_question(tree["refunds"], f"refund question {n}") for n in range(6)]
    question_review(question_id=questions[0].pk, actor=dataset_admin, action="approve")
    question_review(question_id=questions[1].pk, actor=dataset_admin, action="reject")
    question_review(question_id=questions[2].pk, actor=dataset_admin, action="relabel", intent_id=tree["invoices"].pk)
    question_review(question_id=questions[3].pk, actor=dataset_admin, action="flag")
    question_review(question_id=questions[4].pk, actor=dataset_admin, action="edit", text="refund, edited")
    assert_kept_equals_counted()
    question_review(question_id=questions[2].pk, actor=dataset_admin, action="undo")
    assert_kept_equals_counted()
    result = questions_review_matching(queryset=Question.objects.filter(status="pending"), actor=dataset_admin,
                                       action="relabel", intent_id=tree["invoices"].pk)
    assert result.changed == 3
    assert kept() == {(topic.pk, tree["refunds"].pk, "approved", False): 1,
                      (topic.pk, tree["refunds"].pk, "rejected", False): 1,
                      (topic.pk, tree["refunds"].pk, "flagged", False): 1,
                      (topic.pk, tree["invoices"].pk, "relabeled", False): 3}
    assert_kept_equals_counted()


def test_removed_restored_and_purged_questions_are_counted_apart(topic, tree, make_question, dataset_admin):
    questions = [make_question(tree["refunds"], f"refund question {n}", status="approved") for n in range(4)]
    questions_remove(questions=Question.objects.filter(pk__in=[q.pk for q in questions[:3]]), actor=dataset_admin)
    assert kept() == {(topic.pk, tree["refunds"].pk, "approved", False): 1,
                      (topic.pk, tree["refunds"].pk, "approved", True): 3}
    questions_restore(questions=Question.objects.filter(pk=questions[0].pk), actor=dataset_admin)
    Question.objects.filter(pk=questions[1].pk).update(removed_at=timezone.now() - timedelta(days=40))
    questions_purge(older_than=timedelta(days=30), actor=dataset_admin)
    assert kept() == {(topic.pk, tree["refunds"].pk, "approved", False): 2,
                      (topic.pk, tree["refunds"].pk, "approved", True): 1}
    assert_kept_equals_counted()


def test_merged_and_deleted_intents_take_their_counts_along(topic, tree, make_intent, make_question, dataset_admin):
    account = make_intent(topic, "Account")
    for n in range(3):
        make_question(tree["refunds"], f"refund question {n}", status="approved")
        make_question(tree["invoices"], f"invoice question {n}")
    make_question(account, "my account")
    intent_merge(source=tree["refunds"], target=tree["invoices"], actor=dataset_admin)
    assert_kept_equals_counted()
    intent_delete(node=tree["billing"], actor=dataset_admin, move_questions_to=account)
    assert kept() == {(topic.pk, account.pk, "approved", False): 3, (topic.pk, account.pk, "pending", False): 4}
    assert_kept_equals_counted()


def test_a_deleted_topic_leaves_no_counts_once_compacted(topic, tree, make_topic, make_intent, make_question,
                                                         dataset_admin, django_capture_on_commit_callbacks):
    other = make_intent(make_topic("Other"), "Leaf")
    make_question(other, "elsewhere")
    for n in range(5):
        make_question(tree["refunds"], f"refund question {n}")
    with django_capture_on_commit_callbacks(execute=False):
        deletion = topic_deletion_start(topic=topic, actor=dataset_admin)
    topic_delete_in_batches(deletion=deletion, batch_size=2)
    assert not Topic.objects.filter(pk=topic.pk).exists()
    assert kept() == counted() == {(other.topic_id, other.pk, "pending", False): 1}
    assert kept_counts(topic_ids=[topic.pk]) == []
    question_counts_compact(topic_ids=[topic.pk])
    assert not QuestionCount.objects.filter(topic_id=topic.pk).exists()


def test_a_compaction_folds_rows_into_one_per_key_and_reads_compact_crowded_topics(topic, tree, make_question,
                                                                                  dataset_admin, monkeypatch):
    questions = [make_question(tree["refunds"], f"refund question {n}") for n in range(10)]
    for question in questions:
        question_review(question_id=question.pk, actor=dataset_admin, action="approve")
    question_review(question_id=questions[0].pk, actor=dataset_admin, action="reset")
    assert QuestionCount.objects.filter(topic_id=topic.pk).count() == 10 + 2 * 11
    monkeypatch.setattr(question_counts, "COMPACT_AFTER_ROWS", 100)
    assert {(r.status, r.n) for r in kept_counts(topic_ids=[topic.pk])} == {("approved", 9), ("pending", 1)}
    assert QuestionCount.objects.filter(topic_id=topic.pk).count() == 32  # not crowded yet
    monkeypatch.setattr(question_counts, "COMPACT_AFTER_ROWS", 20)
    assert {(r.status, r.n) for r in kept_counts(topic_ids=[topic.pk])} == {("approved", 9), ("pending", 1)}
    assert sorted(QuestionCount.objects.filter(topic_id=topic.pk).values_list("status", "n")) == [
        ("approved", 9), ("pending", 1)]
    assert_kept_equals_counted()


def test_a_rebuild_repairs_counts_that_went_wrong(topic, tree, make_question):
    make_question(tree["refunds"], "refund me")
    QuestionCount.objects.create(topic_id=topic.pk, intent_id=tree["refunds"].pk, status="pending", removed=False, n=5)
    assert kept() != counted()
    question_counts_rebuild()
    assert kept() == counted() == {(topic.pk, tree["refunds"].pk, "pending", False): 1}
    assert question_counts.question_count_triggers_missing() == []


def test_the_command_finds_a_wrong_count_and_rebuilds_it(topic, tree, make_question):
    from django.core.management import CommandError, call_command

    make_question(tree["refunds"], "refund me")
    out = io.StringIO()
    call_command("question_counts", stdout=out)
    assert out.getvalue() == "The kept question counts are exact.\n"
    QuestionCount.objects.create(topic_id=topic.pk, intent_id=tree["refunds"].pk, status="pending", removed=False, n=2)
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 count\\(s\\) differ"):
        call_command("question_counts", "--check", stdout=out)
    assert out.getvalue() == f"topic {topic.pk}, intent {tree['refunds'].pk}, pending: kept 3, counted 1\n"
    call_command("question_counts", "--rebuild", stdout=io.StringIO())
    call_command("question_counts", "--compact", stdout=io.StringIO())
    assert kept() == counted() == {(topic.pk, tree["refunds"].pk, "pending", False): 1}
    assert QuestionCount.objects.count() == 1


def test_the_pages_show_what_counting_showed(topic, tree, make_topic, make_intent, make_question, dataset_admin):
    make_question(tree["refunds"], "refund one", status="approved")
    make_question(tree["refunds"], "refund two", status="relabeled")
    make_question(tree["invoices"], "invoice one")
    make_question(tree["invoices"], "invoice two", status="flagged")
    make_question(tree["billing"], "billing itself", status="rejected")
    gone = make_question(tree["invoices"], "invoice removed", status="approved")
    questions_remove(questions=Question.objects.filter(pk=gone.pk), actor=dataset_admin)
    empty = make_topic("Empty")
    nodes = {node.name: node for node in taxonomy_with_counts(topic=topic)}
    assert nodes["Refunds"].counts == {"approved": 1, "relabeled": 1}
    assert nodes["Invoices"].counts == {"pending": 1, "flagged": 1}
    assert nodes["Billing"].counts == {"rejected": 1}
    assert nodes["Billing"].subtree_counts == {"approved": 1, "relabeled": 1, "pending": 1, "flagged": 1,
                                               "rejected": 1}
    assert topic_status_counts(topic=topic) == {"approved": 1, "relabeled": 1, "pending": 1, "flagged": 1,
                                                "rejected": 1}
    progress = {row.name: (row.approved, row.pending, row.flagged, row.rejected) for row in topic_progress(topic=topic)}
    assert progress == {"Refunds": (2, 0, 0, 0), "Invoices": (0, 1, 1, 0), "Billing": (0, 0, 0, 1)}
    overview = {row["topic"].name: {k: v for k, v in row.items() if k != "topic"}
                for row in topics_overview(topics=Topic.objects.all())}
    assert overview == {"Customer Support": {"id": topic.pk, "total": 5, "pending": 1, "approved": 2, "flagged": 1},
                        "Empty": {"id": empty.pk, "total": 0, "pending": 0, "approved": 0, "flagged": 0}}
    # The admin's lists count removed questions too, as they always did.
    assert status_counts_by(field="topic_id", ids=[topic.pk, empty.pk], include_removed=True) == {
        topic.pk: {"approved": 2, "relabeled": 1, "pending": 1, "flagged": 1, "rejected": 1}, empty.pk: {}}
    assert status_counts_by(field="intent_id", ids=[tree["invoices"].pk, tree["refunds"].pk],
                            include_removed=True) == {tree["invoices"].pk: {"approved": 1, "pending": 1, "flagged": 1},
                                                      tree["refunds"].pk: {"approved": 1, "relabeled": 1}}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_reviewers_and_compactions_keep_the_counts_exact():
    """8 reviewers on their own connections review 15 questions each at once (approve, reject,
    relabel), while compactions run: the kept counts equal a GROUP BY at the end."""
    topic = Topic.objects.create(name="Concurrency")
    first = intent_create(topic=topic, name="First")
    second = intent_create(topic=topic, name="Second")
    Question.objects.bulk_create([Question(topic=topic, intent=first, text=f"question {n}", text_hash=f"{n:040d}")
                                  for n in range(120)])
    ids = list(Question.objects.filter(topic=topic).order_by("pk").values_list("pk", flat=True))
    admins = Group.objects.get(name="dataset admin")
    reviewers = []
    for n in range(8):
        user = User.objects.create_user(username=f"concurrent{n}")
        user.groups.add(admins)
        reviewers.append(user)
    errors: list[BaseException] = []
    start = threading.Barrier(len(reviewers) + 1)

    def review(index, user):
        try:
            start.wait()
            for k, question_id in enumerate(ids[index::len(reviewers)]):
                action = ("approve", "reject", "relabel")[k % 3]
                question_review(question_id=question_id, actor=user, action=action,
                                intent_id=second.pk if action == "relabel" else None)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    def compact():
        try:
            start.wait()
            for _ in range(20):
                question_counts_compact(topic_ids=[topic.pk])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=review, args=(i, user)) for i, user in enumerate(reviewers)]
    threads.append(threading.Thread(target=compact))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert kept() == counted() == {(topic.pk, first.pk, "approved", False): 40,
                                   (topic.pk, first.pk, "rejected", False): 40,
                                   (topic.pk, second.pk, "relabeled", False): 40}
    assert IntentNode.objects.filter(topic=topic).count() == 2


SQLITE_SCRIPT = """
import django
django.setup()
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from datasets.models import Question, Topic
from datasets.question_counts import question_count_triggers_missing, question_counts_differences
from datasets.services import intent_create

call_command("migrate", verbosity=0)
topic = Topic.objects.create(name="Demo")
first, second = intent_create(topic=topic, name="First"), intent_create(topic=topic, name="Second")
Question.objects.bulk_create([Question(topic=topic, intent=first, text=f"q{n}", text_hash=str(n)) for n in range(6)])
Question.objects.filter(text__in=["q0", "q1"]).update(status="approved", intent=second)
Question.objects.filter(text="q2").update(removed_at=timezone.now())
Question.objects.filter(text="q3").update(lease_expires_at=timezone.now())
Question.objects.filter(text="q4").delete()
print(question_counts_differences(), Question.objects.count())
with connection.cursor() as cursor:  # what Django's remake of an altered SQLite table does to triggers
    cursor.execute("DROP TRIGGER question_counts_update")
print(question_count_triggers_missing())
call_command("migrate", verbosity=0)
Question.objects.filter(text="q5").update(status="rejected")
print(question_count_triggers_missing(), question_counts_differences())
"""


def test_the_sqlite_demo_keeps_counts_with_row_triggers_and_puts_lost_ones_back(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DEBUG="1", VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings",
               DATABASE_URL=f"sqlite:///{tmp_path}/demo.sqlite3")
    result = subprocess.run([sys.executable, "-c", SQLITE_SCRIPT], cwd=Path(__file__).resolve().parents[2], env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == ["{} 5", "['question_counts_update']", "[] {}"]
