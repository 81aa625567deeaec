"""Input the API used to take silently or answer with a 500: ids are ASCII digits, booleans are not
numbers, text holds no NUL byte and at most QUESTION_TEXT_MAX_CHARS characters, unknown fields are
named in a 400."""

import pytest
from django.urls import reverse

from datasets.models import QUESTION_TEXT_MAX_CHARS, Export, IntentNode, Question, Topic
from distiller.models import DistillationRun, LLMProvider
from tests.api.clients import api_as

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def arabic(number: int) -> str:
    """The same number in Arabic-Indic digits: str.isdecimal() and int() both take it."""
    return str(number).translate(ARABIC_INDIC)


def assert_invalid(response, code: str = "invalid") -> dict:
    assert response.status_code == 400, response.content[:500]
    error = response.json()["error"]
    assert error["code"] == code
    return error


@pytest.fixture
def intent(make_intent, topic):
    return make_intent(topic, "Refunds")


@pytest.fixture
def provider(db):
    return LLMProvider.objects.create(name="Local", kind=LLMProvider.Kind.CUSTOM, base_url="http://127.0.0.1:9/v1",
                                      model="m")


# --- 7. Ids are ASCII digits only ----------------------------------------------------------------


@pytest.mark.parametrize("raw", ["%C2%B2", "%D9%A1", "1_0", "%EF%BC%91"])  # ², ١, 1_0, fullwidth １
def test_review_next_refuses_a_topic_id_that_is_not_ascii_digits(reviewer, topic, raw):
    error = assert_invalid(api_as(reviewer).get(f"/api/v1/review/next/?topic={raw}"), "invalid_parameter")
    assert error["message"].startswith("topic must be a positive whole number in ASCII digits")


def test_review_next_does_not_read_arabic_indic_digits_as_the_topic(reviewer, topic, intent, make_question):
    make_question(intent, "Where is my refund?")
    client = api_as(reviewer)
    assert client.get(f"/api/v1/review/next/?topic={topic.pk}").json()["question"] is not None
    assert_invalid(client.get(f"/api/v1/review/next/?topic={arabic(topic.pk)}"), "invalid_parameter")
    assert not Question.objects.filter(leased_by=reviewer).exclude(text="Where is my refund?").exists()


@pytest.mark.parametrize("params", ["intent={a}", "reviewer={a}", "skip={a}", "skip=1,{a}", "confidence_min=%D9%A0.5",
                                    "confidence_max=nan"])
def test_review_next_refuses_non_ascii_numbers_in_its_filters(reviewer, topic, intent, params):
    url = f"/api/v1/review/next/?topic={topic.pk}&" + params.format(a=arabic(intent.pk))
    assert_invalid(api_as(reviewer).get(url), "invalid_parameter")


@pytest.mark.parametrize("url", ["/api/v1/questions/?topic={a}", "/api/v1/questions/?intent={a}",
                                 "/api/v1/runs/?topic={a}", "/api/v1/labeling/export?topic={a}"])
def test_list_filters_refuse_arabic_indic_ids(dataset_admin, topic, intent, url):
    assert_invalid(api_as(dataset_admin).get(url.format(a=arabic(topic.pk))), "invalid_parameter")


def test_ids_in_json_bodies_are_numbers_or_ascii_digit_strings(dataset_admin, topic, intent):
    client = api_as(dataset_admin)
    for topic_id in [arabic(topic.pk), "²", True]:
        response = client.post("/api/v1/questions/", {"topic": topic_id, "intent": intent.pk, "text": "Refund?"},
                               format="json")
        assert assert_invalid(response)["details"] == {"topic": ["A valid integer is required."]}
    for intent_id in [arabic(intent.pk), True, 1.5]:
        response = client.post("/api/v1/questions/", {"topic": topic.pk, "intent": intent_id, "text": "Refund?"},
                               format="json")
        assert assert_invalid(response)["details"] == {"intent": ["A valid integer is required."]}
    assert not Question.objects.exists()
    created = client.post("/api/v1/questions/", {"topic": str(topic.pk), "intent": intent.pk, "text": "Refund?"},
                          format="json")
    assert created.status_code == 201


def test_a_run_provider_named_by_a_superscript_digit_is_not_found_not_a_500(dataset_admin, topic, provider):
    for name in ["²", arabic(provider.pk)]:
        response = api_as(dataset_admin).post("/api/v1/runs/", {"topic": topic.pk, "provider": name}, format="json")
        assert response.status_code == 404
        assert response.json()["error"]["message"].startswith(f"Unknown or inactive provider {name!r}")
    assert not DistillationRun.objects.exists()


