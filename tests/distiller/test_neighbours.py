"""An intent's neighbours: its siblings, then the intents the latest evaluation confused it with."""

from django.utils import timezone

from distiller.selectors import intent_neighbours
from evaluation.models import Evaluation


def test_neighbours_are_siblings_then_the_latest_evaluations_confusions(topic, make_intent):
    billing, account = make_intent(topic, "Billing"), make_intent(topic, "Account")
    refunds, invoices = make_intent(topic, "Refunds", parent=billing), make_intent(topic, "Invoices", parent=billing)
    password = make_intent(topic, "Password", parent=account)
    outside = make_intent(topic, "Out of scope")
    outside.out_of_scope = True
    outside.save()
    pair = {"intent": {"id": password.pk}, "predicted": {"id": refunds.pk}, "count": 3}
    Evaluation.objects.create(topic=topic, status="succeeded", finished_at=timezone.now(),
                              metrics={"confusion_pairs": [pair]})
    Evaluation.objects.create(topic=topic, status="failed", finished_at=timezone.now(),
                              metrics={"confusion_pairs": [{**pair, "intent": {"id": invoices.pk}}]})

    assert intent_neighbours(intent=refunds) == [invoices, password]  # either way round
    assert intent_neighbours(intent=invoices) == [refunds]  # a failed evaluation says nothing
    assert intent_neighbours(intent=billing) == [account]  # the out-of-scope root is nobody's neighbour
