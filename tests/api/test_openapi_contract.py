"""The API keeps the promises of its own OpenAPI document (Schemathesis, property-based):
for every operation, requests generated from the schema, valid and deliberately invalid,
on the demo bank (real model, index, SQLite and PostgreSQL) never get a 5xx, get only
documented status codes and content types, get bodies that match their schemas, and are
refused when the schema forbids them.

Derandomized, so every run sends the same requests: a failure here is a regression to
reproduce, not bad luck. (Schemathesis's own pytest plugin does not run on this pytest,
so the operations are looped over here with Hypothesis directly.)
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from bot.app import create_app
from bot.runtime import Runtime
from db import api_keys
from tests.demo import demo_runtime

ACTIONS_TOKEN = "contract-actions-token"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES = 12
"""Requests per operation and mode (about 600 per database)."""


@pytest.fixture
def runtime(make_settings: Any, database_url: str) -> Iterator[Runtime]:
    with demo_runtime(make_settings(database_url=database_url, actions_token=ACTIONS_TOKEN)) as rt:
        yield rt


def _credentials(runtime: Runtime) -> dict[str, str]:
    """Real credentials, sent with every request: generated ones only reach the 401."""
    with runtime.sessions.begin() as session:
        _, secret = api_keys.create_api_key(
            session, name="contract", scopes=["agent", "export", "admin"]
        )
    return {
        "authorization": f"Bearer {secret}",
        "x-api-key": secret,
        "x-teller-actions-token": ACTIONS_TOKEN,
    }


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_keeps_its_contract(runtime: Runtime, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", create_app(runtime.settings, runtime=runtime)
    )
    credentials = _credentials(runtime)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25, [operation.label for operation in operations]

    statuses: collections.Counter[int] = collections.Counter()
    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: schemathesis.Case) -> None:
            statuses[case.call_and_validate(headers=credentials, checks=CHECKS).status_code] += 1

        try:
            check()
        except Unsatisfiable:
            # No request breaks a schema without parameters or body (`GET /healthz`).
            assert mode is GenerationMode.NEGATIVE, operation.label

    # The requests reached the endpoints, not only the validation in front of them.
    assert statuses[200] >= (100 if mode is GenerationMode.POSITIVE else 1), statuses
