"""Property-based tests of the HTTP API from its own OpenAPI document (schemathesis).

The server runs on a real loopback socket; schemathesis reads ``/openapi.json`` and, for every
operation, generates bodies that follow the schema (positive) and bodies that break it
(negative), sends them with a valid API key and checks each response: never a 5xx, a status
code the document lists, its content type, its body against the documented schema, its
documented headers, and a 4xx for every body the schema forbids.

Not checked: that every body the schema allows is answered with 2xx
(``positive_data_acceptance``): the app refuses some with a documented 422 that JSON Schema
cannot express (the *last* user message of a chat completion must hold text).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from sqlagent.agent import SQLAgent
from sqlagent.demo import DemoPaths
from sqlagent.llm import MockLLM
from sqlagent.serve import create_app, serve_in_thread
from tests.serve.conftest import RecordingSink, auth, config_for, settings_for

if importlib.util.find_spec("schemathesis") is None:  # found, not imported: collection stays fast
    pytest.skip("schemathesis is not installed", allow_module_level=True)

pytestmark = pytest.mark.slow

SQL = "SELECT name FROM departments ORDER BY name"
EXAMPLES = 60  # per operation and mode


def _checks() -> list[Any]:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        negative_data_rejection,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    return [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        response_headers_conformance,
        negative_data_rejection,
    ]


@pytest.fixture(scope="module")
def base_url(demo: DemoPaths) -> Iterator[str]:
    agent = SQLAgent(config_for(demo), llm=MockLLM(function=lambda _m: SQL), audit=RecordingSink())
    served = settings_for(limits={"rate_per_minute": 0, "max_queue": 1000})
    with serve_in_thread(create_app(agent, served)) as url:
        yield url


@pytest.fixture(scope="module")
def schema(base_url: str) -> Any:
    import schemathesis

    return schemathesis.openapi.from_url(f"{base_url}/openapi.json")


CASES = [
    ("POST /v1/chat", "positive"),
    ("POST /v1/chat", "negative"),
    ("POST /v1/chat/completions", "positive"),
    ("POST /v1/chat/completions", "negative"),
    ("GET /health", "positive"),  # no body or parameters: nothing to break
    ("GET /ready", "positive"),
]


@pytest.mark.parametrize(("label", "mode"), CASES)
def test_generated_requests_get_documented_answers(
    schema: Any, base_url: str, label: str, mode: str
) -> None:
    from schemathesis import GenerationMode

    [operation] = [
        result.ok() for result in schema.get_all_operations() if result.ok().label == label
    ]
    generation = GenerationMode.POSITIVE if mode == "positive" else GenerationMode.NEGATIVE
    checks = _checks()

    @given(case=operation.as_strategy(generation_mode=generation))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(base_url=base_url, headers=auth("key-admin"), checks=checks)

    check()


def test_the_document_lists_every_endpoint_and_both_credentials(schema: Any) -> None:
    raw = schema.raw_schema
    assert {"/v1/chat", "/v1/chat/completions", "/health", "/ready", "/metrics"} <= set(
        raw["paths"]
    )
    schemes = raw["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http", "apiKey"}
    chat = raw["paths"]["/v1/chat"]["post"]
    assert {"200", "401", "413", "422", "429", "503", "504"} <= set(chat["responses"])
