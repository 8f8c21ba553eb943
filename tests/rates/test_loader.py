"""Rate sheet parsing and validation; loading is all or nothing on real databases."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.rates.errors import RateSheetError
from bot.rates.loader import load_rate_sheet, parse_rate_sheet, parse_term
from db.models import RateRow, RateSheet
from db.rates import current_rates, rate_history
from tests.rates.helpers import DEMO_SHEET, DEMO_TODAY

HEADER = (
    "product,term,tier,rate_percent,apr_percent,apy_percent,effective_from,effective_until,source"
)
GOOD = "30-Year Fixed  Mortgage,30-year,,6.125,6.291,,2026-11-01,,Harbor Bank rate sheet 2026-11"


def csv(*lines: str, header: str = HEADER) -> bytes:
    return "\n".join([header, *lines]).encode()


def rejected(data: bytes, name: str = "rates.csv") -> RateSheetError:
    with pytest.raises(RateSheetError) as raised:
        parse_rate_sheet(name, data)
    return raised.value


def test_parses_and_normalises_a_csv_row() -> None:
    (row,) = parse_rate_sheet("rates.csv", csv(GOOD))
    assert row.product == "30-year fixed mortgage"
    assert (row.term, row.term_months, row.tier) == ("30 years", 360, None)
    assert (row.rate_percent, row.apr_percent, row.apy_percent) == ("6.125", "6.291", None)
    assert (row.effective_from, row.effective_until) == (dt.date(2026, 11, 1), None)
    assert row.source == "Harbor Bank rate sheet 2026-11"


def test_numbers_are_kept_as_written() -> None:
    rows = parse_rate_sheet(
        "rates.csv",
        csv(
            "savings,,,0.50,, 0.50 % ,2026-01-15,,sheet",
            "cd,12 months,,4.10,,4.180%,2026-01-15,2026-12-31,sheet",
            'hy savings,,"$10,000 and above",4.16,,4.25,2026-01-15,,sheet',
        ),
    )
    assert [(r.rate_percent, r.apy_percent) for r in rows] == [
        ("0.50", "0.50"),
        ("4.10", "4.180"),
        ("4.16", "4.25"),
    ]
    assert rows[2].tier == "$10,000 and above"


@pytest.mark.parametrize(
    ("term", "normalised", "months"),
    [
        ("30 years", "30 years", 360),
        ("30 year", "30 years", 360),
        ("30-year", "30 years", 360),
        ("30-Yr", "30 years", 360),
        ("1 yr", "1 year", 12),
        ("12 months", "12 months", 12),
        ("12 mo", "12 months", 12),
        ("6mos", "6 months", 6),
        ("1 month", "1 month", 1),
        ("5y", "5 years", 60),
        ("10/1 draw", "10/1 draw", None),
        ("no  term", "no term", None),
        ("0 years", "0 years", None),
    ],
)
def test_terms(term: str, normalised: str, months: int | None) -> None:
    assert parse_term(term) == (normalised, months)


def test_json_list_and_rates_object() -> None:
    item = {
        "product": "Certificate of Deposit",
        "term": "12 months",
        "rate_percent": 3.90,
        "apy_percent": "3.97",
        "effective_from": "2026-10-15",
        "source": "sheet",
    }
    # A JSON number keeps its written form: 4.10 stays "4.10".
    raw = json.dumps([item]).replace("3.9,", "3.90,")
    (from_list,) = parse_rate_sheet("rates.json", raw.encode())
    (from_object,) = parse_rate_sheet("upload", json.dumps({"rates": [item]}).encode())
    assert from_list.rate_percent == "3.90"
    assert from_object.rate_percent == "3.9"
    assert (from_list.product, from_list.term_months, from_list.tier) == (
        "certificate of deposit",
        12,
        None,
    )


def test_the_demo_sheet_is_valid() -> None:
    rows = parse_rate_sheet(DEMO_SHEET.name, DEMO_SHEET.read_bytes())
    assert any(r.effective_until and r.effective_until < DEMO_TODAY for r in rows)
    assert any(r.effective_from > DEMO_TODAY for r in rows)
    assert {r.product for r in rows} >= {"30-year fixed mortgage", "certificate of deposit"}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("cd,,,abc,,,2026-01-01,,s", "row 1 (line 2): rate_percent 'abc' is not a decimal number"),
        ("cd,,,-1,,,2026-01-01,,s", "rate_percent '-1' is not a decimal number between 0 and 100"),
        ("cd,,,6.1%%,,,2026-01-01,,s", "rate_percent '6.1%%' is not a decimal number"),
        ("cd,,,101,,,2026-01-01,,s", "rate_percent '101' is not between 0 and 100"),
        ("cd,,,6,x,,2026-01-01,,s", "apr_percent 'x' is not a decimal number"),
        ("cd,,,6,,1e2,2026-01-01,,s", "apy_percent '1e2' is not a decimal number"),
        ("cd,,,,,,2026-01-01,,s", "rate_percent is empty"),
        (",,,6,,,2026-01-01,,s", "product is empty"),
        ("cd,,,6,,,2026-01-01,,", "source is empty"),
        ("cd,,,6,,,01/11/2026,,s", "effective_from '01/11/2026' is not a date in YYYY-MM-DD"),
        ("cd,,,6,,,2026-02-30,,s", "effective_from '2026-02-30' is not a date"),
        ("cd,,,6,,,,,s", "effective_from is empty"),
        ("cd,,,6,,,2026-05-01,2026-04-30,s", "effective_until 2026-04-30 is before"),
        ("cd,,,6,,,2026-05-01,,s,extra", "10 values for 9 columns"),
    ],
)
def test_bad_rows_name_the_row_and_the_problem(line: str, expected: str) -> None:
    error = rejected(csv(line))
    assert expected in str(error)
    assert str(error).startswith("rates.csv: row 1 (line 2): ")
    assert "nothing was loaded" in str(error)
    assert error.errors[0].row == 1 and error.errors[0].line == 2


def test_every_problem_is_collected_with_row_and_line() -> None:
    error = rejected(
        csv(
            GOOD,
            "",  # blank lines are skipped but still counted as file lines
            "cd,,,abc,,,2026-01-01,,s",
            'cd,"multi\nline tier",,7,,,2026-13-01,,s',
            "cd,,,8,,,2026-01-01,,s",
        )
    )
    assert [(p.row, p.line, p.column) for p in error.errors] == [
        (2, 4, "rate_percent"),
        (3, 6, "effective_from"),
    ]
    assert error.error_count == 2
    assert "(and 1 more problem)" in str(error)
    assert error.errors[0].to_dict() == {
        "row": 2,
        "line": 4,
        "column": "rate_percent",
        "message": "rate_percent 'abc' is not a decimal number between 0 and 100",
    }


def test_at_most_20_errors_are_kept_but_all_are_counted() -> None:
    error = rejected(csv(*[f"cd,{n} months,,bad,,,2026-01-01,,s" for n in range(1, 31)]))
    assert len(error.errors) == 20
    assert error.error_count == 30
    assert "(and 29 more problems)" in str(error)


def test_duplicates_within_a_file_are_rejected() -> None:
    error = rejected(
        csv(
            "cd,12 months,,4.1,,,2026-01-01,,s",
            "cd,6 months,,4.0,,,2026-01-01,,s",
            "CD,12-month,,4.2,,,2026-01-01,,s",
        )
    )
    assert str(error.errors[0]) == (
        "row 3 (line 4): duplicate of row 1: same product, term, tier and effective_from"
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "the sheet has no rate rows"),
        (HEADER.encode(), "the sheet has no rate rows"),
        (HEADER.encode() + b"\n,,,,,,,,\n", "the sheet has no rate rows"),
        (b"product,term,rate\ncd,1,2", "missing required columns rate_percent, effective_from"),
        (csv(GOOD, header=HEADER + ",notes"), "unknown column 'notes'"),
        (b"\xff\xfe\x00", "not UTF-8"),
    ],
)
def test_bad_files(data: bytes, expected: str) -> None:
    error = rejected(data)
    assert expected in str(error)
    # A missing header names the columns that are expected.
    if "missing" in expected:
        assert "source" in str(error) and error.errors[0].row is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"[1, 2", "not valid JSON (line 1)"),
        (b'{"rows": []}', 'expected a JSON list of rate objects or {"rates": [...]}'),
        (b"[]", "the sheet has no rate rows"),
        (b'[{"product": "cd"}]', "missing required columns rate_percent, effective_from, source"),
        (
            b'[{"product": "cd", "rate_percent": [1], "effective_from": "2026-01-01", '
            b'"source": "s"}]',
            "row 1: rate_percent must be a string or a number",
        ),
        (
            b'[{"product": "cd", "rate_percent": "1", "effective_from": "2026-01-01", '
            b'"source": "s"}, 7]',
            "row 2: not a JSON object",
        ),
    ],
)
def test_bad_json(data: bytes, expected: str) -> None:
    assert expected in str(rejected(data, "rates.json"))


def test_load_is_atomic(session_factory: sessionmaker[Session]) -> None:
    data = DEMO_SHEET.read_bytes()
    with session_factory.begin() as session:
        result = load_rate_sheet(session, filename="demo/rates.csv", data=data)
    assert result.filename == "rates.csv"
    assert result.rows == len(parse_rate_sheet("rates.csv", data))

    bad = data + b"certificate of deposit,3 months,,abc,,,2026-11-01,,s\n"
    with pytest.raises(RateSheetError), session_factory.begin() as session:
        load_rate_sheet(session, filename="bad.csv", data=bad)

    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(RateSheet)) == 1
        assert session.scalar(select(func.count()).select_from(RateRow)) == result.rows
        assert all(r.superseded_at is None for r in rate_history(session))
        rows = current_rates(session, on=DEMO_TODAY, product="30-year fixed mortgage")
        assert [(r.rate_percent, r.apr_percent) for r in rows] == [("6.125", "6.291")]
