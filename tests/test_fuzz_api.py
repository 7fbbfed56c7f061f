"""Schemathesis against the app's own OpenAPI spec: generated requests never get a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api import create_app

CALLS: list[int] = []
EXAMPLES_PER_OPERATION = 100


@pytest.fixture(scope="module")
def api_schema(api_library):
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(api_library))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case):
    response = case.call()
    CALLS.append(response.status_code)
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])


def test_zz_the_fuzzer_sent_at_least_1000_requests():
    assert len(CALLS) >= 1000, len(CALLS)
