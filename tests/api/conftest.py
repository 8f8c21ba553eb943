"""The demo bank behind the HTTP API (real model, index and SQLite or PostgreSQL), for
the test modules that do not build their own app."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.runtime import Runtime
from tests.demo import demo_runtime


@pytest.fixture
def runtime(make_settings: Any, database_url: str) -> Iterator[Runtime]:
    with demo_runtime(make_settings(database_url=database_url)) as rt:
        yield rt


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime.settings, runtime=runtime)) as test_client:
        yield test_client
