"""The admin's list and change pages cost a fixed number of queries, whatever the size of the data
(issue 18): counts are bounded or estimated, pages capped, filter values found by index probes,
per-row figures counted once per page. Query counts, not times."""

import datetime

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from datasets import admin_lists
from datasets.admin_lists import EstimatedCountPaginator
from datasets.models import Question

QUESTIONS = reverse("admin:datasets_question_changelist")


@pytest.fixture
def billing(topic, make_intent):
    parent = make_intent(topic, "Billing")
    return {"parent": parent, "refunds": make_intent(topic, "Refunds", parent=parent),
            "invoices": make_intent(topic, "Invoices", parent=parent)}


def questions_add(intent, count: int, **fields):
    start = Question.objects.filter(intent=intent).count()
    Question.objects.bulk_create([
        Question(topic=intent.topic, intent=intent, text=f"{intent.name} question {i}", text_hash=f"{intent.pk}-{i}",
                 **fields) for i in range(start, start + count)])


def page_queries(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return [query["sql"] for query in captured.captured_queries]


def test_the_question_list_costs_the_same_queries_for_3_and_300_questions(client, superuser, billing):
    client.force_login(superuser)
    questions_add(billing["refunds"], 3, complexity="simple", audience="expert")
    small = page_queries(client, QUESTIONS)
    questions_add(billing["invoices"], 297, complexity="complex", edge_case="typos")
    large = page_queries(client, QUESTIONS)
    # Session and user; the topic filter's topics; the visible topics and the three skip scans of
    # the metadata filters; the reviewer filter's users; the bounded count; the page; the date
    # drill-down's first and last rows and one probe per day (one day here).
    assert len(large) == len(small) == 13
    question_table = [sql for sql in large if 'FROM "datasets_question"' in sql]
    assert not any("SELECT DISTINCT" in sql and '"complexity"' in sql for sql in question_table)
    assert not any("DATE_TRUNC" in sql.upper() for sql in question_table)
    counts = [sql for sql in question_table if "COUNT(" in sql.upper()]
    assert len(counts) == 1 and "LIMIT 10001" in counts[0]  # counted up to the limit, not in full


def test_filter_values_come_from_the_visible_topics_only(client, reviewer, billing, make_topic, make_intent):
    questions_add(billing["refunds"], 2, complexity="simple", audience="expert")
    questions_add(billing["invoices"], 2, complexity="complex", audience="")
    hidden = make_intent(make_topic("Hidden"), "Secret")
    questions_add(hidden, 2, complexity="secret-level", audience="spies")
    client.force_login(reviewer)
    response = client.get(QUESTIONS)
    choices = {spec.lookup_kwarg: list(spec.lookup_choices) for spec in response.context["cl"].filter_specs
               if getattr(spec, "lookup_kwarg", None) in ("complexity", "audience", "edge_case")}
    assert choices == {"complexity": ["complex", "simple"], "audience": ["", "expert"], "edge_case": [""]}
    assert "secret-level" not in response.content.decode()
    modeladmin = admin.site._registry[Question]
    assert admin_lists.topic_column_values(model=Question, column="complexity",
                                           topic_ids=[billing["refunds"].topic_id]) == ["complex", "simple"]
    assert admin_lists.topic_column_values(model=Question, column="audience",
                                           topic_ids=[billing["refunds"].topic_id, hidden.topic_id]) == [
        "", "expert", "spies"]
    assert modeladmin.visible_topic_ids(type("Request", (), {"user": reviewer})()) == [billing["refunds"].topic_id]


def test_past_the_exact_limit_the_count_is_the_planners_estimate_said_about(client, superuser, billing, monkeypatch):
    monkeypatch.setattr(admin_lists, "EXACT_COUNT_LIMIT", 5)
    questions_add(billing["refunds"], 12)
    paginator = EstimatedCountPaginator(Question.objects.all(), 4)
    assert paginator.count >= 6 and paginator.count_is_estimate
    client.force_login(superuser)
    assert "about " in client.get(QUESTIONS).content.decode()
    monkeypatch.setattr(admin_lists, "EXACT_COUNT_LIMIT", 50)
    exact = EstimatedCountPaginator(Question.objects.all(), 4)
    assert exact.count == 12 and not exact.count_is_estimate


def test_a_page_past_the_cap_shows_the_last_listed_page(client, superuser, billing, monkeypatch):
    monkeypatch.setattr(admin_lists, "LISTED_PAGES_MAX", 2)
    monkeypatch.setattr(admin.site._registry[Question], "list_per_page", 3)
    questions_add(billing["refunds"], 10)
    client.force_login(superuser)
    page = client.get(QUESTIONS + "?p=500").content.decode()
    # Ordered by id: page 2 holds questions 3, 4 and 5.
    assert [f"Refunds question {i}<" in page for i in range(10)] == [i in (3, 4, 5) for i in range(10)]
    assert "the first 2 pages are listed" in page


def test_the_search_finds_words_in_the_text_or_the_intent(client, superuser, billing, make_question):
    make_question(billing["refunds"], "Where is my bank transfer?")
    make_question(billing["invoices"], "Send the invoice to my bank")
    make_question(billing["invoices"], "Change my address")
    client.force_login(superuser)

    def found(term):
        response = client.get(QUESTIONS, {"q": term})
        return sorted(question.text for question in response.context["cl"].result_list)

    assert found("bank") == ["Send the invoice to my bank", "Where is my bank transfer?"]
    assert found("BANK refunds") == ["Where is my bank transfer?"]  # the intent's name
    assert found("invoices address") == ["Change my address"]
    assert found('"my bank"') == ["Send the invoice to my bank", "Where is my bank transfer?"]
    assert found("1.1 transfer") == ["Where is my bank transfer?"]  # the intent's number


def test_the_search_uses_the_trigram_index(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'question_text_upper_trgm_idx'")
        assert cursor.fetchone()[0].endswith("USING gin (upper(text) gin_trgm_ops)")
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = Question.objects.filter(text__icontains="bank").order_by().query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "question_text_upper_trgm_idx" in plan


def test_the_date_drill_down_lists_the_days_with_questions(client, superuser, billing):
    questions_add(billing["refunds"], 3)
    first, *rest = Question.objects.order_by("pk")
    first_day = timezone.make_aware(datetime.datetime(2026, 3, 2, 12))
    Question.objects.filter(pk=first.pk).update(created_at=first_day)
    Question.objects.filter(pk__in=[q.pk for q in rest]).update(created_at=first_day + datetime.timedelta(days=5))
    client.force_login(superuser)
    page = client.get(QUESTIONS).content.decode()
    assert "created_at__day=2&amp;" in page and "created_at__day=7&amp;" in page
    assert page.count("created_at__day=") == 2
    Question.objects.filter(pk=first.pk).update(created_at=first_day - datetime.timedelta(days=40))
    months = client.get(QUESTIONS + "?created_at__year=2026").content.decode()
    assert "created_at__month=1" in months and "created_at__month=3" in months
    assert months.count("created_at__month=") == 2


def test_intent_counts_are_counted_once_per_page(client, superuser, billing, topic, make_intent):
    questions_add(billing["refunds"], 3, status="approved")
    questions_add(billing["invoices"], 2)
    client.force_login(superuser)
    url = reverse("admin:datasets_intentnode_changelist")
    small = page_queries(client, url)
    for i in range(20):
        questions_add(make_intent(topic, f"More {i}", parent=billing["parent"]), 2, status="relabeled")
    large = page_queries(client, url)
    assert len(large) == len(small)
    cl = client.get(url).context["cl"]
    by_name = {node.name: (node.n_total, node.n_approved, node.n_pending) for node in cl.result_list}
    assert by_name["Refunds"] == (3, 3, 0) and by_name["Invoices"] == (2, 0, 2) and by_name["More 7"] == (2, 2, 0)
    assert by_name["Billing"] == (0, 0, 0)


def test_topic_counts_are_counted_once_per_page_and_not_on_the_change_page(client, superuser, billing, make_topic,
                                                                            make_intent):
    questions_add(billing["refunds"], 3, status="approved")
    questions_add(billing["invoices"], 2, status="relabeled")
    questions_add(billing["invoices"], 4)
    client.force_login(superuser)
    url = reverse("admin:datasets_topic_changelist")
    small = page_queries(client, url)
    for i in range(5):
        questions_add(make_intent(make_topic(f"Other {i}"), "Leaf"), 2)
    large = page_queries(client, url)
    assert len(large) == len(small)
    # The page's counts are read from the kept counts (datasets/question_counts.py), not counted.
    assert sum('FROM "datasets_question"' in sql for sql in large) == 0
    assert sum('FROM "datasets_questioncount"' in sql for sql in large) == 1
    cl = client.get(url).context["cl"]
    assert {t.name: (t.n_questions, t.n_approved) for t in cl.result_list}["Customer Support"] == (9, 5)
    assert {t.name: (t.n_questions, t.n_approved) for t in cl.result_list}["Other 3"] == (2, 0)
    change = page_queries(client, reverse("admin:datasets_topic_change", args=[billing["parent"].topic_id]))
    assert not any('FROM "datasets_question"' in sql for sql in change)


def test_the_row_checkbox_is_the_stock_html(superuser, billing):
    question = Question.objects.create(topic=billing["refunds"].topic, intent=billing["refunds"], text="A <b> & c")
    fast = admin.site._registry[Question].action_checkbox(question)
    stock = admin.ModelAdmin.action_checkbox(admin.site._registry[Question], question)
    assert fast == stock


def test_the_review_list_says_about_past_the_exact_limit(client, superuser, billing, monkeypatch):
    monkeypatch.setattr(admin_lists, "EXACT_COUNT_LIMIT", 5)
    questions_add(billing["refunds"], 12)
    client.force_login(superuser)
    page = client.get(reverse("labeling:questions", args=[billing["refunds"].topic_id])).content.decode()
    assert "questions)" in page and "(about " in page
    monkeypatch.setattr(admin_lists, "EXACT_COUNT_LIMIT", 50)
    page = client.get(reverse("labeling:questions", args=[billing["refunds"].topic_id])).content.decode()
    assert "(12 questions)" in page and "about" not in page


def test_the_intent_delete_page_states_the_kept_counts_and_reads_no_question(client, superuser, billing):
    questions_add(billing["refunds"], 4, status="approved")
    questions_add(billing["refunds"], 1)
    client.force_login(superuser)
    url = reverse("admin:datasets_intentnode_delete", args=[billing["parent"].pk])
    queries = page_queries(client, url)
    assert not any('FROM "datasets_question"' in sql for sql in queries)  # Django's own collected every one
    page = client.get(url).content.decode()
    assert "has 5 questions (1 pending, 4 approved)" in page
    assert reverse("admin:datasets_topic_intent_change", args=[billing["parent"].topic_id, billing["parent"].pk,
                                                               "delete"]) in page
    assert "permission to delete" not in page
    # Nothing to move: the confirmation names the intent and its sub-intents, and deleting works.
    empty = reverse("admin:datasets_intentnode_delete", args=[billing["invoices"].pk])
    assert "Intent: 1.2 Invoices" in client.get(empty).content.decode()
    assert client.post(empty, {"post": "yes"}).status_code == 302
    assert not billing["invoices"].__class__.objects.filter(pk=billing["invoices"].pk).exists()


def test_removed_questions_leave_the_topic_and_intent_counts_as_everywhere_else(client, superuser, billing):
    # docs/lifecycle.md: a removed question is hidden from topic counts. The Topics and Intents lists
    # still counted it (64 where the dashboard, the API, the health report and the admin's own
    # question list said 62).
    from django.utils import timezone

    questions_add(billing["refunds"], 3, status="approved")
    questions_add(billing["invoices"], 2)
    first_refund = Question.objects.filter(intent=billing["refunds"]).order_by("id").first()
    Question.objects.filter(pk=first_refund.pk).update(removed_at=timezone.now())
    client.force_login(superuser)
    topics = client.get(reverse("admin:datasets_topic_changelist")).context["cl"].result_list
    assert {t.name: (t.n_questions, t.n_approved) for t in topics}["Customer Support"] == (4, 2)
    intents = client.get(reverse("admin:datasets_intentnode_changelist")).context["cl"].result_list
    assert {n.name: (n.n_total, n.n_approved) for n in intents}["Refunds"] == (2, 2)
    listed = client.get(QUESTIONS + f"?topic__id__exact={billing['refunds'].topic_id}").context["cl"]
    assert listed.result_count == 4
