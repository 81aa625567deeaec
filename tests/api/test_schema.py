"""The OpenAPI schema is valid, its docs work offline and need a login, and a schema-driven fuzz
run finds no 500.

The suite's fuzz run is derandomized so CI is repeatable; `make fuzz` runs it with fresh
random examples, many more of them (API_FUZZ_EXAMPLES).
"""

import json
import os

import pytest
import schemathesis
from django.core import signals
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token

from datasets.models import Question
from tests.api.clients import api_as


def test_the_schema_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    schema = (tmp_path / "schema.yml").read_text()
    for path in ["/api/v1/topics/", "/api/v1/topics/{topic_id}/intents/", "/api/v1/questions/",
                 "/api/v1/questions/bulk/", "/api/v1/exports/", "/api/v1/exports/{id}/download/",
                 "/api/v1/imports/", "/api/v1/labeling/export"]:
        assert f"  {path}:" in schema, path
    assert "bearerAuth" in schema and "tokenAuth" in schema


def test_the_interactive_docs_load_their_assets_from_this_server(client, reviewer):
    client.force_login(reviewer)
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn." not in page and "unpkg" not in page


def test_an_anonymous_browser_is_sent_from_the_docs_to_the_login_page(client, db):
    response = client.get("/api/docs/")
    assert (response.status_code, response["Location"]) == (302, "/accounts/login/?next=/api/docs/")


def test_the_schema_needs_a_token_or_a_session(client, reviewer):
    for anonymous in [api_as(None).get("/api/schema/"), client.get("/api/schema/?format=json")]:
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["code"] == "not_authenticated"
    bad_token = api_as(None)
    bad_token.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert bad_token.get("/api/schema/").status_code == 401
    by_token = api_as(reviewer).get("/api/schema/?format=json")
    assert by_token.status_code == 200 and "/api/v1/exports/" in by_token.json()["paths"]
    client.force_login(reviewer)
    by_session = client.get("/api/schema/?format=json")
    assert by_session.status_code == 200 and by_session.json()["paths"] == by_token.json()["paths"]


@pytest.fixture
def admin_headers(db, dataset_admin, make_topic, make_intent, make_question):
    """A dataset admin's token, and a little data so ids in paths can hit real rows."""
    topic = make_topic("Fuzzed")
    intent = make_intent(topic, "Orders")
    make_question(intent, "Where is my order", status=Question.Status.APPROVED)
    # Requests made through WSGI would close the test's connection (and its transaction) when
    # they finish; Django's test client unhooks this the same way.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield {"Authorization": f"Token {Token.objects.get_or_create(user=dataset_admin)[0].key}"}
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


# Loaded at collection (schemathesis' fixture-based lazy loader does not run under pytest 9).
# /api/schema/ needs a token, and a token needs the database, which collection cannot use: the
# schema is generated in-process, exactly as the view renders it, and the calls go through WSGI
# with the dataset admin's token.
schema = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(
    request=None, public=True))))
schema.app = get_wsgi_application()
schema.location = "/api/schema/"

# What the schema does not say a client may send, and what used to pass as something else or end
# in a 500: NUL bytes (PostgreSQL text refuses them), digits of other scripts ("١" and "²" pass
# str.isdigit()), booleans for numbers, fields the endpoint does not take. Each generated request
# goes as drawn or with one of these changes to one of its fields.
UNKNOWN_FIELD = "fuzz_unknown_field"
ODD_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def _hostile_values(value) -> list:
    if isinstance(value, bool):
        return [0, "true"]
    if isinstance(value, int | float):
        return [True, False, str(value).translate(ODD_DIGITS), "²"]
    if isinstance(value, str):
        return [value + "\x00", "\x00", value.translate(ODD_DIGITS), "²"]
    return ["\x00"]


def hostile_variants(value) -> st.SearchStrategy:
    """The value as drawn, or with one field changed to a hostile value, or with an unknown field."""
    if isinstance(value, list) and value:
        return hostile_variants(value[0]).map(lambda first: [first, *value[1:]])
    if not isinstance(value, dict):
        return st.just(value)
    changes = [st.just(value), st.just({**value, UNKNOWN_FIELD: "1"})]
    for key, item in value.items():
        if isinstance(item, dict | list):
            changes.append(hostile_variants(item).map(lambda new, key=key: {**value, key: new}))
        elif not hasattr(item, "read"):  # a file of a multipart body stays as drawn
            changes.append(st.sampled_from(_hostile_values(item)).map(lambda new, key=key: {**value, key: new}))
    return st.one_of(changes)


@schema.hook("flatmap_body")
def hostile_body(context, body):
    return hostile_variants(body)


@schema.hook("flatmap_query")
def hostile_query(context, query):
    return hostile_variants(query)


@schema.hook("flatmap_path_parameters")
def hostile_path_parameters(context, parameters):
    return hostile_variants(parameters)


@schema.parametrize()
@settings(max_examples=int(os.environ.get("API_FUZZ_EXAMPLES", 12)), derandomize="API_FUZZ_EXAMPLES" not in os.environ,
          deadline=None, phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_no_generated_request_makes_the_api_answer_500(case, admin_headers):
    response = case.call(headers=admin_headers)
    assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}: " \
                                       f"{response.text[:500]}"
