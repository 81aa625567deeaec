"""Under the Content-Security-Policy, the review UI, the admin and the Swagger docs work in headless
Chromium, and Chromium reports no violation."""

import pytest
from django.urls import reverse

from datasets.models import Question

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def csp_violations(browser) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser")
            if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]]


def test_the_review_ui_the_admin_and_the_api_docs_work_with_no_csp_violation(
        browser, live_server, superuser, topic, make_intent, make_question):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shows
    from selenium.webdriver.support.ui import WebDriverWait

    topic.reviewers.add(superuser)
    refunds = make_intent(topic, "Refunds")
    first = make_question(refunds, "I want my money back")
    second = make_question(refunds, "Refund the broken kettle")
    wait = WebDriverWait(browser, 30)

    browser.get(live_server.url + reverse("labeling:review", args=[topic.pk]))
    assert "script-src 'self'" in browser.execute_script(
        "return fetch(location.href).then(r => r.headers.get('Content-Security-Policy'))")
    browser.find_element(By.NAME, "username").send_keys("root")
    browser.find_element(By.NAME, "password").send_keys("pw-root\n")
    # The review screen is all JavaScript: the question shows, a key approves it, the next one shows.
    wait.until(shows.text_to_be_present_in_element((By.ID, "q-text"), first.text))
    browser.switch_to.active_element.send_keys("a")
    wait.until(shows.text_to_be_present_in_element((By.ID, "q-text"), second.text))
    assert Question.objects.get(pk=first.pk).status == Question.Status.APPROVED
    assert csp_violations(browser) == []

    # The admin: a change form with its JavaScript widgets (the reviewers' two-pane selector).
    browser.get(live_server.url + reverse("admin:datasets_topic_change", args=[topic.pk]))
    wait.until(shows.presence_of_element_located((By.ID, "id_reviewers_from")))
    browser.get(live_server.url + reverse("admin:datasets_question_changelist"))
    wait.until(shows.presence_of_element_located((By.ID, "result_list")))
    assert csp_violations(browser) == []

    # Swagger UI renders the schema (its own script comes from a URL, not inline).
    browser.get(live_server.url + reverse("api-docs"))
    wait.until(shows.presence_of_element_located((By.CSS_SELECTOR, ".swagger-ui .opblock")))
    assert "Intent Distiller API" in browser.find_element(By.CSS_SELECTOR, ".swagger-ui .info").text
    assert csp_violations(browser) == []
