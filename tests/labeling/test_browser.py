"""A short keyboard session in headless Chromium: approve, relabel, undo, edit, skip; never a page load."""

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from datasets.models import Question

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_reviewer_approves_relabels_undoes_edits_and_skips_with_the_keyboard(
        browser, live_server, reviewer, topic, taxonomy, make_question):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shows
    from selenium.webdriver.support.ui import WebDriverWait

    first = make_question(taxonomy["refunds"], "I want my money back")
    second = make_question(taxonomy["refunds"], "Can I get a copy of my March invoice?")
    third = make_question(taxonomy["refunds"], "Refund the broken kettle")
    wait = WebDriverWait(browser, 20)

    browser.get(live_server.url + reverse("labeling:review", args=[topic.pk]))
    assert "/accounts/login/" in browser.current_url
    browser.find_element(By.NAME, "username").send_keys("rita")
    browser.find_element(By.NAME, "password").send_keys("pw-rita\n")
    wait.until(shows.text_to_be_present_in_element((By.ID, "q-text"), first.text))
    assert "3 left in this queue" in browser.find_element(By.ID, "status-line").text
    # A full page load would wipe this: it must still be there when the session ends.
    browser.execute_script("window.reviewSessionMarker = 'same page';")

    def press(keys):
        browser.switch_to.active_element.send_keys(keys)

    press("a")
    wait.until(shows.text_to_be_present_in_element((By.ID, "q-text"), second.text))
    assert f"Approved #{first.pk}" in browser.find_element(By.ID, "toast").text
    assert "2 left in this queue" in browser.find_element(By.ID, "status-line").text

    press("l")
    wait.until(shows.visibility_of_element_located((By.ID, "relabel-input")))
    press("invoi")
    wait.until(shows.text_to_be_present_in_element((By.ID, "relabel-options"), "1.2 Invoices"))
    press("\n")
    wait.until(shows.text_to_be_present_in_element((By.ID, "q-text"), third.text))
    assert "as 1.2 Invoices" in browser.find_element(By.ID, "toast").text

    press("u")
    wait.until(shows.text_to_be_present_in_element((By.ID, "q-text"), second.text))
    assert f"Undone: #{second.pk}" in browser.find_element(By.ID, "toast").text
    # The undone question is in the queue again: the counter agrees with the dashboard.
    assert "2 left in this queue" in browser.find_element(By.ID, "status-line").text

    # Opening the edit box renews the reservation before anything is saved.
    reserved_until = Question.objects.get(pk=second.pk).lease_expires_at
    press("e")
    wait.until(shows.visibility_of_element_located((By.ID, "q-edit")))
    wait.until(lambda _: Question.objects.get(pk=second.pk).lease_expires_at > reserved_until)
    press("Could I get a copy of my March invoice?\n")
    wait.until(shows.text_to_be_present_in_element((By.ID, "q-text"), "Could I get a copy of my March invoice?"))
    assert f"Edited #{second.pk}" in browser.find_element(By.ID, "toast").text

    press("a")
    wait.until(shows.text_to_be_present_in_element((By.ID, "q-text"), third.text))
    press("j")  # nothing else is left, so the skipped question comes straight back
    wait.until(shows.text_to_be_present_in_element((By.ID, "toast"), f"Nothing else is left: #{third.pk}"))
    assert browser.find_element(By.ID, "q-text").text == third.text

    # `a` then `e` in one go: the edit key arrives while the approval is in flight, so it is
    # refused rather than opening an editor that would save onto whatever comes next.
    browser.execute_script("""
        for (const key of ["a", "e"]) document.dispatchEvent(new KeyboardEvent("keydown", {key, bubbles: true}));
    """)
    assert browser.find_element(By.ID, "toast").text == "Wait a moment: the last action is still being saved."
    wait.until(shows.text_to_be_present_in_element((By.ID, "status-line"), "Nothing left to review here."))
    assert not browser.find_element(By.ID, "q-edit").is_displayed()

    assert browser.execute_script("return window.reviewSessionMarker;") == "same page"
    first.refresh_from_db()
    second.refresh_from_db()
    third.refresh_from_db()
    assert (first.status, first.reviewed_by) == ("approved", reviewer)
    assert (second.status, second.intent, second.original_intent, second.text, second.original_text) == (
        "approved", taxonomy["refunds"], None, "Could I get a copy of my March invoice?",
        "Can I get a copy of my March invoice?")
    assert [(e.action, e.actor, e.to_intent) for e in second.events.order_by("id")] == [
        ("relabel", reviewer, taxonomy["invoices"]), ("undo", reviewer, taxonomy["refunds"]),
        ("edit", reviewer, taxonomy["refunds"]), ("approve", reviewer, taxonomy["refunds"])]
    assert (third.status, third.leased_by, third.text) == ("approved", None, "Refund the broken kettle")
    assert Question.objects.filter(events__via="ui").distinct().count() == 3


