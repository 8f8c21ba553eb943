from decimal import Decimal

import pytest

from bot.generation.grounding import Figure, check_grounding, extract_figures

MORTGAGE = (
    "Our 7/6 ARM has a fixed rate for the first seven years, with caps of 5% on the first "
    "adjustment. The 30-year fixed rate is 6.125% (APR 6.241%) as of November 1, 2026. "
    "You will need two years of W-2s. A preapproval is valid for 90 days. Closing usually "
    "takes 30 to 45 days. The origination fee is $1,000. Call 1-800-555-0142 from 8 a.m. "
    "to 8 p.m. Terms of 6, 12, 24 and 60 months are available."
)


def kinds_and_values(text: str) -> list[tuple[str, str, str | None]]:
    return [(f.kind, str(f.value), f.unit) for f in extract_figures(text)]


@pytest.mark.parametrize(
    ("text", "kind", "value", "unit"),
    [
        ("6.125%", "percent", "6.125", None),
        ("6.125 %", "percent", "6.125", None),
        ("6.1250 percent", "percent", "6.125", None),
        ("0.25 percentage points", "percent", "0.25", None),
        ("five percent", "percent", "5", None),
        ("$1,000", "money", "1000", "USD"),
        ("$1,000.00", "money", "1000", "USD"),
        ("USD 45", "money", "45", "USD"),
        ("45 USD", "money", "45", "USD"),
        ("€20", "money", "20", "EUR"),
        ("£7.50", "money", "7.5", "GBP"),
        ("C$300", "money", "300", "CAD"),
        ("20 dollars", "money", "20", "USD"),
        ("50 cents", "money", "0.5", "USD"),
        ("$2.5 million", "money", "2500000", "USD"),
        ("$5k", "money", "5000", "USD"),
        ("1,000.00", "number", "1000", None),
        ("1.5 million", "number", "1500000", None),
        ("4th", "number", "4", None),
        ("30-year", "number", "30", "year"),
        ("12 months", "number", "12", "month"),
        ("12-month", "number", "12", "month"),
        ("3 business days", "number", "3", "day"),
        ("thirty days", "number", "30", "day"),
        ("twenty-five years", "number", "25", "year"),
        ("2026-11-01", "date", "2026-11-01", None),
        ("11/01/2026", "date", "2026-11-01", None),
        ("November 1, 2026", "date", "2026-11-01", None),
        ("Nov. 1st, 2026", "date", "2026-11-01", None),
        ("1 November 2026", "date", "2026-11-01", None),
        ("November 2026", "date", "2026-11", None),
        ("November 1", "date", "--11-01", None),
        ("3 p.m.", "time", "15:00", None),
        ("3:30 PM", "time", "15:30", None),
        ("12 a.m.", "time", "00:00", None),
        ("15:00", "time", "15:00", None),
        ("9:30", "time", "09:30", "12h"),
        ("1-800-555-0142", "phone", "8005550142", None),
        ("(800) 555-0142", "phone", "8005550142", None),
        ("+1 800.555.0142", "phone", "8005550142", None),
        ("W-2", "code", "w-2", None),
        ("W-2s", "code", "w-2", None),
        ("7/6", "code", "7/6", None),
        ("1099-INT", "code", "1099-int", None),
        ("401(k)", "code", "401(k)", None),
        ("24/7", "code", "24/7", None),
    ],
)
def test_extracts_one_figure_with_its_canonical_value(
    text: str, kind: str, value: str, unit: str | None
) -> None:
    figures = extract_figures(f"It is {text} here.")
    assert [(f.kind, str(f.value), f.unit) for f in figures] == [(kind, value, unit)]
    assert figures[0].raw == text


def test_figures_carry_their_position() -> None:
    text = "Pay $25 by 2026-11-01."
    figures = extract_figures(text)
    assert [text[f.start : f.end] for f in figures] == ["$25", "2026-11-01"]
    assert figures[0] == Figure("$25", "money", Decimal(25), "USD", 4, 7)


def test_equal_values_in_different_notation_are_equal() -> None:
    a, b = extract_figures("6.1250% and 6.125 %")
    assert a.value == b.value == Decimal("6.125")
    c, d = extract_figures("$1,000 and 1000")
    assert c.value == d.value


@pytest.mark.parametrize(
    "text",
    [
        "See [1].",
        "As stated [2, 3] and [4-5].",
        "1. Bring a photo ID\n2) Bring a pay stub",
        "A fixed-rate mortgage keeps the same rate. Often days pass.",
        "Visit https://bank.example/rates or write to help@bank.example.",
    ],
)
def test_ignores_citations_enumerators_and_words(text: str) -> None:
    assert extract_figures(text) == []


def test_urls_with_digits_are_codes() -> None:
    assert kinds_and_values("See https://bank.example/rates2026.") == [
        ("code", "https://bank.example/rates2026", None)
    ]


def test_units_travel_across_ranges_and_lists() -> None:
    assert kinds_and_values("4.5-5%") == [("percent", "4.5", None), ("percent", "5", None)]
    assert kinds_and_values("30 to 45 days") == [
        ("number", "30", "day"),
        ("number", "45", "day"),
    ]
    assert kinds_and_values("$500-1,000") == [("money", "500", "USD"), ("money", "1000", "USD")]
    assert kinds_and_values("50 or 75 cents") == [("money", "0.5", "USD"), ("money", "0.75", "USD")]
    # A currency written before its number belongs to that number only.
    assert kinds_and_values("1,000 and USD 45") == [
        ("number", "1000", None),
        ("money", "45", "USD"),
    ]


