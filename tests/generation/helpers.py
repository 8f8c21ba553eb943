"""Builders shared by the generation tests."""

from __future__ import annotations

from bot.generation.types import Passage


def passage(
    number: int,
    text: str,
    *,
    title: str = "Harbor home loans",
    key: int = 0,
    section: tuple[str, ...] = (),
) -> Passage:
    """A passage numbered `number` with the given text (ids derived from the number)."""
    return Passage(
        number=number,
        doc_id=f"doc-{number}",
        version=1,
        chunk_key=key or number,
        title=title,
        section_path=section,
        text=text,
        score=1.0 / max(number, 1),
    )
