"""The OpenAPI schema, the Swagger UI, and the API checked against its own schema (schemathesis)."""

from __future__ import annotations

import re

import pytest
import schemathesis
import yaml
from django.contrib.staticfiles import finders
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import CHECKS as CHECK_REGISTRY
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tests import factories

pytestmark = pytest.mark.django_db

EXAMPLE = "91350100M000100Y43"
ALL_CHECKS = CHECK_REGISTRY.get_all()  # with the OpenAPI checks registered by the import above
READ_PATHS = [
    "/api/v1/traders/{uscc}",
    "/api/v1/traders/",
    "/api/v1/traders/lookup",
    "/api/v1/changes/",
    "/api/v1/ledger/public-key",
    "/api/v1/ledger/checkpoints/latest",
]


def test_the_schema_documents_the_read_endpoints_and_the_key_scheme(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    for path in READ_PATHS:
        assert path in schema["paths"]
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": schema["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    detail = schema["paths"]["/api/v1/traders/{uscc}"]["get"]
    assert {"200", "304", "400", "401", "403", "404", "429"} <= set(detail["responses"])
    assert detail["security"] == [{"ApiKey": []}]


def test_the_swagger_ui_is_served_from_local_static_files(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/api/schema/" in page
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page)
    assert assets, page
    for url in assets:
        assert url.startswith("/static/"), url
        assert finders.find(url.removeprefix("/static/")), f"{url} is not a static file of the project"
    assert not re.search(r"cdn\.|unpkg|jsdelivr|https?://", page)


@pytest.fixture
def wsgi_app():
    """The project's WSGI app, minus the end-of-request connection close (as Django's test
    client does), so requests run inside the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _conformance(operation, mode, headers: dict, excluded: list):
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=15,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def conforms(case):
        case.call_and_validate(headers=headers, checks=ALL_CHECKS, excluded_checks=excluded)

    return conforms


# Where a schema-valid request can still break a rule OpenAPI cannot state, and gets a 400
# naming it, schemathesis's "valid data is accepted" is not held (every other check is):
# across two parameters (a consistency proof's new >= old, an inclusion proof's size >= seq),
# a code's check character (traders/{uscc}, shops' trader_uscc), the register's data (a
# report's violation type from the catalogue, its date against today and the five-year
# bound; an acknowledgement's time against the measure's notice).
CROSS_FIELD = {
    "/api/v1/ledger/proofs/consistency",
    "/api/v1/ledger/proofs/inclusion",
    "/api/v1/traders/{uscc}",
    "/api/v1/shops/",
    "/api/v1/reports/",
    "/api/v1/restrictions/{id}/ack",
    "/api/v1/ledger/cosignatures/",  # the checkpoint it cosigns must exist
}
# The cosignature endpoint refuses a body over 2 KB with 413 before parsing it; a large
# schema-violating body gets that 413, which "invalid data is rejected" does not list.
BODY_BOUND = {"/api/v1/ledger/cosignatures/"}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_answers_as_its_schema_says(platform_client, wsgi_app, mode):
    """Every schemathesis check, schema-valid and schema-violating requests alike, at most 15
    generated requests per operation: no 5xx, every answer as documented, every invalid
    request refused and every valid one accepted."""
    trader = factories.TraderFactory(uscc=EXAMPLE)
    factories.ShopFactory(trader=trader, platform=platform_client.platform, platform_shop_id="s-1")
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app)
    headers = {"Authorization": f"Api-Key {platform_client.raw_key}"}

    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= set(READ_PATHS)
    failures = []
    for operation in operations:
        excluded = [positive_data_acceptance] if operation.path in CROSS_FIELD else []
        if operation.path in BODY_BOUND:
            excluded.append(negative_data_rejection)
        conforms = _conformance(operation, mode, headers, excluded)
        try:
            conforms()
        except Unsatisfiable:
            # Schema-violating requests: an operation without parameters, body or required
            # key has nothing to violate.
            assert mode == GenerationMode.NEGATIVE, operation.path
        except (Exception, BaseExceptionGroup) as exc:  # every operation's failures, not the first only
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
