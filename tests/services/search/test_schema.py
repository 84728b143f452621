"""The OpenAPI schema says what the code enforces: schemathesis generates requests from it against the real
app, valid ones and invalid ones, and checks every response (no 5xx; invalid input refused with a 4xx;
status codes, headers and bodies as documented).

One check is left out: "schema-valid data is accepted". A query must keep a searchable character after
Unicode normalization (``"\u0083"`` is valid JSON Schema for a non-blank string, and has none); JSON
Schema's regex dialect cannot say that, so the API answers such a query with a documented 422 naming
``query``, which that check counts as a failure."""

from __future__ import annotations

import itertools

import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance


def test_every_operation_answers_as_its_schema_says(client):
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{operation.method.upper()} {operation.path}" for operation in operations} >= {
        "POST /search", "POST /feedback", "POST /entities", "DELETE /entities/{entity_id}", "GET /healthz"
    }
    for operation, mode in itertools.product(operations, GenerationMode):
        if mode is GenerationMode.NEGATIVE and operation.method.upper() != "POST":
            continue  # only a JSON body can be made invalid (any string is a valid path id)

        @given(case=operation.as_strategy(mode))
        @hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        def answers_as_documented(case):
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        answers_as_documented()