def test_the_run_topic_is_an_ascii_id(dataset_admin, topic, provider):
    for topic_id, kind in [(arabic(topic.pk), "str"), ("²", "str"), (True, "bool"), (1.0, "float")]:
        response = api_as(dataset_admin).post("/api/v1/runs/estimate/", {"topic": topic_id, "provider": "Local"},
                                              format="json")
        assert assert_invalid(response)["details"] == {"topic": [f"Incorrect type. Expected pk value, received {kind}."]}


def test_the_list_view_refuses_non_ascii_ids_and_changes_nothing(client, reviewer, topic, intent, make_question):
    question = make_question(intent, "refund me")
    client.force_login(reviewer)
    url = reverse("labeling:questions", args=[topic.pk])
    response = client.post(url, {"action": "approve", "scope": "selected", "ids": [arabic(question.pk)]}, follow=True)
    assert f"ids must be a positive whole number in ASCII digits, got &#x27;{arabic(question.pk)}&#x27;" \
        in response.content.decode()
    response = client.post(url, {"action": "relabel", "scope": "all", "to_intent": arabic(intent.pk)}, follow=True)
    assert "to_intent must be a positive whole number in ASCII digits" in response.content.decode()
    assert Question.objects.get(pk=question.pk).status == "pending"
    response = client.get(url + f"?intent={arabic(intent.pk)}", follow=True)
    assert "intent must be a positive whole number in ASCII digits" in response.content.decode()


def test_the_run_start_admin_page_ignores_a_topic_that_is_not_an_ascii_id(client, superuser, topic):
    client.force_login(superuser)
    url = reverse("admin:distiller_distillationrun_start")
    assert client.get(url + "?topic=%C2%B2").status_code == 200
    page = client.get(url + f"?topic={arabic(topic.pk)}").content.decode()
    assert f'<option value="{topic.pk}" selected>' not in page
    assert f'<option value="{topic.pk}" selected>' in client.get(url + f"?topic={topic.pk}").content.decode()


# --- 8. NUL bytes ------------------------------------------------------------------------------


def test_a_nul_byte_anywhere_in_a_json_body_is_a_400_naming_the_field(dataset_admin, topic, provider):
    client = api_as(dataset_admin)
    response = client.post("/api/v1/runs/", {"topic": topic.pk, "provider": "Local",
                                             "mix": {"style": {"casual\x00": 1}}}, format="json")
    error = assert_invalid(response)
    assert error["details"] == {"mix": ["Text cannot contain NUL bytes (\\x00): found one in a key of mix.style."]}
    assert not DistillationRun.objects.exists()
    response = client.post("/api/v1/exports/", {"topic": topic.pk, "format": "jsonl",
                                                "split": {"train": 0.5, "te\x00st": 0.5}}, format="json")
    assert assert_invalid(response)["details"] == {
        "split": ["Text cannot contain NUL bytes (\\x00): found one in a key of split."]}
    assert not Export.objects.exists()


def test_a_nul_byte_in_a_field_name_is_a_400(dataset_admin):
    response = api_as(dataset_admin).post("/api/v1/topics/", {"name": "Travel", "na\x00me": "x"}, format="json")
    assert set(assert_invalid(response)["details"]) == {"na\x00me"}
    assert not Topic.objects.filter(name="Travel").exists()


# --- 10. One limit for question text -----------------------------------------------------------


def test_question_creation_takes_text_up_to_the_limit(dataset_admin, topic, intent):
    client = api_as(dataset_admin)
    body = {"topic": topic.pk, "intent": intent.pk, "text": "a" * QUESTION_TEXT_MAX_CHARS}
    assert client.post("/api/v1/questions/", body, format="json").status_code == 201
    body["text"] = "b" * (QUESTION_TEXT_MAX_CHARS + 1)
    error = assert_invalid(client.post("/api/v1/questions/", body, format="json"))
    assert error["details"] == {"text": [f"Ensure this field has no more than {QUESTION_TEXT_MAX_CHARS} characters."]}


def test_a_review_edit_is_held_to_the_question_text_limit(reviewer, intent, make_question):
    question = make_question(intent, "Where is my refund?")
    client = api_as(reviewer)
    too_long = client.post(f"/api/v1/questions/{question.pk}/review/",
                           {"action": "edit", "text": "x" * (QUESTION_TEXT_MAX_CHARS + 1), "version": question.version},
                           format="json")
    assert assert_invalid(too_long)["details"] == {
        "text": [f"Ensure this field has no more than {QUESTION_TEXT_MAX_CHARS} characters."]}
    assert Question.objects.get(pk=question.pk).text == "Where is my refund?"
    longest = client.post(f"/api/v1/questions/{question.pk}/review/",
                          {"action": "edit", "text": "y" * QUESTION_TEXT_MAX_CHARS, "version": question.version},
                          format="json")
    assert longest.status_code == 200
    assert Question.objects.get(pk=question.pk).text == "y" * QUESTION_TEXT_MAX_CHARS


