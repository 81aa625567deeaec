"""The admin: every export format on the Question changelist, imports with a dry-run preview that
lists row errors, and exports created through the service with authorised download links."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from datasets.formats import WRITERS
from datasets.jobs import export_run
from datasets.models import Export, Question
from datasets.resources import QUESTION_EXPORT_FORMATS, QUESTION_IMPORT_FORMATS

pytestmark = pytest.mark.django_db


def format_index(formats, name) -> int:
    return [f().get_title() for f in formats].index(name)


def test_the_admin_export_offers_every_single_file_format():
    assert [f().get_title() for f in QUESTION_EXPORT_FORMATS] == [n for n, w in WRITERS.items() if w.single_file]


def test_the_admin_exports_the_filtered_changelist_through_the_writers(client, superuser, known_dataset):
    client.force_login(superuser)
    response = client.post(reverse("admin:datasets_question_export") + "?status__exact=relabeled", {
        "format": format_index(QUESTION_EXPORT_FORMATS, "rasa"), "resource": 0, "questionresource_text": "on"})
    assert response.status_code == 200, response.content[:500]
    assert response.content.decode() == ('version: "3.1"\nnlu:\n- intent: billing__refunds\n  examples: |\n'
                                         "    - Refund please, the item arrived broken\n")


def import_preview(client, name, content, format, topic=None):
    data = {"import_file": SimpleUploadedFile(name, content), "format": format_index(QUESTION_IMPORT_FORMATS, format),
            "resource": 0}
    if topic is not None:
        data["topic"] = topic.pk
    return client.post(reverse("admin:datasets_question_import"), data)


def test_the_admin_import_preview_lists_row_errors_and_saves_nothing(client, superuser, known_dataset):
    client.force_login(superuser)
    rows = [{"question": "Refund for my hat", "intent_path": "Customer Care -> Billing -> Refunds"},
            {"question": "Lost somewhere", "intent_path": "Customer Care -> Billing -> Nowhere"}]
    before = Question.objects.count()
    page = import_preview(client, "q.jsonl", "\n".join(json.dumps(r) for r in rows).encode(), "jsonl")
    html = page.content.decode()
    assert page.status_code == 200
    assert "unknown intent &#x27;Billing -&gt; Nowhere&#x27; in topic &#x27;Customer Care&#x27;" in html
    assert Question.objects.count() == before


def test_an_alpaca_file_imports_through_the_admin_into_the_chosen_topic(client, superuser, known_dataset):
    client.force_login(superuser)
    content = json.dumps([{"instruction": "Classify", "input": "Invoice for May please", "output": "1.2 Invoices"}])
    page = import_preview(client, "alpaca.json", content.encode(), "alpaca", topic=known_dataset)
    assert page.status_code == 200
    assert "confirm" in page.content.decode().lower()
    confirm = page.context["confirm_form"].initial
    assert confirm["topic"] == known_dataset.pk
    response = client.post(reverse("admin:datasets_question_process_import"), confirm)
    assert response.status_code == 302
    question = Question.objects.get(text="Invoice for May please")
    assert (question.topic, question.intent.number, question.source) == (known_dataset, "1.2", "imported")


def test_an_export_added_in_the_admin_is_queued_through_the_service(client, superuser, known_dataset):
    client.force_login(superuser)
    response = client.post(reverse("admin:datasets_export_add"), {
        "topic": known_dataset.pk, "format": "csv", "filters": "{}", "split": '{"train": 0.5, "test": 0.5}',
        "seed": 42, "system_prompt": "", "instruction": ""})
    assert response.status_code == 302
    export = Export.objects.get()
    assert export.job_id == f"export-{export.pk}" and export.filters == {"statuses": ["approved", "relabeled"]}
    export_run(export.pk)
    page = client.get(reverse("admin:datasets_export_changelist")).content.decode()
    assert reverse("api-export-download", args=[export.pk]) in page


def test_a_bad_export_in_the_admin_form_is_refused_with_the_reason(client, superuser, known_dataset):
    client.force_login(superuser)
    response = client.post(reverse("admin:datasets_export_add"), {
        "topic": known_dataset.pk, "format": "csv", "filters": '{"statuses": 5}', "split": '{"train": 0.7}',
        "seed": 42, "system_prompt": "", "instruction": ""})
    assert response.status_code == 200
    assert "Statuses must be a list" in response.content.decode()
    assert not Export.objects.exists()
