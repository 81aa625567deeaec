"""The admin: every export format on the Question changelist, streamed; imports (dataset admins
only) with a dry-run preview that lists every bad line and row error, creating questions and never
overwriting one; exports created through the service, read-only once saved."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import StreamingHttpResponse
from django.urls import reverse

from datasets.formats import WRITERS
from datasets.jobs import export_run
from datasets.models import Export, Question, ReviewEvent
from datasets.resources import QUESTION_EXPORT_FORMATS, QUESTION_IMPORT_FORMATS
from tests.exports.conftest import KNOWN_QUESTIONS

pytestmark = pytest.mark.django_db


def format_index(formats, name) -> int:
    return [f().get_title() for f in formats].index(name)


def test_the_admin_export_offers_every_single_file_format():
    assert [f().get_title() for f in QUESTION_EXPORT_FORMATS] == [n for n, w in WRITERS.items() if w.streamable()]


def test_the_admin_exports_the_filtered_changelist_through_the_writers(client, superuser, known_dataset):
    client.force_login(superuser)
    response = client.post(reverse("admin:datasets_question_export") + "?status__exact=relabeled", {
        "format": format_index(QUESTION_EXPORT_FORMATS, "rasa"), "resource": 0, "questionresource_text": "on"})
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "application/yaml"
    assert b"".join(response.streaming_content).decode() == (
        'version: "3.1"\nnlu:\n- intent: billing__refunds\n  examples: |\n'
        "    - Refund please, the item arrived broken\n")


def export_page(client):
    return client.post(reverse("admin:datasets_question_export"), {
        "format": format_index(QUESTION_EXPORT_FORMATS, "jsonl"), "resource": 0, "questionresource_text": "on"})


@pytest.mark.parametrize("persona", ["reviewer", "other_reviewer"])
def test_a_staff_reviewer_can_neither_import_nor_export_in_the_admin(client, request, known_dataset, persona):
    user = request.getfixturevalue(persona)
    known_dataset.reviewers.add(user)
    client.force_login(user)
    changelist = client.get(reverse("admin:datasets_question_changelist"))
    assert changelist.status_code == 200
    assert (changelist.context["has_import_permission"], changelist.context["has_export_permission"]) == (False, False)
    assert reverse("admin:datasets_question_import") not in changelist.content.decode()
    assert client.get(reverse("admin:datasets_question_import")).status_code == 403
    assert client.get(reverse("admin:datasets_question_export")).status_code == 403
    assert export_page(client).status_code == 403
    before = Question.objects.count()
    content = json.dumps({"question": "Sneaked in", "intent_path": "Customer Care -> Billing"}).encode()
    assert import_preview(client, "q.jsonl", content, "jsonl").status_code == 403
    assert client.post(reverse("admin:datasets_question_process_import"), {
        "import_file_name": "x", "original_file_name": "q.jsonl", "format": 0, "resource": 0}).status_code == 403
    assert Question.objects.count() == before


def test_a_dataset_admin_imports_and_exports_in_the_admin(client, dataset_admin, known_dataset, make_topic):
    make_topic("Another")
    client.force_login(dataset_admin)
    changelist = client.get(reverse("admin:datasets_question_changelist"))
    assert (changelist.context["has_import_permission"], changelist.context["has_export_permission"]) == (True, True)
    form = client.get(reverse("admin:datasets_question_import")).context["form"]
    assert [t.name for t in form.fields["topic"].queryset] == ["Another", "Customer Care"]
    response = export_page(client)
    assert response.status_code == 200
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == len(KNOWN_QUESTIONS)
    assert json.loads(lines[0])["question"] == "I want my money back"


def import_preview(client, name, content, format, topic=None, **options):
    """The import page's dry run; its format index is the position in QUESTION_IMPORT_FORMATS."""
    data = {"import_file": SimpleUploadedFile(name, content), "format": format_index(QUESTION_IMPORT_FORMATS, format),
            "resource": 0, **options}
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
        "topic": known_dataset.pk, "format": "csv", "split_preset": "80/20", "statuses": ["approved", "relabeled"],
        "seed": 42, "system_prompt": "", "instruction": ""})
    assert response.status_code == 302
    export = Export.objects.get()
    assert export.job_id == f"export-{export.pk}" and export.filters == {"statuses": ["approved", "relabeled"]}
    assert export.split == {"train": 0.8, "test": 0.2}
    export_run(export.pk)
    page = client.get(reverse("admin:datasets_export_changelist")).content.decode()
    assert reverse("api-export-download", args=[export.pk]) in page


