"""Schemathesis against the app's own OpenAPI spec: generated requests never get a 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from api import create_app

EXAMPLES_PER_OPERATION = 150


def test_generated_requests_never_get_a_server_error(api_library):
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(api_library))
    statuses: list[int] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
            suppress_health_check=list(HealthCheck),
        )  # fmt: skip
        def no_server_error(case):
            response = case.call()
            statuses.append(response.status_code)
            assert response.status_code < 500, (
                case.operation.label,
                response.status_code,
                response.text[:300],
            )

        no_server_error()
    assert len(statuses) >= 1000, len(statuses)
    assert any(s < 300 for s in statuses) and any(400 <= s < 500 for s in statuses)  # both paths exercised
