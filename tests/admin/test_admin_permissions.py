"""Who may do what in the admin and the queue dashboard: one line per persona.

Personas (tests/conftest.py): anonymous, `nobody` a staff user with no role, `prod-bot` a capture
client, `otto` a reviewer of another topic, `rita` the topic's reviewer, `dora` a dataset admin,
`root` a superuser. Reviewers have staff status, as the README tells admins to give them.
"""

import django_rq
import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from rq import Queue

from datasets.models import Question, ReviewEvent
from distiller.models import DistillationRun, LLMProvider
from tests.admin.forms import change_form_data


@pytest.fixture
def nobody(db):
    return User.objects.create_user(username="nobody", password="pw-nobody", is_staff=True)


@pytest.fixture
def staff_capture_client(db):
    user = User.objects.create_user(username="prod-bot", password="pw-prod-bot", is_staff=True)
    user.groups.add(Group.objects.get(name="capture client"))
    return user


@pytest.fixture
def personas(nobody, staff_capture_client, other_reviewer, reviewer, dataset_admin, superuser):
    return {"anonymous": None, "nobody": nobody, "capture_client": staff_capture_client,
            "other_reviewer": other_reviewer, "reviewer": reviewer, "dataset_admin": dataset_admin,
            "superuser": superuser}


@pytest.fixture
def queued_job(db):
    """A job waiting on the default queue, so the dashboard has something to show and delete."""
    # A plain RQ queue: django-rq's own would wait for the test's transaction to commit.
    queue = Queue("default", connection=django_rq.get_connection("default"))
    job = queue.enqueue("builtins.print", "hello", job_id="permission-matrix-job")
    yield job
    queue.empty()


def outcome(client, user, url, method="get", data=None):
    client.logout()
    if user is not None:
        client.force_login(user)
    response = getattr(client, method)(url, data or {})
    if response.status_code == 302 and "/login/" in response["Location"]:
        return "login"
    return response.status_code


QUEUE_PAGES = ["/admin/rq/", "/admin/rq/queues/0/", "/admin/rq/workers/0/", "/admin/rq/stats.json",
               "/admin/rq/queues/0/permission-matrix-job/", "/admin/django_rq/dashboard/"]


@pytest.mark.parametrize("persona, expected", [
    ("anonymous", "login"),
    ("nobody", 403),
    ("capture_client", 403),
    ("other_reviewer", 403),
    ("reviewer", 403),
    ("dataset_admin", 200),
    ("superuser", 200),
])
def test_queue_dashboard_pages(client, personas, queued_job, persona, expected):
    assert {url: outcome(client, personas[persona], url) for url in QUEUE_PAGES} == {
        url: expected for url in QUEUE_PAGES}


@pytest.mark.parametrize("persona, expected, job_left", [
    ("anonymous", "login", True),
    ("nobody", 403, True),
    ("capture_client", 403, True),
    ("reviewer", 403, True),
    ("dataset_admin", 403, True),  # may look, not act
    ("superuser", 302, False),
])
def test_queue_dashboard_actions(client, personas, queued_job, persona, expected, job_left):
    queue = Queue("default", connection=django_rq.get_connection("default"))
    assert outcome(client, personas[persona], f"/admin/rq/queues/0/{queued_job.id}/delete/", "post",
                   {"post": "yes"}) == expected
    assert outcome(client, personas[persona], "/admin/rq/queues/0/empty/", "post", {"post": "yes"}) in (
        expected, 200 if expected == 302 else expected)
    assert (queued_job.id in queue.job_ids) is job_left


@pytest.mark.parametrize("persona, sees_link", [
    ("reviewer", False),
    ("dataset_admin", True),
    ("superuser", True),
])
def test_the_admin_index_links_the_queue_dashboard_only_for_who_may_use_it(client, personas, persona, sees_link):
    client.force_login(personas[persona])
    page = client.get(reverse("admin:index")).content.decode()
    assert ("/admin/django_rq/dashboard/" in page) is sees_link


@pytest.mark.parametrize("persona, changelist", [
    ("anonymous", "login"),
    ("nobody", 403),
    ("capture_client", 403),
    ("other_reviewer", 200),
    ("reviewer", 200),
    ("dataset_admin", 200),
    ("superuser", 200),
])
def test_question_changelist(client, personas, persona, changelist):
    assert outcome(client, personas[persona], reverse("admin:datasets_question_changelist")) == changelist


@pytest.mark.parametrize("page, as_reviewer, as_dataset_admin", [
    ("admin:datasets_topic_changelist", 200, 200),
    ("admin:datasets_intentnode_changelist", 200, 200),
    ("admin:datasets_reviewevent_changelist", 200, 200),
    ("admin:datasets_export_changelist", 403, 200),
    ("admin:datasets_datadeletion_changelist", 403, 200),
    ("admin:datasets_augmentation_changelist", 403, 200),
    ("admin:datasets_topicpreset_changelist", 403, 200),
    ("admin:distiller_distillationrun_changelist", 403, 200),
    ("admin:distiller_llmprovider_changelist", 403, 200),
    ("admin:auth_user_changelist", 403, 403),
    # API tokens act as their user: only superusers list or make them.
    ("admin:authtoken_tokenproxy_changelist", 403, 403),
    ("admin:authtoken_tokenproxy_add", 403, 403),
])
def test_admin_changelists_per_role(client, personas, page, as_reviewer, as_dataset_admin):
    url = reverse(page)
    assert (outcome(client, personas["reviewer"], url), outcome(client, personas["dataset_admin"], url),
            outcome(client, personas["superuser"], url)) == (as_reviewer, as_dataset_admin, 200)


