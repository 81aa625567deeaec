"""Labeling fixtures: a small taxonomy with questions, and API clients per persona."""

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


@pytest.fixture
def taxonomy(topic, make_intent):
    """Billing -> (Refunds, Invoices), Account -> Password reset."""
    billing = make_intent(topic, "Billing")
    account = make_intent(topic, "Account")
    return {
        "billing": billing,
        "refunds": make_intent(topic, "Refunds", parent=billing),
        "invoices": make_intent(topic, "Invoices", parent=billing),
        "account": account,
        "password": make_intent(topic, "Password reset", parent=account),
    }


@pytest.fixture
def api():
    """An API client logged in as whoever the test says: api(user) or api(None) for anonymous."""

    def make(user):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def capture_client(db):
    """The deployed model's service account, posting with a token."""
    user = User.objects.create_user(username="prod-bot", password="pw-prod-bot")
    user.groups.add(Group.objects.get(name="capture client"))
    return user


@pytest.fixture
def token_client():
    def make(user):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
        return client

    return make


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Personas get real passwords; the default hasher's deliberate slowness would dominate these tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def lead(db, topic):
    """`leo`, a reviewer who leads `topic`: second opinions and everyone's figures there."""
    user = User.objects.create_user(username="leo", password="pw-leo", is_staff=True)
    user.groups.add(Group.objects.get(name="reviewer"))
    topic.leads.add(user)
    return user
