"""Shared fixtures: personas for permission tests and small factories for data."""

import importlib
import itertools
import shutil
import tempfile

import pytest
from django.contrib.auth.models import Group, User

from datasets.models import Question, Topic
from datasets.services import intent_create

create_roles = importlib.import_module("labeling.migrations.0001_roles").create_roles
create_providers = importlib.import_module("distiller.migrations.0002_default_providers").create_providers

_counter = itertools.count(1)
DB_FIXTURES = {"db", "transactional_db", "live_server", "django_db_reset_sequences", "django_db_serialized_rollback"}


def _restore_migration_rows():
    """Put back what data migrations made: roles and default providers."""
    from django.apps import apps

    from distiller.models import LLMProvider

    if Group.objects.filter(name__in=["reviewer", "dataset admin"]).count() < 2:
        create_roles(apps, None)
    if not LLMProvider.objects.exists():
        create_providers(apps, None)


@pytest.fixture(autouse=True)
def _migration_rows(request):
    """Transactional tests end with a flush that also drops the rows data migrations made; restore them.

    Mark transactional tests `django_db(transaction=True, serialized_rollback=True)`: a plain
    transactional test's flush re-creates content types, which the next serialized test then
    inserts again (duplicate key).
    """
    if not (DB_FIXTURES & set(request.fixturenames) or request.node.get_closest_marker("django_db")):
        return
    request.getfixturevalue("db")
    _restore_migration_rows()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Personas get real passwords; the default hasher's deliberate slowness (about 2 s a user on a
    # loaded machine) would dominate the permission tests. Subprocesses keep the real hasher.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _user(username, *, groups=(), staff=True, superuser=False):
    user = User.objects.create_user(username=username, password="pw-" + username, is_staff=staff,
                                    is_superuser=superuser)
    for name in groups:
        user.groups.add(Group.objects.get(name=name))
    return user


@pytest.fixture
def superuser(db):
    return _user("root", superuser=True)


@pytest.fixture
def dataset_admin(db):
    return _user("dora", groups=["dataset admin"])


@pytest.fixture
def reviewer(db, topic):
    user = _user("rita", groups=["reviewer"])
    topic.reviewers.add(user)
    return user


@pytest.fixture
def other_reviewer(db):
    """A reviewer who is not assigned to `topic`."""
    return _user("otto", groups=["reviewer"])


@pytest.fixture
def topic(db):
    return Topic.objects.create(name="Customer Support")


@pytest.fixture
def make_topic(db):
    def make(name=None, **fields):
        return Topic.objects.create(name=name or f"Topic {next(_counter)}", **fields)

    return make


@pytest.fixture
def make_intent(db):
    def make(topic, name=None, parent=None, description=""):
        return intent_create(topic=topic, parent=parent, name=name or f"Intent {next(_counter)}",
                             description=description)

    return make


@pytest.fixture
def make_question(db):
    def make(intent, text=None, **fields):
        return Question.objects.create(topic=intent.topic, intent=intent,
                                       text=text or f"Question number {next(_counter)}?", **fields)

    return make


@pytest.fixture
def browser(settings):
    """Debian's headless Chromium through chromedriver, no background networking, a fresh profile;
    its console log is kept (the CSP test reads violations from it). Skips without Chromium."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("needs Debian's chromium and chromium-driver (make browser)")
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 "--disable-dev-shm-usage", "--window-size=1280,900", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)