def test_invalid_dates_become_literal_codes() -> None:
    assert kinds_and_values("February 30, 2026") == [("code", "february 30, 2026", None)]


def test_sign_is_not_part_of_the_figure() -> None:
    assert kinds_and_values("a change of -0.25%") == [("percent", "0.25", None)]


@pytest.mark.parametrize(
    "answer",
    [
        "The 30-year fixed rate is 6.125% [1].",
        "It is 6.1250 percent with an APR of 6.241 %.",
        "The 7/6 ARM caps the first adjustment at five percent.",
        "Bring two years of W-2 forms.",
        "Preapproval lasts 90 days; closing takes 30 to 45 business days.",
        "The fee is $1,000.00, or 1000 dollars.",
        "Rates are as of Nov. 1, 2026 (2026-11-01, November 2026, in 2026).",
        "Call 1 (800) 555-0142 between 8 a.m. and 8 p.m.",
        "Extension 555 answers calls.",
        "A 12-month term is available.",
        "There is nothing numeric here.",
    ],
)
def test_supported_answers_pass(answer: str) -> None:
    report = check_grounding(answer, ["Unrelated text.", MORTGAGE])
    assert report.unsupported == []
    assert report.ok


@pytest.mark.parametrize(
    ("answer", "unsupported"),
    [
        ("The 30-year fixed rate is 6.25%.", ["6.25%"]),
        ("The cap is 6125 basis points.", ["6125 basis points"]),
        ("The first adjustment cap is 5.", []),  # a bare number: the value is in a source
        ("The fee is 1,000%.", ["1,000%"]),  # a percentage needs a percentage
        ("The fee is €1,000.", ["€1,000"]),  # same amount, other currency
        ("The cap is $5.", ["$5"]),  # money needs money: the source says 5%
        ("Preapproval lasts 90 months.", ["90 months"]),
        ("Rates are as of November 2, 2026.", ["November 2, 2026"]),
        ("Rates are as of 2027.", ["2027"]),
        ("Call 1-800-555-0199.", ["1-800-555-0199"]),
        ("Call after 9 p.m.", ["9 p.m."]),
        ("Bring your 1099-INT.", ["1099-INT"]),
        ("The 5/1 ARM is popular.", ["5/1"]),
        ("Costs $1,000 plus $250 [1].", ["$250"]),
    ],
)
def test_unsupported_figures_are_reported(answer: str, unsupported: list[str]) -> None:
    report = check_grounding(answer, [MORTGAGE])
    assert report.unsupported == unsupported
    assert report.ok is (not unsupported)


def test_a_number_is_not_supported_by_a_different_unit_or_a_longer_number() -> None:
    assert not check_grounding("It takes 12 years.", ["It takes 12 months."]).ok
    assert not check_grounding("Pay 5 today.", ["Pay 2.5 or 15 or 50 today."]).ok
    assert check_grounding("Pay 5 today.", ["A $5 fee."]).ok


def test_dates_may_omit_parts_but_not_add_them() -> None:
    assert check_grounding("Due November 1.", ["Due 2026-11-01."]).ok
    assert not check_grounding("Due November 1, 2026.", ["Due November 1."]).ok


def test_times_without_meridiem_match_either_half_day() -> None:
    assert check_grounding("Open until 8:00.", ["Open until 8 p.m."]).ok
    assert not check_grounding("Open until 9:00.", ["Open until 8 p.m."]).ok


def test_codes_match_inside_longer_tokens_but_not_inside_numbers() -> None:
    assert check_grounding("Embedded with L6.", ["The MiniLM-L6-v2 model."]).ok
    assert not check_grounding("The 7/6 ARM.", ["The 17/6 ARM."]).ok


def test_report_lists_every_figure_and_needs_no_sources_without_figures() -> None:
    report = check_grounding("Rates: 5% [1] and 6% [2].", [])
    assert [f.raw for f in report.figures] == ["5%", "6%"]
    assert report.unsupported == ["5%", "6%"]
    assert check_grounding("No figures [1].", []).ok


# fmt: off
TOKENS = [
    "1", "12", "2026", "0142", "-", "/", ".", ",", ":", "$", "€", "%", "\n", "May", "Nov.",
    "November", "1st", "p.m.", "am", "PM", "USD", "dollars", "cents", "thirty", "twenty-five",
    "percent", "days", "business", "year", "months", "W-2", "(", ")", "[1]", "[2, 3]", "k",
    "M", "million", "https://x.example/1", "a@b2.example", "+1", "800", "555", "of", "to",
    "and", "Q3", "401(k)", "7/6", "¢", "£", "C$", "bps", "12:30", "2026-13-45", "11/31/2026",
    "Feb", "30", "sixty-nine", "", " ",
]
# fmt: on


def test_any_text_supports_itself_and_odd_input_never_raises() -> None:
    import random

    rng = random.Random(7)
    for _ in range(500):
        text = "".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 20)))
        figures = extract_figures(text)
        assert all(0 <= f.start < f.end <= len(text) for f in figures), text
        assert check_grounding(text, [text]).ok, text
    assert extract_figures("Nov.[1]0142")  # a citation inside a date is masked, not fatal
    assert extract_figures("1" * 5000)[0].kind == "number"  # beyond Decimal precision
