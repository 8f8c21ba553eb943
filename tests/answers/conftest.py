"""A real runtime with the demo knowledge base and rate sheet, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest

from bot.answers.pipeline import AnswerPipeline
from bot.generation.extractive import ExtractiveComposer
from bot.generation.types import Generator
from bot.runtime import Runtime
from bot.settings import Settings
from tests.demo import demo_runtime

TODAY = dt.date(2026, 11, 23)


@pytest.fixture
def runtime(make_settings: Callable[..., Settings], database_url: str) -> Iterator[Runtime]:
    with demo_runtime(make_settings(database_url=database_url)) as rt:
        yield rt


@pytest.fixture
def make_pipeline(runtime: Runtime) -> Callable[..., AnswerPipeline]:
    """The production pipeline on the demo data, with today pinned to 2026-11-23."""

    def build(generator: Generator | None = None, **kw: object) -> AnswerPipeline:
        fallback = ExtractiveComposer(runtime.embedder)
        return AnswerPipeline(
            sessions=runtime.sessions,
            knowledge=runtime.knowledge,
            generator=generator or fallback,
            fallback=fallback,
            today=lambda: TODAY,
            **kw,  # type: ignore[arg-type]
        )

    return build


@pytest.fixture
def pipeline(make_pipeline: Callable[..., AnswerPipeline]) -> AnswerPipeline:
    return make_pipeline()
