"""Topics and intents in the admin: trees only for the topics one reviews, counts without a query
per row, and intent edits that keep the numbering dense and consistent."""

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from datasets.models import IntentNode
from tests.admin.forms import change_form_data

pytestmark = pytest.mark.django_db


def numbers(topic) -> dict[str, str]:
    return dict(IntentNode.objects.filter(topic=topic).values_list("name", "number"))


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def tree(topic, make_intent):
    """Customer Support: 1 Billing (1.1 Refunds, 1.2 Invoices), 2 Account, 3 Shipping."""
    billing = make_intent(topic, "Billing")
    return {
        "billing": billing,
        "refunds": make_intent(topic, "Refunds", parent=billing),
        "invoices": make_intent(topic, "Invoices", parent=billing),
        "account": make_intent(topic, "Account"),
        "shipping": make_intent(topic, "Shipping"),
    }


def test_a_reviewer_cannot_read_the_tree_of_a_topic_they_do_not_review(client, other_reviewer, tree, topic):
    client.force_login(other_reviewer)
    assert client.get(reverse("admin:datasets_topic_taxonomy", args=[topic.pk])).status_code == 404


def test_a_reviewer_reads_the_tree_of_their_topic(client, reviewer, tree, topic):
    client.force_login(reviewer)
    page = client.get(reverse("admin:datasets_topic_taxonomy", args=[topic.pk]))
    assert page.status_code == 200
    assert "1.2 Invoices" in page.content.decode()


def test_the_topic_changelist_counts_in_a_fixed_number_of_queries(client, dataset_admin, make_topic, make_intent,
                                                                  make_question):
    def changelist_queries():
        with CaptureQueriesContext(connection) as queries:
            page = client.get(reverse("admin:datasets_topic_changelist"))
        assert page.status_code == 200
        return len(queries), page

    client.force_login(dataset_admin)
    first = make_topic("First")
    make_question(make_intent(first, "Only"), "one", status="approved")
    with_one, _ = changelist_queries()
    for name in ("Second", "Third", "Fourth"):
        topic = make_topic(name)
        leaf = make_intent(topic, "Leaf")
        make_intent(topic, "Other")
        make_question(leaf, "approved one", status="approved")
        make_question(leaf, "relabeled one", status="relabeled")
        make_question(leaf, "pending one")
    with_four, page = changelist_queries()
    assert with_four == with_one
    rows = {topic.name: (topic.n_intents, topic.n_questions, topic.n_approved) for topic in page.context["cl"].result_list}
    assert rows == {"First": (1, 1, 1), "Second": (2, 3, 2), "Third": (2, 3, 2), "Fourth": (2, 3, 2)}


def post_intent_change(client, node, **changes):
    url = reverse("admin:datasets_intentnode_change", args=[node.pk])
    data = change_form_data(client.get(url))
    data.update({key: "" if value is None else value for key, value in changes.items()})
    return client.post(url, data)


def test_the_topic_of_an_intent_cannot_be_changed(client, dataset_admin, tree, topic, make_topic):
    elsewhere = make_topic("Elsewhere")
    client.force_login(dataset_admin)
    response = post_intent_change(client, tree["account"], topic=elsewhere.pk, name="Account")
    assert response.status_code == 302
    assert IntentNode.objects.get(pk=tree["account"].pk).topic == topic
    assert not IntentNode.objects.filter(topic=elsewhere).exists()


def test_the_position_of_an_intent_is_not_edited_by_hand(client, dataset_admin, tree, topic):
    client.force_login(dataset_admin)
    response = post_intent_change(client, tree["shipping"], position=1, description="Parcels")
    assert response.status_code == 302
    shipping = IntentNode.objects.get(pk=tree["shipping"].pk)
    assert (shipping.position, shipping.number, shipping.description) == (3, "3", "Parcels")


def test_moving_an_intent_under_its_own_descendant_is_a_form_error(client, dataset_admin, tree, topic):
    client.force_login(dataset_admin)
    before = numbers(topic)
    response = post_intent_change(client, tree["billing"], parent=tree["refunds"].pk)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "parent": ["Cannot move an intent under itself or one of its descendants."]}
    response = post_intent_change(client, tree["billing"], parent=tree["billing"].pk)
    assert response.context["adminform"].form.errors == {
        "parent": ["Cannot move an intent under itself or one of its descendants."]}
    assert numbers(topic) == before


def test_moving_an_intent_renumbers_the_tree(client, dataset_admin, tree, topic):
    client.force_login(dataset_admin)
    response = post_intent_change(client, tree["account"], parent=tree["billing"].pk)
    assert response.status_code == 302
    assert numbers(topic) == {"Billing": "1", "Refunds": "1.1", "Invoices": "1.2", "Account": "1.3", "Shipping": "2"}


def test_an_intent_the_service_refuses_is_not_reported_as_added(client, dataset_admin, topic, make_intent):
    make_intent(topic, "Refund policy")
    client.force_login(dataset_admin)
    url = reverse("admin:datasets_intentnode_add")
    data = change_form_data(client.get(url))
    # The model's check compares the name as typed; the service collapses the spaces and refuses.
    data.update(topic=topic.pk, parent="", name="Refund   policy", description="")
    response = client.post(url, data)
    assert response.status_code == 302
    assert messages_of(response) == ["'Refund policy' already exists under Customer Support."]
    assert numbers(topic) == {"Refund policy": "1"}


def test_an_intent_added_in_the_admin_is_numbered_after_its_siblings(client, dataset_admin, tree, topic):
    client.force_login(dataset_admin)
    url = reverse("admin:datasets_intentnode_add")
    data = change_form_data(client.get(url))
    data.update(topic=topic.pk, parent=tree["billing"].pk, name="Disputes", description="")
    assert client.post(url, data).status_code == 302
    assert numbers(topic)["Disputes"] == "1.3"


def test_deleting_an_intent_renumbers_its_siblings(client, dataset_admin, tree, topic):
    client.force_login(dataset_admin)
    response = client.post(reverse("admin:datasets_intentnode_delete", args=[tree["billing"].pk]), {"post": "yes"})
    assert response.status_code == 302
    assert numbers(topic) == {"Account": "1", "Shipping": "2"}
    assert [n.sort_key for n in IntentNode.objects.filter(topic=topic)] == ["0001", "0002"]


def test_deleting_selected_intents_renumbers_what_is_left(client, dataset_admin, tree, topic):
    client.force_login(dataset_admin)
    response = client.post(reverse("admin:datasets_intentnode_changelist"), {
        "action": "delete_selected", "post": "yes", "_selected_action": [tree["refunds"].pk, tree["account"].pk]})
    assert response.status_code == 302
    assert numbers(topic) == {"Billing": "1", "Invoices": "1.1", "Shipping": "2"}