def test_the_review_service_refuses_text_over_the_limit_for_every_caller(reviewer, intent, make_question):
    from datasets.services import DatasetError
    from labeling.services import question_review

    question = make_question(intent, "Where is my refund?")
    with pytest.raises(DatasetError, match=f"at most {QUESTION_TEXT_MAX_CHARS:,} characters"):
        question_review(question_id=question.pk, actor=reviewer, action="edit",
                        text="z" * (QUESTION_TEXT_MAX_CHARS + 1), version=question.version, via="admin")
    assert Question.objects.get(pk=question.pk).text == "Where is my refund?"


def test_the_admin_change_form_refuses_text_over_the_limit(client, superuser, intent, make_question):
    question = make_question(intent, "Where is my refund?")
    client.force_login(superuser)
    url = reverse("admin:datasets_question_change", args=[question.pk])
    response = client.post(url, {"topic": question.topic_id, "intent": intent.pk, "language": question.language,
                                 "source": question.source, "status": question.status,
                                 "text": "w" * (QUESTION_TEXT_MAX_CHARS + 1), "loaded_version": question.version,
                                 "events-TOTAL_FORMS": 0, "events-INITIAL_FORMS": 0}, follow=True)
    assert (f"Ensure this value has at most {QUESTION_TEXT_MAX_CHARS} characters (it has "
            f"{QUESTION_TEXT_MAX_CHARS + 1})") in response.content.decode()
    assert Question.objects.get(pk=question.pk).text == "Where is my refund?"


def test_the_admin_add_form_refuses_text_over_the_limit(client, superuser, topic, intent):
    client.force_login(superuser)
    response = client.post(reverse("admin:datasets_question_add"), {
        "topic": topic.pk, "intent": intent.pk, "language": "en", "source": "manual", "status": "pending",
        "text": "w" * (QUESTION_TEXT_MAX_CHARS + 1), "events-TOTAL_FORMS": 0, "events-INITIAL_FORMS": 0})
    assert f"Ensure this value has at most {QUESTION_TEXT_MAX_CHARS} characters" in response.content.decode()
    assert not Question.objects.exists()


# --- 11. Booleans are not numbers ----------------------------------------------------------------


@pytest.mark.parametrize("field,value", [("temperature", True), ("near_duplicate_threshold", True),
                                         ("questions_per_intent", True), ("levels", False), ("seed", "١")])
def test_run_parameters_refuse_booleans_and_non_ascii_numbers(dataset_admin, topic, provider, field, value):
    response = api_as(dataset_admin).post("/api/v1/runs/", {"topic": topic.pk, "provider": "Local", field: value},
                                          format="json")
    assert set(assert_invalid(response)["details"]) == {field}
    assert not DistillationRun.objects.exists()


def test_a_boolean_mix_weight_is_refused(dataset_admin, topic, provider):
    response = api_as(dataset_admin).post("/api/v1/runs/estimate/", {
        "topic": topic.pk, "provider": "Local", "mix": {"style": {"casual chat": True}}}, format="json")
    assert assert_invalid(response)["message"] == "Mix style.casual chat must be a weight >= 0."


def test_a_topic_confidence_threshold_is_a_number_not_a_boolean(dataset_admin):
    client = api_as(dataset_admin)
    response = client.post("/api/v1/topics/", {"name": "Travel", "confidence_threshold": True}, format="json")
    assert set(assert_invalid(response)["details"]) == {"confidence_threshold"}
    response = client.post("/api/v1/topics/", {"name": "Travel", "levels": arabic(3)}, format="json")
    assert set(assert_invalid(response)["details"]) == {"levels"}
    assert not Topic.objects.filter(name="Travel").exists()


# --- 12. Unknown fields are a 400 naming them ---------------------------------------------------


def test_a_run_with_the_clis_option_name_is_refused_with_the_right_name(dataset_admin, topic, provider):
    response = api_as(dataset_admin).post("/api/v1/runs/", {"topic": topic.pk, "provider": "Local",
                                                            "questions_per_tag": 5}, format="json")
    error = assert_invalid(response)
    assert error["message"] == "Unknown field questions_per_tag; see details."
    assert error["details"] == {"questions_per_tag": ["Unknown field: did you mean questions_per_intent?"]}
    assert not DistillationRun.objects.exists()


def test_a_run_with_a_bogus_field_lists_the_accepted_ones(dataset_admin, topic, provider):
    response = api_as(dataset_admin).post("/api/v1/runs/", {"topic": topic.pk, "bogus": 1}, format="json")
    from distiller.api import RunStartSerializer

    message = assert_invalid(response)["details"]["bogus"][0]
    accepted = list(RunStartSerializer().fields)
    assert accepted[:4] == ["topic", "kind", "idempotency_key", "provider"] and "judge" in accepted
    assert message == f"Unknown field. Accepted fields: {', '.join(accepted)}."
    assert not DistillationRun.objects.exists()


