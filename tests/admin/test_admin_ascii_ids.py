"""The admin reads row ids in ASCII digits only (config/admin_site.py): int() would take Arabic-Indic
"١٢" or "1_2" for row 12, another row than the one typed."""

from django.contrib import admin
from django.contrib.auth.models import User
from django.urls import reverse

from datasets.models import Question
from tests.admin.forms import change_form_data

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def test_a_change_page_with_non_ascii_digits_finds_no_object(client, superuser, topic, make_intent, make_question):
    question = make_question(make_intent(topic, "Refunds"), "refund please")
    client.force_login(superuser)
    assert client.get(reverse("admin:datasets_question_change", args=[question.pk])).status_code == 200
    for typed in (str(question.pk).translate(ARABIC_INDIC), f"0_{question.pk}"):
        response = client.get(f"/admin/datasets/question/{typed}/change/", follow=True)
        assert response.redirect_chain[0][0] == reverse("admin:index")
        assert [str(m) for m in response.context["messages"]] == [
            f"question with ID “{typed}” doesn’t exist. Perhaps it was deleted?"]


def test_a_foreign_key_in_non_ascii_digits_is_an_invalid_choice_and_nothing_changes(
        client, dataset_admin, topic, make_intent, make_question):
    refunds, billing = make_intent(topic, "Refunds"), make_intent(topic, "Billing")
    question = make_question(refunds, "refund please")
    client.force_login(dataset_admin)
    url = reverse("admin:datasets_question_change", args=[question.pk])
    data = change_form_data(client.get(url))
    data["intent"] = str(billing.pk).translate(ARABIC_INDIC)
    response = client.post(url, data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["intent"] == [
        "Select a valid choice. That choice is not one of the available choices."]
    question.refresh_from_db()
    assert (question.intent, question.version) == (refunds, 1)

    data["intent"] = str(billing.pk)  # the same id in ASCII is taken
    assert client.post(url, data).status_code == 302
    assert Question.objects.get(pk=question.pk).intent == billing


def test_every_registered_admin_has_the_ascii_id_rules():
    from config.admin_site import AsciiIdAdminMixin

    assert admin.site.__class__.__name__ == "DistillerAdminSite"
    assert all(isinstance(model_admin, AsciiIdAdminMixin) for model_admin in admin.site._registry.values())
    assert User in admin.site._registry