def test_a_bad_export_in_the_admin_form_is_refused_with_the_reason(client, superuser, known_dataset, make_topic,
                                                                   make_intent):
    client.force_login(superuser)
    other_intent = make_intent(make_topic("Other"), "Elsewhere")
    response = client.post(reverse("admin:datasets_export_add"), {
        "topic": known_dataset.pk, "format": "csv", "split_preset": "none", "statuses": ["approved"],
        "intent": other_intent.pk, "seed": 42, "system_prompt": "", "instruction": ""})
    assert response.status_code == 200
    assert f"Intent {other_intent.pk} is not in topic &#x27;Customer Care&#x27;." in response.content.decode()
    assert not Export.objects.exists()


def test_the_admin_export_form_offers_split_presets_and_filter_fields_not_json(client, superuser, known_dataset):
    client.force_login(superuser)
    page = client.get(reverse("admin:datasets_export_add")).content.decode()
    for preset in ("none", "80/10/10", "80/20", "assigned"):
        assert f'name="split_preset" value="{preset}"' in page
    for status in ("pending", "approved", "relabeled", "rejected", "flagged"):
        assert f'type="checkbox" name="statuses" value="{status}"' in page
    assert 'name="include_out_of_scope"' in page and 'name="judge_passed"' in page and 'name="intent"' in page
    assert 'name="filters"' not in page and 'name="split"' not in page


def test_an_admin_export_of_one_intent_with_a_preset_split_records_its_filters(client, superuser, known_dataset):
    billing = known_dataset.intents.get(name="Billing")
    client.force_login(superuser)
    response = client.post(reverse("admin:datasets_export_add"), {
        "topic": known_dataset.pk, "format": "jsonl", "split_preset": "80/10/10", "statuses": ["approved"],
        "intent": billing.pk, "judge_passed": "", "seed": 7, "system_prompt": "", "instruction": ""})
    assert response.status_code == 302
    export = Export.objects.get()
    assert export.filters == {"statuses": ["approved"], "intent": billing.pk}
    assert export.split == {"train": 0.8, "validation": 0.1, "test": 0.1}
    page = client.get(reverse("admin:datasets_export_change", args=[export.pk])).content.decode()
    assert "statuses approved; under 1 Billing; out-of-scope left out" in page


def test_an_admin_export_that_matches_nothing_is_refused_before_a_job_starts(client, superuser, known_dataset):
    client.force_login(superuser)
    response = client.post(reverse("admin:datasets_export_add"), {
        "topic": known_dataset.pk, "format": "jsonl", "split_preset": "none", "statuses": ["approved"],
        "judge_passed": "on", "seed": 42, "system_prompt": "", "instruction": ""})
    assert response.status_code == 200
    assert ("Nothing to export: no question of &#x27;Customer Care&#x27; has status approved, passed by the judge, "
            "outside out-of-scope intents.") in response.content.decode()
    assert not Export.objects.exists()


def test_the_page_of_a_queued_export_follows_it_with_a_static_script(client, superuser, known_dataset):
    export = Export.objects.create(topic=known_dataset, format="jsonl")
    client.force_login(superuser)
    url = reverse("admin:datasets_export_change", args=[export.pk])
    page = client.get(url).content.decode()
    assert '<script src="/static/datasets/export_live.js" defer></script>' in page
    assert f'id="export-live" class="help" data-url="/api/v1/exports/{export.pk}/"' in page
    assert "<script>" not in page  # nothing inline: the CSP would block it
    export_run(export.pk)
    page = client.get(url).content.decode()
    assert "export_live.js" not in page and 'id="export-live"' not in page
    assert reverse("api-export-download", args=[export.pk]) in page