def _request_bodies(topic, intent, question):
    """One valid body per endpoint that takes one; each test adds an unknown field to it."""
    return [
        ("/api/v1/topics/", {"name": "Travel"}),
        (f"/api/v1/topics/{topic.pk}/intents/", {"name": "Invoices"}),
        ("/api/v1/questions/", {"topic": topic.pk, "intent": intent.pk, "text": "Refund please"}),
        ("/api/v1/exports/", {"topic": topic.pk, "format": "jsonl"}),
        ("/api/v1/runs/estimate/", {"topic": topic.pk, "provider": "Local"}),
        (f"/api/v1/questions/{question.pk}/review/", {"action": "approve", "version": question.version}),
        ("/api/v1/labeling/captures/", {"topic": topic.pk, "text": "refund?", "predicted_intent": intent.pk,
                                        "confidence": 0.2}),
    ]


def test_every_json_endpoint_names_an_unknown_field_and_writes_nothing(
        dataset_admin, topic, intent, make_question, provider):
    question = make_question(intent, "Where is my refund?")
    client = api_as(dataset_admin)
    counts = (Topic.objects.count(), IntentNode.objects.count(), Question.objects.count(), Export.objects.count())
    for url, body in _request_bodies(topic, intent, question):
        error = assert_invalid(client.post(url, {**body, "colour": "red"}, format="json"))
        details = error["details"]["items"]["0"] if url.endswith("/captures/") else error["details"]
        assert set(details) == {"colour"}, url
        assert details["colour"][0].startswith("Unknown field. Accepted fields: "), url
        if not url.endswith("/captures/"):
            assert error["message"] == "Unknown field colour; see details.", url
    assert (Topic.objects.count(), IntentNode.objects.count(), Question.objects.count(),
            Export.objects.count()) == counts
    assert Question.objects.get(pk=question.pk).status == "pending"


def test_an_unknown_field_in_a_nested_item_is_named_by_its_index(dataset_admin, topic, intent):
    response = api_as(dataset_admin).post("/api/v1/questions/bulk/", {"topic": topic.pk, "questions": [
        {"intent": intent.pk, "text": "Refund please"}, {"intent": intent.pk, "text": "Refund now", "label": "x"}]},
        format="json")
    assert assert_invalid(response)["details"] == {"questions": {
        "1": {"label": ["Unknown field. Accepted fields: intent, text, status, language."]}}}
    assert not Question.objects.exists()


def test_an_import_names_an_unknown_form_field(dataset_admin, topic):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("q.jsonl", b'{"text": "Refund please", "intent_path": "Refunds"}\n')
    response = api_as(dataset_admin).post("/api/v1/imports/", {"topic": topic.pk, "format": "jsonl", "file": upload,
                                                               "create_intent": "true"}, format="multipart")
    assert assert_invalid(response)["details"] == {"create_intent": ["Unknown field: did you mean create_intents?"]}


def test_a_review_filter_names_an_unknown_key(reviewer, intent, make_question):
    question = make_question(intent, "Where is my refund?")
    response = api_as(reviewer).post(f"/api/v1/questions/{question.pk}/review/", {
        "action": "approve", "version": question.version, "next": True, "filter": {"serach": "refund"}},
        format="json")
    assert assert_invalid(response)["details"] == {"filter": ["Unknown filter serach: did you mean search?"]}
    assert Question.objects.get(pk=question.pk).status == "pending"


def test_every_request_body_of_the_api_is_checked_strictly():
    """A new endpoint's serializer cannot forget the checks: every request body in the schema is one."""
    from drf_spectacular.generators import SchemaGenerator
    from rest_framework import serializers

    from config.serializers import StrictInputMixin

    schema = SchemaGenerator().get_schema(request=None, public=True)
    names = set()
    for operations in schema["paths"].values():
        for operation in operations.values():
            for media in (operation.get("requestBody") or {}).get("content", {}).values():
                ref = media["schema"].get("$ref") or media["schema"].get("items", {}).get("$ref")
                if ref:
                    names.add(ref.rsplit("/", 1)[1])

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    by_name = {cls.__name__.removesuffix("Serializer"): cls for cls in subclasses(serializers.BaseSerializer)}
    assert names >= {"RunStart", "QuestionCreate", "Capture", "ReviewRequest", "Topic", "Import"}
    lenient = sorted(name for name in names if not issubclass(by_name[name], StrictInputMixin))
    assert lenient == []