def test_guidance_reasons_second_opinion_and_adjudication_by_keyboard(
        browser, live_server, reviewer, lead, topic, make_intent):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shows
    from selenium.webdriver.support.ui import WebDriverWait

    from labeling.overlap import HASH_BUCKETS, HASH_MULTIPLIER
    from labeling.services import question_review

    billing = make_intent(topic, "Billing")
    money_back = make_intent(topic, "Money back", parent=billing,
                             description="Asks for a reimbursement of a payment.")
    invoices = make_intent(topic, "Invoices", parent=billing)
    topic.guidelines = "# How we label\n\nA question about **money back** is a refund.\n\n<script>window.bad = 1</script>"
    texts = ["Please give my cash back", "asdf qwer", "Is this about billing or not", "Send me the March bill"]
    questions = [Question.objects.create(topic=topic, intent=invoices, text=text, confidence=0.1 * (n + 1),
                                         source="captured") for n, text in enumerate(texts)]
    # Only the last question is decided by two reviewers: the overlap share takes the buckets below its own + 1,
    # and the other questions' buckets must lie above it.
    bucket = {q.pk: (q.pk * HASH_MULTIPLIER) % HASH_BUCKETS for q in questions}
    double = questions[3]
    if any(bucket[q.pk] <= bucket[double.pk] for q in questions[:3]):
        double = min(questions, key=lambda q: bucket[q.pk])
        questions.remove(double)
        questions.append(double)
        for n, q in enumerate(questions):
            Question.objects.filter(pk=q.pk).update(confidence=0.1 * (n + 1))
    topic.overlap_share = (bucket[double.pk] + 1) / HASH_BUCKETS
    topic.save()
    ben = User.objects.create_user(username="ben")
    ben.groups.add(Group.objects.get(name="reviewer"))
    topic.reviewers.add(ben)
    wait = WebDriverWait(browser, 20)

    def press(keys):
        browser.switch_to.active_element.send_keys(keys)

    def login(name):
        browser.delete_all_cookies()
        browser.get(live_server.url + reverse("login"))
        browser.find_element(By.NAME, "username").send_keys(name)
        browser.find_element(By.NAME, "password").send_keys(f"pw-{name}\n")
        # The next page load must not overtake the login's POST (it would land on the login page).
        wait.until(lambda b: "/accounts/login/" not in b.current_url)

    login("rita")
    browser.get(live_server.url + reverse("labeling:review", args=[topic.pk]))
    wait.until(shows.text_to_be_present_in_element((By.ID, "q-text"), questions[0].text))
    press("g")
    wait.until(shows.visibility_of_element_located((By.ID, "guidelines")))
    assert "How we label" in browser.find_element(By.ID, "guidelines").text
    assert browser.execute_script("return window.bad;") is None
    press("g")
    wait.until(shows.invisibility_of_element_located((By.ID, "guidelines")))

    press("l")  # "reimburs" is only in the description of Money back
    wait.until(shows.visibility_of_element_located((By.ID, "relabel-input")))
    press("reimburs")
    wait.until(shows.text_to_be_present_in_element((By.ID, "relabel-options"), "1.1 Money back"))
    press("\n")
    wait.until(shows.text_to_be_present_in_element((By.ID, "q-text"), questions[1].text))

    press("r")
    wait.until(shows.visibility_of_element_located((By.ID, "reason-input")))
    press("2")  # the topic's second reason: Unnatural
    wait.until(shows.text_to_be_present_in_element((By.ID, "q-text"), questions[2].text))
    assert "(Unnatural)" in browser.find_element(By.ID, "toast").text

    press("f")
    wait.until(shows.visibility_of_element_located((By.ID, "reason-input")))
    press("billing or account?\n")
    wait.until(shows.text_to_be_present_in_element((By.ID, "q-text"), questions[3].text))
    assert "decided independently by 2 reviewers" in browser.find_element(By.ID, "q-badges").text
    press("a")
    wait.until(shows.text_to_be_present_in_element((By.ID, "status-line"), "Nothing left to review here."))
    assert "This session: 4 decisions" in browser.find_element(By.ID, "session").text
    question_review(question_id=double.pk, actor=ben, action="reject")  # the second reviewer disagrees

    login("leo")
    browser.get(live_server.url + reverse("labeling:review", args=[topic.pk]) + "?queue=second_opinion")
    # Two flagged questions wait, served in the queue's order (both flagged within the same
    # moment, so either may come first): rita's flag gets a second opinion, the disagreement an
    # adjudication.
    decided = []
    for _ in range(2):
        wait.until(lambda b: b.find_element(By.ID, "q-text").text in (questions[2].text, double.text)
                   and b.find_element(By.ID, "q-text").text not in decided)
        shown = browser.find_element(By.ID, "q-text").text
        decided.append(shown)
        if shown == questions[2].text:
            press("a")  # the second opinion on rita's flag
        else:
            press("r")  # adjudication: ben was right
            wait.until(shows.visibility_of_element_located((By.ID, "reason-input")))
            press("\n")
    wait.until(shows.text_to_be_present_in_element((By.ID, "status-line"), "Nothing left to review here."))
    assert sorted(decided) == sorted([questions[2].text, double.text])

    rows = {q.pk: q for q in Question.objects.all()}
    assert (rows[questions[0].pk].status, rows[questions[0].pk].intent) == ("relabeled", money_back)
    assert rows[questions[1].pk].events.get().reason == "Unnatural"
    assert [(e.actor.username, e.action, e.reason) for e in rows[questions[2].pk].events.order_by("id")] == [
        ("rita", "flag", "billing or account?"), ("leo", "approve", "")]
    assert rows[questions[2].pk].status == "approved"
    assert [(e.actor and e.actor.username, e.action) for e in rows[double.pk].events.order_by("id")] == [
        (None, "flag"), ("leo", "reject")]
    assert rows[double.pk].status == "rejected"
