import pytest

from bot.generation.types import (
    Generation,
    GenerationRequest,
    Passage,
    parse_citations,
    strip_citations,
    trim_deltas,
)
from tests.generation.helpers import passage


def test_parse_citations_in_order_of_first_appearance() -> None:
    text = "A [2]. B [1][2]. C [3, 1]. D [2-4]. E [9]. F [0]."
    assert parse_citations(text, 4) == (2, 1, 3, 4)
    assert parse_citations(text, 2) == (2, 1)
    assert parse_citations("no markers", 5) == ()


def test_parse_citations_ignores_absurd_ranges() -> None:
    assert parse_citations("[1-999999]", 3) == (1,)


def test_strip_citations() -> None:
    assert strip_citations("Rate is 5% [1]. Fee is $5 [2, 3].") == "Rate is 5%. Fee is $5."


@pytest.mark.parametrize(
    ("deltas", "expected"),
    [
        (["  ", "\nHello", " world", " ", "\n"], ["Hello", " world"]),
        (["Hello ", " ", "there  "], ["Hello", "  there"]),
        (["", " "], []),
        (["a", "b"], ["a", "b"]),
    ],
)
def test_trim_deltas_matches_strip(deltas: list[str], expected: list[str]) -> None:
    out = list(trim_deltas(deltas))
    assert out == expected
    assert "".join(out) == "".join(deltas).strip()


def test_request_rejects_duplicate_numbers_and_knows_the_highest() -> None:
    with pytest.raises(ValueError, match="unique"):
        GenerationRequest("q", [passage(1, "a"), passage(1, "b")])
    assert GenerationRequest("q", [passage(1, "a"), passage(3, "b")]).max_citation == 3
    assert GenerationRequest("q", []).max_citation == 0


def test_passage_numbers_are_one_based_and_heading_joins_sections() -> None:
    with pytest.raises(ValueError, match="1-based"):
        passage(0, "x")
    p = Passage(1, "d", 1, 7, "Loans", ("Loans", "Fees"), "t", 0.5)
    assert p.heading == "Loans \u203a Fees"


def test_generation_abstained() -> None:
    assert Generation("", (), "x", "1").abstained
    assert not Generation("Yes [1].", (1,), "x", "1").abstained
