"""A real runtime with the demo knowledge base and rate sheet, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.answers.pipeline import AnswerPipeline
from bot.generation.extractive import ExtractiveComposer
from bot.generation.types import Generator
from bot.rates import load_rate_sheet
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings

DEMO = Path(__file__).resolve().parents[2] / "bot" / "demo"
TODAY = dt.date(2026, 11, 23)


@pytest.fixture
def runtime(make_settings: Callable[..., Settings], database_url: str) -> Iterator[Runtime]:
    rt = build_runtime(make_settings(database_url=database_url))
    files = sorted(p for p in (DEMO / "knowledge").iterdir() if p.is_file())
    outcomes = rt.knowledge.ingest_files((p.name, p.read_bytes(), None) for p in files)
    assert all(o.status == "created" for o in outcomes), outcomes
    with rt.sessions.begin() as session:
        load_rate_sheet(session, filename="rates.csv", data=(DEMO / "rates.csv").read_bytes())
    try:
        yield rt
    finally:
        rt.close()


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
