"""A real runtime with the demo bank loaded the way `teller demo load` loads it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bot.demo_bank import load_demo_bank
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from db.audit import Actor


@contextmanager
def demo_runtime(settings: Settings) -> Iterator[Runtime]:
    """Build a runtime for `settings`, load the demo bank into it, close it afterwards."""
    runtime = build_runtime(settings)
    try:
        loaded = load_demo_bank(runtime.knowledge, runtime.sessions, Actor.cli())
        assert all(o.status == "created" for o in loaded.documents), loaded.documents
        assert loaded.rate_rows, "the demo rate sheet loaded no rows"
        yield runtime
    finally:
        runtime.close()
