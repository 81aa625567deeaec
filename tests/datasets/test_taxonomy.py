import pytest
from django.db import IntegrityError, transaction

from datasets.models import IntentNode
from datasets.selectors import intent_infos, intent_subtree_ids
from datasets.services import DatasetError, intent_move, intent_renumber


@pytest.fixture
def tree(topic, make_intent):
    """Customer Support -> 1 Billing (1.1 Refunds, 1.2 Invoices), 2 Account Management (2.1 Password Reset)."""
    billing = make_intent(topic, "Billing")
    refunds = make_intent(topic, "Refunds", parent=billing)
    invoices = make_intent(topic, "Invoices", parent=billing)
    account = make_intent(topic, "Account Management")
    reset = make_intent(topic, "Password Reset", parent=account)
    return dict(billing=billing, refunds=refunds, invoices=invoices, account=account, reset=reset)


def test_it_numbers_intents_by_level_and_order(tree):
    assert [tree[k].number for k in ("billing", "refunds", "invoices", "account", "reset")] == [
        "1", "1.1", "1.2", "2", "2.1"]
    assert tree["reset"].depth == 2


def test_path_helpers_match_the_seed_tool(tree):
    reset = IntentNode.objects.get(pk=tree["reset"].pk)
    assert reset.intent_path == "Customer Support -> Account Management -> Password Reset"
    assert reset.intent_numbered_path == "Customer Support -> 2 Account Management -> 2.1 Password Reset"
    assert reset.intent_hierarchy == ["Customer Support", "Account Management", "Password Reset"]
    assert reset.intent_full_name == "2.1 Password Reset"


def test_bulk_path_selector_agrees_with_the_model_helpers(topic, tree):
    infos = intent_infos(topic=topic)
    for node in IntentNode.objects.filter(topic=topic):
        info = infos[node.pk]
        assert (info.intent_path, info.intent_numbered_path, info.intent_hierarchy, info.intent_full_name) == (
            node.intent_path, node.intent_numbered_path, node.intent_hierarchy, node.intent_full_name)
    assert [i.is_leaf for i in infos.values()] == [False, True, True, False, True]


def test_it_rejects_a_duplicate_sibling_name_case_insensitively(topic, tree, make_intent):
    with pytest.raises(DatasetError, match="already exists"):
        make_intent(topic, "refunds", parent=tree["billing"])
    # The database constraint holds even when the service is bypassed.
    with pytest.raises(IntegrityError), transaction.atomic():
        IntentNode.objects.create(topic=topic, parent=tree["billing"], name="REFUNDS", number="1.9")
    with pytest.raises(IntegrityError), transaction.atomic():
        IntentNode.objects.create(topic=topic, name="billing", number="7")


def test_the_same_name_is_allowed_under_different_parents(topic, tree, make_intent):
    other = make_intent(topic, "Refunds", parent=tree["account"])
    assert other.number == "2.2"


def test_it_rejects_a_duplicate_number_in_a_topic(topic, tree):
    with pytest.raises(IntegrityError), transaction.atomic():
        IntentNode.objects.create(topic=topic, name="Other", number="1")


def test_moving_a_subtree_renumbers_it_and_keeps_numbers_dense(topic, tree):
    intent_move(node=tree["billing"], new_parent=tree["account"])
    numbers = dict(IntentNode.objects.filter(topic=topic).values_list("name", "number"))
    assert numbers == {"Account Management": "1", "Password Reset": "1.1", "Billing": "1.2",
                       "Refunds": "1.2.1", "Invoices": "1.2.2"}
    assert IntentNode.objects.get(name="Invoices").depth == 3


def test_it_refuses_to_move_an_intent_under_its_own_descendant(tree):
    with pytest.raises(DatasetError, match="under itself"):
        intent_move(node=tree["billing"], new_parent=tree["refunds"])


def test_renumber_after_deleting_a_sibling(topic, tree):
    tree["refunds"].delete()
    assert intent_renumber(topic=topic) == 1
    assert IntentNode.objects.get(name="Invoices").number == "1.1"


def test_tree_order_sorts_numbers_numerically(topic, make_intent):
    parent = make_intent(topic, "Parent")
    for i in range(11):
        make_intent(topic, f"Child {i}", parent=parent)
    numbers = list(IntentNode.objects.filter(topic=topic).values_list("number", flat=True))
    assert numbers[-2:] == ["1.10", "1.11"]


def test_subtree_ids(tree):
    assert set(intent_subtree_ids(node=tree["billing"])) == {tree["billing"].pk, tree["refunds"].pk,
                                                             tree["invoices"].pk}