def confirm_import(client, page):
    assert "confirm_form" in page.context, page.content.decode()[:2000]
    initial = page.context["confirm_form"].initial
    return client.post(reverse("admin:datasets_question_process_import"),
                       {key: value for key, value in initial.items() if value is not None})


def test_an_import_row_with_an_existing_id_creates_a_question_and_leaves_that_one_alone(client, dataset_admin,
                                                                                        known_dataset):
    client.force_login(dataset_admin)
    existing = Question.objects.get(pk=900001)
    before = (existing.text, existing.status, existing.intent_id, existing.topic_id, existing.version)
    content = (b"id,text,topic,intent_number,status\n"
               b"900001,Hijacked by an import,Customer Care,2,rejected\n")
    response = confirm_import(client, import_preview(client, "q.csv", content, "csv"))
    assert response.status_code == 302
    existing.refresh_from_db()
    assert (existing.text, existing.status, existing.intent_id, existing.topic_id, existing.version) == before
    assert not ReviewEvent.objects.filter(question=existing).exists()
    created = Question.objects.get(text="Hijacked by an import")
    assert created.pk != 900001
    assert (created.topic, created.intent.number, created.status, created.source) == (
        known_dataset, "2", "rejected", "imported")


def test_the_import_preview_lists_every_bad_line_with_its_number(client, superuser, known_dataset):
    client.force_login(superuser)
    lines = [json.dumps({"question": "Refund for my hat", "intent_path": "Customer Care -> Billing -> Refunds"}),
             '{"question": "broken",',
             json.dumps({"question": "Invoice for May", "intent_number": "1.2"}),
             json.dumps(["not", "an", "object"]),
             json.dumps({"question": "No intent given"})]
    before = Question.objects.count()
    page = import_preview(client, "q.jsonl", "\n".join(lines).encode(), "jsonl")
    assert page.status_code == 200
    assert "confirm_form" not in page.context
    assert page.context["form"].errors["import_file"] == [
        "line 2: invalid JSON (Expecting property name enclosed in double quotes at column 23)",
        "line 4: expected a JSON object, got list",
        "line 5: no intent: found 'question'; accepted: intent_path, intent_hierarchy, intent_full_name, "
        "intent_number, intent, label (or name yours with intent_column)",
    ]
    assert Question.objects.count() == before


def test_the_import_preview_names_the_lines_that_are_not_utf8(client, superuser, known_dataset):
    client.force_login(superuser)
    content = b"text,intent_number\nGood line,1.1\nCaf\xe9 bill,1.2\nfine,1.1\n\xff\xfe,2\n"
    page = import_preview(client, "q.csv", content, "csv", topic=known_dataset)
    assert page.status_code == 200
    assert page.context["form"].errors["import_file"] == [
        "line 3: not UTF-8 (byte 0xe9 at column 4); save the file as UTF-8",
        "line 5: not UTF-8 (byte 0xff at column 1); save the file as UTF-8",
    ]
    assert not Question.objects.filter(text="Good line").exists()


def test_a_csv_file_imports_through_the_admin(client, dataset_admin, known_dataset):
    client.force_login(dataset_admin)
    content = "\ufeffText,Intent_Path\nWhere do I send the parcel back?,Customer Care -> Billing -> Refunds\n"
    response = confirm_import(client, import_preview(client, "q.csv", content.encode(), "csv"))
    assert response.status_code == 302
    question = Question.objects.get(text="Where do I send the parcel back?")
    assert (question.topic, question.intent.number, question.status) == (known_dataset, "1.1", "pending")


