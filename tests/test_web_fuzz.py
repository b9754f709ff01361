"""Property-based fuzzing of the OpenAPI document (schemathesis): no input gives a 500,
and every answer matches the schema the API publishes.

Valid and invalid inputs are generated for every operation, the token-protected
writing ones included; Hypothesis is derandomised, so a run is repeatable.
"""
from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance, response_schema_conformance  # noqa: E402

from catalog.settings import Settings  # noqa: E402
from catalog.web import create_app  # noqa: E402
from tests.web_catalogue import web_catalogue_fixture  # noqa: E402, F401  (the web_catalogue fixture)

pytestmark = pytest.mark.slow  # the quick lane: pytest -m "not slow"

TOKEN = "fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def fuzz(schema, mode: GenerationMode, examples: int, headers: dict | None = None) -> int:
    """Run ``examples`` generated requests; returns how many answered (for a sanity check).

    Every schemathesis check runs (server errors, undocumented status codes, content types and
    headers, response schemas, negative data accepted…) except "schema-valid request rejected":
    a search's ``bbox`` is free text to the schema but four numbers to the server."""
    checks = [not_a_server_error] + ([response_schema_conformance] if mode.is_positive else [])
    seen = []

    @given(case=schema.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        response = case.call_and_validate(headers=headers, additional_checks=checks,
                                          excluded_checks=[positive_data_acceptance])
        seen.append(response.status_code)

    run()
    return len(seen)


@pytest.fixture(scope="module")
def app(web_catalogue, engine):
    return create_app(engine, Settings(web_token=TOKEN))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_reading_api_never_fails(app, mode):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(method="GET")
    assert fuzz(schema, mode, 200) > 100


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_writing_api_never_fails(app, mode):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(method="GET")
    assert fuzz(schema, mode, 60, headers=AUTH) > 20
