"""The data lifecycle (datasets/lifecycle.py): deleting a topic with everything it owns, archiving,
removing and restoring questions with their history, purging, merging and deleting intents."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from datasets.jobs import topic_delete_run
from datasets.lifecycle import (
    intent_delete,
    intent_merge,
    questions_purge,
    questions_remove,
    questions_restore,
    topic_archive,
    topic_deletion_plan,
    topic_deletion_start,
    topic_unarchive,
)
from datasets.models import DataDeletion, Export, IntentNode, Question, QuestionBand, ReviewEvent, Topic
from datasets.selectors import export_questions
from datasets.services import DatasetError
from distiller.models import DistillationRun, DistillationUnit, LLMCall, LLMProvider
from evaluation.models import Evaluation, LabelIssue
from labeling.services import question_lease_next, question_review


@pytest.fixture
def export_root(settings, tmp_path):
    settings.EXPORT_ROOT = tmp_path / "exports"
    settings.EXPORT_ROOT.mkdir()
    return settings.EXPORT_ROOT


@pytest.fixture
def full_topic(topic, make_intent, make_question, dataset_admin, export_root):
    """A topic with two levels of intents, questions with review events, a run with a unit and an
    LLM call, an export and an evaluation with their files, and a label issue."""
    billing = make_intent(topic, "Billing")
    refunds = make_intent(topic, "Refunds", parent=billing)
    invoices = make_intent(topic, "Invoices", parent=billing)
    questions = [make_question(refunds, f"Where is my refund number {n}?") for n in range(5)]
    questions += [make_question(invoices, f"Send me invoice {n} again") for n in range(3)]
    for question in questions[:4]:
        question_review(question_id=question.pk, actor=dataset_admin, action="approve")
    run = DistillationRun.objects.create(topic=topic, provider=LLMProvider.objects.first(),
                                         status=DistillationRun.Status.SUCCEEDED)
    unit = DistillationUnit.objects.create(run=run, kind="questions", stage="questions", key=f"questions:{refunds.pk}",
                                           node=refunds)
    LLMCall.objects.create(run=run, unit=unit, kind="questions", outcome="ok", created_at=timezone.now())
    Question.objects.filter(pk=questions[0].pk).update(run=run)
    export = Export.objects.create(topic=topic, status=Export.Status.SUCCEEDED, file=f"{999}/train.jsonl")
    (export_root / str(export.pk)).mkdir()
    (export_root / str(export.pk) / "train.jsonl").write_text("{}\n")
    (export_root / str(export.pk) / "README.md").write_text("card\n")
    evaluation = Evaluation.objects.create(topic=topic, status=Evaluation.Status.SUCCEEDED)
    evaluation.model_folder = f"evaluations/{evaluation.pk}"
    evaluation.save()
    (export_root / "evaluations" / str(evaluation.pk)).mkdir(parents=True)
    for name in ("model.json", "arrays.npz", "questions.npz"):
        (export_root / "evaluations" / str(evaluation.pk) / name).write_bytes(b"x")
    LabelIssue.objects.create(evaluation=evaluation, question=questions[1], given_intent=refunds,
                              suggested_intent=invoices, given_confidence=0.1, confidence=0.8, rank=1)
    return {"topic": topic, "billing": billing, "refunds": refunds, "invoices": invoices, "questions": questions,
            "run": run, "export": export, "evaluation": evaluation}


def test_the_deletion_plan_counts_everything_that_goes(full_topic):
    assert topic_deletion_plan(topic=full_topic["topic"]) == {
        "intents": 3, "questions": 8, "removed_questions": 0, "review_events": 4, "distillation_runs": 1,
        "llm_calls": 1, "exports": 1, "export_files": 2, "evaluations": 1, "evaluation_files": 3, "label_issues": 1,
    }


def test_past_the_exact_limit_the_plan_estimates_joined_rows_and_the_page_says_about(full_topic, dataset_admin,
                                                                                     client, monkeypatch):
    from datasets import admin_lists

    monkeypatch.setattr(admin_lists, "EXACT_COUNT_LIMIT", 2)  # 4 review events: past it
    plan = topic_deletion_plan(topic=full_topic["topic"])
    assert plan["estimated"] == ["review_events"] and plan["review_events"] >= 3
    assert (plan["questions"], plan["llm_calls"], plan["label_issues"]) == (8, 1, 1)  # kept counts; under the limit
    client.force_login(dataset_admin)
    page = client.get(reverse("admin:datasets_topic_delete", args=[full_topic["topic"].pk])).content.decode()
    assert f"<li>about {plan['review_events']} review events" in page and "<li>8 questions</li>" in page


def test_deleting_a_topic_leaves_nothing_in_the_database_or_on_storage(
        full_topic, make_topic, make_intent, make_question, dataset_admin, export_root, django_capture_on_commit_callbacks):
    other = make_topic("Other")
    kept = make_question(make_intent(other, "Kept"), "A question of another topic")
    topic = full_topic["topic"]
    with django_capture_on_commit_callbacks(execute=False):  # the job runs below, as a worker would
        deletion = topic_deletion_start(topic=topic, actor=dataset_admin)
    topic.refresh_from_db()
    assert topic.is_deleting
    assert deletion.status == DataDeletion.Status.QUEUED and deletion.topic_name == "Customer Support"

    with django_capture_on_commit_callbacks(execute=True):
        topic_delete_run(deletion.pk)

    deletion.refresh_from_db()
    assert deletion.status == DataDeletion.Status.SUCCEEDED
    assert deletion.deleted == {"questions": 8, "review_events": 4, "paraphrase_bands": 8 * 8, "label_issues": 1,
                                "llm_calls": 1, "evaluations": 1, "exports": 1, "intents": 3, "distillation_runs": 1,
                                "topics": 1, "files": 5}
    assert not Topic.objects.filter(pk=topic.pk).exists()
    assert not IntentNode.objects.filter(topic_id=topic.pk).exists()
    assert list(Question.objects.values_list("pk", flat=True)) == [kept.pk]
    assert set(QuestionBand.objects.values_list("question_id", flat=True)) == {kept.pk}
    assert not ReviewEvent.objects.exists()
    assert not DistillationRun.objects.exists() and not DistillationUnit.objects.exists()
    assert not LLMCall.objects.exists()
    assert not Export.objects.exists() and not Evaluation.objects.exists() and not LabelIssue.objects.exists()
    assert sorted(p.name for p in export_root.rglob("*")) == ["evaluations"]


def test_a_topic_being_deleted_is_hidden_and_frozen(full_topic, dataset_admin, reviewer,
                                                     django_capture_on_commit_callbacks):
    from datasets.permissions import topics_for_reviewer

    topic = full_topic["topic"]
    with django_capture_on_commit_callbacks(execute=False):
        topic_deletion_start(topic=topic, actor=dataset_admin)
    topic.refresh_from_db()
    assert list(topics_for_reviewer(dataset_admin, include_archived=True)) == []
    assert question_lease_next(topic=topic, actor=reviewer) is None
    with pytest.raises(DatasetError, match="is being deleted"):
        question_review(question_id=full_topic["questions"][5].pk, actor=dataset_admin, action="approve")
    with pytest.raises(DatasetError, match="already being deleted"):
        topic_deletion_start(topic=topic, actor=dataset_admin)


def test_a_deletion_runs_in_batches_and_records_the_longest(full_topic, dataset_admin,
                                                            django_capture_on_commit_callbacks):
    from datasets.lifecycle import topic_delete_in_batches

    with django_capture_on_commit_callbacks(execute=False):
        deletion = topic_deletion_start(topic=full_topic["topic"], actor=dataset_admin)
    outcome = topic_delete_in_batches(deletion=deletion, batch_size=3)
    # 8 questions in batches of 3, one of LLM calls, and the last one (topic, intents, runs...).
    assert outcome.batches == 3 + 1 + 1
    assert outcome.deleted["questions"] == 8


def test_a_running_deletion_reports_its_progress_on_its_record(full_topic, dataset_admin, client, monkeypatch,
                                                                django_capture_on_commit_callbacks):
    from datasets import lifecycle

    with django_capture_on_commit_callbacks(execute=False):
        deletion = topic_deletion_start(topic=full_topic["topic"], actor=dataset_admin)
    DataDeletion.objects.filter(pk=deletion.pk).update(status=DataDeletion.Status.RUNNING)
    seen = []
    real = lifecycle._deletion_progress

    def spy(deletion_id, outcome):
        real(deletion_id, outcome)
        row = DataDeletion.objects.get(pk=deletion_id)
        seen.append((row.batches, row.deleted["questions"]))

    monkeypatch.setattr(lifecycle, "PROGRESS_EVERY_SECONDS", 0)
    monkeypatch.setattr(lifecycle, "_deletion_progress", spy)
    lifecycle.topic_delete_in_batches(deletion=deletion, batch_size=3)
    assert seen == [(1, 3), (2, 6), (3, 8)]  # on the record after each batch of questions
    # The admin's list of data deletions shows it to dataset admins: 8 of the 8 planned questions.
    client.force_login(dataset_admin)
    page = client.get(reverse("admin:datasets_datadeletion_changelist")).content.decode()
    assert full_topic["topic"].name in page and "8 / 8" in page


def test_starting_a_deletion_cancels_the_topics_active_runs(full_topic, dataset_admin,
                                                            django_capture_on_commit_callbacks):
    active = DistillationRun.objects.create(topic=full_topic["topic"], provider=LLMProvider.objects.first(),
                                            status=DistillationRun.Status.RUNNING)
    with django_capture_on_commit_callbacks(execute=False):
        topic_deletion_start(topic=full_topic["topic"], actor=dataset_admin)
    active.refresh_from_db()
    assert active.status == DistillationRun.Status.CANCELLED


# Archive ----------------------------------------------------------------------------------

def test_archiving_takes_a_topic_out_of_queues_and_lists_and_makes_it_read_only(
        full_topic, dataset_admin, reviewer):
    from datasets.permissions import topics_for_reviewer

    topic = full_topic["topic"]
    topic_archive(topic=topic)
    topic.refresh_from_db()
    assert topic.is_archived
    assert list(topics_for_reviewer(reviewer)) == []
    assert list(topics_for_reviewer(reviewer, include_archived=True)) == [topic]
    assert question_lease_next(topic=topic, actor=reviewer) is None
    with pytest.raises(DatasetError, match="archived and read-only"):
        question_review(question_id=full_topic["questions"][5].pk, actor=dataset_admin, action="approve")
    # Exports still take its approved questions.
    assert export_questions(topic=topic).count() == 4

    topic_unarchive(topic=topic)
    topic.refresh_from_db()
    assert not topic.is_archived
    assert list(topics_for_reviewer(reviewer)) == [topic]
    assert question_lease_next(topic=topic, actor=reviewer).pk == full_topic["questions"][4].pk


def test_archiving_is_refused_while_a_run_is_active(full_topic):
    run = DistillationRun.objects.create(topic=full_topic["topic"], provider=LLMProvider.objects.first(),
                                         status=DistillationRun.Status.QUEUED)
    with pytest.raises(DatasetError, match=f"distillation run #{run.pk} is active"):
        topic_archive(topic=full_topic["topic"])


# Remove, restore, purge ---------------------------------------------------------------------

def test_removed_questions_keep_their_history_and_come_back_as_they_were(full_topic, dataset_admin, reviewer):
    topic, questions = full_topic["topic"], full_topic["questions"]
    approved, pending = questions[0], questions[4]
    removed = questions_remove(questions=Question.objects.filter(pk__in=[approved.pk, pending.pk]),
                               actor=dataset_admin)
    assert removed == 2
    assert questions_remove(questions=Question.objects.filter(pk=approved.pk), actor=dataset_admin) == 0
    # Hidden from the queue, the exports and the counts; the history is still there.
    assert question_lease_next(topic=topic, actor=reviewer).pk == questions[5].pk
    assert approved.pk not in set(export_questions(topic=topic).values_list("pk", flat=True))
    assert list(approved.events.order_by("id").values_list("action", flat=True)) == ["approve", "remove"]
    with pytest.raises(DatasetError, match="was removed: restore it first"):
        question_review(question_id=pending.pk, actor=dataset_admin, action="approve")

    assert questions_restore(questions=Question.objects.filter(pk__in=[approved.pk, pending.pk]),
                             actor=dataset_admin) == 2
    approved.refresh_from_db()
    assert approved.removed_at is None and approved.status == Question.Status.APPROVED
    assert list(approved.events.order_by("id").values_list("action", "actor__username")) == [
        ("approve", "dora"), ("remove", "dora"), ("restore", "dora")]
    assert approved.pk in set(export_questions(topic=topic).values_list("pk", flat=True))


def test_undo_after_a_removal_and_restore_undoes_the_review_decision(full_topic, dataset_admin):
    question = full_topic["questions"][0]
    questions_remove(questions=Question.objects.filter(pk=question.pk), actor=dataset_admin)
    questions_restore(questions=Question.objects.filter(pk=question.pk), actor=dataset_admin)
    undone = question_review(question_id=question.pk, actor=dataset_admin, action="undo")
    assert undone.status == Question.Status.PENDING and undone.removed_at is None


def test_a_question_cannot_be_deleted_with_its_history_by_accident(full_topic):
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        full_topic["questions"][0].delete()


def test_a_purge_deletes_only_questions_removed_long_enough_ago_and_says_what(full_topic, dataset_admin):
    questions = full_topic["questions"]
    questions_remove(questions=Question.objects.filter(pk__in=[questions[0].pk, questions[5].pk]),
                     actor=dataset_admin)
    Question.objects.filter(pk=questions[0].pk).update(removed_at=timezone.now() - timedelta(days=40))

    dry = questions_purge(older_than=timedelta(days=30), dry_run=True)
    assert dry.pk is None and dry.planned == {"questions": 1, "review_events": 2}
    assert Question.objects.filter(pk=questions[0].pk).exists()

    purge = questions_purge(older_than=timedelta(days=30), actor=dataset_admin)
    assert purge.status == DataDeletion.Status.SUCCEEDED and purge.kind == DataDeletion.Kind.PURGE
    assert purge.deleted == {"questions": 1, "review_events": 2, "paraphrase_bands": 8, "label_issues": 0}
    assert not Question.objects.filter(pk=questions[0].pk).exists()
    assert Question.objects.filter(pk=questions[5].pk, removed_at__isnull=False).exists()
    assert Question.objects.count() == 7


# Merge and delete intents -------------------------------------------------------------------

def test_merging_an_intent_relabels_moves_merges_and_renumbers(topic, make_intent, make_question, dataset_admin):
    topic.leaf_only = False
    topic.save()
    account = make_intent(topic, "Account")               # 1
    login = make_intent(topic, "Login", parent=account)   # 1.1
    profile = make_intent(topic, "Profile")               # 2
    profile_login = make_intent(topic, "login", parent=profile)  # 2.1: merged with 1.1
    avatar = make_intent(topic, "Avatar", parent=account)  # 1.2: moved under Profile
    shipping = make_intent(topic, "Shipping")             # 3: renumbered to 2
    own = [make_question(account, f"Account question {n}") for n in range(2)]
    logins = [make_question(login, f"I cannot log in {n}") for n in range(3)]
    make_question(profile_login, "Login page broken")
    question_review(question_id=own[0].pk, actor=dataset_admin, action="approve")

    result = intent_merge(source=account, target=profile, actor=dataset_admin)

    assert (result.questions_moved, result.intents_moved, result.intents_merged) == (5, 1, 2)
    assert not IntentNode.objects.filter(pk__in=[account.pk, login.pk]).exists()
    tree = list(IntentNode.objects.filter(topic=topic).order_by("sort_key").values_list("number", "name", "parent_id"))
    assert tree == [("1", "Profile", None), ("1.1", "login", profile.pk), ("1.2", "Avatar", profile.pk),
                    ("2", "Shipping", None)]
    assert Question.objects.filter(intent=profile).count() == 2
    assert Question.objects.filter(intent=profile_login).count() == 4
    own[0].refresh_from_db()
    assert own[0].status == Question.Status.APPROVED  # a merge is not a review decision
    event = logins[0].events.get(action="relabel")
    assert (event.from_intent_id, event.to_intent_id, event.changes) == (
        profile_login.pk, profile_login.pk, {"intent": ["1.1 Login", "2.1 login"], "merged": True})
    assert avatar.pk and shipping.pk


def test_merging_is_refused_into_its_own_subtree_and_across_topics(topic, make_topic, make_intent, dataset_admin):
    parent = make_intent(topic, "Parent")
    child = make_intent(topic, "Child", parent=parent)
    elsewhere = make_intent(make_topic("Elsewhere"), "Other")
    with pytest.raises(DatasetError, match="into its own sub-intent"):
        intent_merge(source=parent, target=child, actor=dataset_admin)
    with pytest.raises(DatasetError, match="different topics"):
        intent_merge(source=parent, target=elsewhere, actor=dataset_admin)


def test_deleting_an_intent_with_questions_is_refused_with_the_counts(full_topic, dataset_admin):
    with pytest.raises(DatasetError) as refused:
        intent_delete(node=full_topic["billing"], actor=dataset_admin)
    assert refused.value.code == "has_questions"
    assert refused.value.message == ("1 Billing (with its 2 sub-intents) has 8 questions (4 pending, 4 approved): "
                                     "move them to another intent first.")


def test_deleting_an_intent_is_refused_even_when_the_kept_counts_are_behind(full_topic, dataset_admin):
    # A data-only restore leaves the kept counts empty until `question_counts --rebuild`: the
    # refusal must still come from the questions, not a ProtectedError (a 500) from their PROTECT.
    from datasets.models import QuestionCount

    QuestionCount.objects.all().delete()
    with pytest.raises(DatasetError) as refused:
        intent_delete(node=full_topic["billing"], actor=dataset_admin)
    assert refused.value.code == "has_questions" and refused.value.details["questions"] == 8


def test_deleting_an_intent_moves_its_questions_first(full_topic, make_intent, dataset_admin):
    topic = full_topic["topic"]
    other = make_intent(topic, "Other")
    result = intent_delete(node=full_topic["billing"], move_questions_to=other, actor=dataset_admin)
    assert (result.questions_moved, result.intents_deleted, result.renumbered) == (8, 3, 1)
    assert list(IntentNode.objects.filter(topic=topic).values_list("number", "name")) == [("1", "Other")]
    assert Question.objects.filter(intent=other).count() == 8
    assert ReviewEvent.objects.filter(action="relabel", to_intent=other).count() == 8


def test_the_purge_command_says_what_it_deletes(full_topic, dataset_admin):
    from io import StringIO

    from django.core.management import call_command

    question = full_topic["questions"][0]
    questions_remove(questions=Question.objects.filter(pk=question.pk), actor=dataset_admin)
    Question.objects.filter(pk=question.pk).update(removed_at=timezone.now() - timedelta(days=10))
    out = StringIO()
    call_command("purge_removed", "--older-than-days", "7", "--dry-run", stdout=out)
    assert out.getvalue() == ("Would delete from every topic: 1 removed question(s) and 2 review event(s). "
                              "Nothing deleted.\n")
    out = StringIO()
    call_command("purge_removed", "--older-than-days", "7", "--topic", "Customer Support", stdout=out)
    deletion = DataDeletion.objects.get()
    assert out.getvalue() == (f"Deleted from Customer Support: 1 removed question(s), 2 review event(s), 0 label "
                              f"issue(s), 8 paraphrase index row(s) (recorded as deletion #{deletion.pk}).\n")
    assert not Question.objects.filter(pk=question.pk).exists()


def test_removed_questions_are_out_of_evaluations_and_the_health_report(full_topic, dataset_admin):
    from datasets.health.sources import topic_health_data
    from evaluation.selectors import topic_questions

    removed = full_topic["questions"][0]
    questions_remove(questions=Question.objects.filter(pk=removed.pk), actor=dataset_admin)
    assert topic_questions(topic=full_topic["topic"], include_out_of_scope=False).count() == 7
    assert sorted(topic_health_data(topic=full_topic["topic"]).refs) == sorted(q.pk for q in full_topic["questions"][1:])