def test_a_saved_export_is_read_only(client, superuser, known_dataset):
    client.force_login(superuser)
    export = Export.objects.create(topic=known_dataset, format="csv", filters={"statuses": ["approved"]},
                                   split={"train": 0.5, "test": 0.5}, created_by=superuser)
    url = reverse("admin:datasets_export_change", args=[export.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    response = client.post(url, {"topic": known_dataset.pk, "format": "jsonl", "filters": "{}", "split": "{}",
                                 "seed": 7, "system_prompt": "", "instruction": ""})
    assert response.status_code == 403
    export.refresh_from_db()
    assert (export.format, export.filters, export.split, export.seed) == (
        "csv", {"statuses": ["approved"]}, {"train": 0.5, "test": 0.5}, 42)


def test_deleting_exports_in_the_admin_removes_their_files(client, superuser, known_dataset,
                                                           django_capture_on_commit_callbacks):
    from datasets.exports import export_folder
    from datasets.jobs import export_run

    exports = [Export.objects.create(topic=known_dataset, format="jsonl") for _ in range(2)]
    for export in exports:
        export_run(export.pk)
    folders = [export_folder(export) for export in exports]
    assert all(folder.exists() for folder in folders)
    client.force_login(superuser)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:datasets_export_delete", args=[exports[0].pk]), {"post": "yes"})
    assert response.status_code == 302 and not folders[0].exists() and folders[1].exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:datasets_export_changelist"),
                               {"action": "delete_selected", "_selected_action": [exports[1].pk], "post": "yes"})
    assert response.status_code == 302 and not folders[1].exists()
    assert not Export.objects.filter(pk__in=[e.pk for e in exports]).exists()


def test_the_admin_imports_the_new_rows_of_a_file_where_some_exist_and_says_what_the_api_says(
        client, dataset_admin, known_dataset):
    """Issue 23: the admin refused a whole file when some rows already existed; now it follows the
    API's rule (new rows imported, duplicates counted) and its preview is the service's report."""
    from datasets.imports import import_report_lines, questions_import

    client.force_login(dataset_admin)
    content = (b"text,category,split\nI want my money back,Billing -> Refunds,test\n"
               b"Brand new refund question,Billing -> Refunds,val\nfees for top ups,Billing -> Invoices,\n"
               b"Fees for top-ups?,Billing -> Refunds,\n")
    options = {"intent_column": "category", "on_conflict": "flag"}
    expected = import_report_lines(questions_import(topic=known_dataset, stream=__import__("io").BytesIO(content),
                                                    format="csv", dry_run=True, **options))
    page = import_preview(client, "q.csv", content, "csv", topic=known_dataset, **options)
    assert page.context["import_report"] == expected == [
        "Dry run: nothing was written.",
        "4 rows: 2 would be created, 1 duplicate skipped (same text, same intent), 1 label conflict, 0 intents would "
        "be created.",
        "Created rows by split: validation 1, none 1.",
        "Label conflicts: 1 text under two intents; on_conflict=flag: keep the first row of a text with status "
        "flagged (a reviewer decides), drop the others (1 flagged).",
        "line 5: conflict: 'Fees for top-ups?' is under '1.1 Refunds' here and under '1.2 Invoices' on line 4",
    ]
    assert "1 duplicate skipped (same text, same intent)" in page.content.decode()
    response = confirm_import(client, page)
    assert response.status_code == 302
    created = Question.objects.filter(topic=known_dataset, text__in=["Brand new refund question", "fees for top ups"])
    assert sorted(created.values_list("text", "split", "status")) == [
        ("Brand new refund question", "validation", "pending"), ("fees for top ups", "", "flagged")]
    assert Question.objects.filter(topic=known_dataset).count() == len(KNOWN_QUESTIONS) + 2
    message = str(list(response.wsgi_request._messages)[0])
    assert message.startswith("Imported into Customer Care: 4 rows: 2 created, 1 duplicate skipped")


def test_an_admin_export_takes_split_assigned_and_include_out_of_scope(client, superuser, known_dataset):
    client.force_login(superuser)
    response = client.post(reverse("admin:datasets_export_add"), {
        "topic": known_dataset.pk, "format": "jsonl", "include_out_of_scope": "on", "split_preset": "assigned",
        "statuses": ["approved", "relabeled"], "seed": 42, "system_prompt": "", "instruction": ""})
    assert response.status_code == 302
    export = Export.objects.get()
    assert export.split == {"mode": "assigned", "unassigned": {"train": 0.8, "validation": 0.1, "test": 0.1}}
    assert export.filters == {"statuses": ["approved", "relabeled"], "include_out_of_scope": True}
    page = client.get(reverse("admin:datasets_export_changelist")).content.decode()
    assert "assigned (the others: train 0.8, validation 0.1, test 0.1)" in page