# Item 2: a reviewer changes a question only as a review does; every change is audited.

@pytest.fixture
def foreign_rows(make_topic, make_intent, make_question, superuser):
    """Another topic's intent and run, which a reviewer of `topic` must not be able to attach."""
    other = make_topic("Travel")
    intent = make_intent(other, "Book flight")
    run = DistillationRun.objects.create(topic=other, provider=LLMProvider.objects.first(), created_by=superuser)
    return {"intent": intent, "run": run}


def test_a_reviewer_cannot_set_provenance_fields_on_the_change_form(client, reviewer, topic, make_intent,
                                                                    make_question, foreign_rows):
    question = make_question(make_intent(topic, "Refunds"), "refund please")
    client.force_login(reviewer)
    url = reverse("admin:datasets_question_change", args=[question.pk])
    data = change_form_data(client.get(url))
    data.update(predicted_intent=foreign_rows["intent"].pk, run=foreign_rows["run"].pk, leased_by=reviewer.pk,
                source="captured", confidence="0.01", language="de", split="test", occurrences="9")
    assert client.post(url, data).status_code == 302
    question.refresh_from_db()
    assert (question.predicted_intent_id, question.run_id, question.leased_by_id, question.source,
            question.confidence, question.language, question.split, question.occurrences, question.version) == (
        None, None, None, "manual", None, "en", "", 1, 1)
    assert not ReviewEvent.objects.filter(question=question).exists()


def test_the_question_form_offers_only_intents_of_visible_topics(client, reviewer, topic, make_intent,
                                                                 make_question, foreign_rows):
    mine = make_intent(topic, "Refunds")
    question = make_question(mine, "refund please")
    client.force_login(reviewer)
    url = reverse("admin:datasets_question_change", args=[question.pk])
    response = client.get(url)
    assert list(response.context["adminform"].form.fields["intent"].queryset) == [mine]
    data = change_form_data(response)
    data["intent"] = foreign_rows["intent"].pk
    response = client.post(url, data)
    assert response.status_code == 200
    assert "intent" in response.context["adminform"].form.errors
    question.refresh_from_db()
    assert (question.intent, question.version) == (mine, 1)


def test_a_dataset_admin_change_of_language_and_split_is_an_audited_update(client, dataset_admin, topic,
                                                                          make_intent, make_question):
    question = make_question(make_intent(topic, "Refunds"), "refund please")
    client.force_login(dataset_admin)
    url = reverse("admin:datasets_question_change", args=[question.pk])
    data = change_form_data(client.get(url))
    data.update(language="de", split="test")
    assert client.post(url, data).status_code == 302
    question.refresh_from_db()
    assert (question.language, question.split, question.version) == ("de", "test", 2)
    event = ReviewEvent.objects.get(question=question)
    assert (event.action, event.actor, event.via, event.changes) == (
        "update", dataset_admin, "admin", {"language": ["en", "de"], "split": ["", "test"]})


def test_an_update_is_not_undone_as_a_review_decision(dataset_admin, topic, make_intent, make_question):
    from labeling.services import question_fields_update, question_review

    question = make_question(make_intent(topic, "Refunds"), "refund please")
    question_review(question_id=question.pk, actor=dataset_admin, action="approve")
    question_fields_update(question_id=question.pk, actor=dataset_admin, changes={"split": "test"})
    question = question_review(question_id=question.pk, actor=dataset_admin, action="undo")
    assert (question.status, question.split) == ("pending", "test")


# Item 3: the filter sidebars list only what the user may see.

def test_admin_filters_list_only_visible_topics_and_users(client, reviewer, other_reviewer, topic, make_topic):
    make_topic("Secret Project")
    make_topic("Second Topic").reviewers.add(reviewer)
    colleague = User.objects.create_user(username="carl", is_staff=True)
    colleague.groups.add(Group.objects.get(name="reviewer"))
    topic.reviewers.add(colleague)
    client.force_login(reviewer)
    for page in ("admin:datasets_question_changelist", "admin:datasets_intentnode_changelist",
                 "admin:datasets_reviewevent_changelist"):
        html = client.get(reverse(page)).content.decode()
        assert "Secret Project" not in html, page
        assert "otto" not in html, page
    html = client.get(reverse("admin:datasets_question_changelist")).content.decode()
    assert all(name in html for name in (topic.name, "Second Topic", "rita", "carl"))


def test_a_dataset_admin_filters_by_every_topic(client, dataset_admin, topic, make_topic):
    make_topic("Secret Project")
    client.force_login(dataset_admin)
    html = client.get(reverse("admin:datasets_question_changelist")).content.decode()
    assert "Secret Project" in html and topic.name in html


def test_admin_questions_list_filters_by_split(client, dataset_admin, topic, make_intent, make_question):
    intent = make_intent(topic, "Refunds")
    make_question(intent, "in the test set", split="test")
    make_question(intent, "in no split")
    client.force_login(dataset_admin)
    html = client.get(reverse("admin:datasets_question_changelist") + "?split__exact=test").content.decode()
    assert "in the test set" in html and "in no split" not in html
    assert Question.objects.filter(split="test").count() == 1
