"""Rate rows for the answer tests: a plain class satisfying `RateLike`, and the demo sheet."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from pathlib import Path

from bot.rates.loader import parse_rate_sheet

DEMO_SHEET = Path(__file__).resolve().parents[2] / "bot" / "demo" / "rates.csv"
# "Today" of the demo sheet: some rows have expired, one starts in 2027.
DEMO_TODAY = dt.date(2026, 11, 23)


@dataclass(frozen=True)
class Row:
    """A stored rate row, as the database returns it."""

    id: int
    product: str
    term: str | None
    term_months: int | None
    tier: str | None
    rate_percent: str
    apr_percent: str | None
    apy_percent: str | None
    effective_from: dt.date
    effective_until: dt.date | None
    source: str
    superseded_at: dt.datetime | None = None


def demo_rows() -> list[Row]:
    """The demo sheet's rows with ids 1, 2, ... in file order."""
    parsed = parse_rate_sheet(DEMO_SHEET.name, DEMO_SHEET.read_bytes())
    names = [f.name for f in fields(Row) if f.name not in {"id", "superseded_at"}]
    return [
        Row(id=n, **{name: getattr(row, name) for name in names})
        for n, row in enumerate(parsed, start=1)
    ]


def row(
    id: int,
    product: str,
    rate_percent: str,
    *,
    term: str | None = None,
    term_months: int | None = None,
    tier: str | None = None,
    apr: str | None = None,
    apy: str | None = None,
    start: dt.date = dt.date(2026, 11, 1),
    until: dt.date | None = None,
    source: str = "Test rate sheet",
    superseded: bool = False,
) -> Row:
    """A row with test defaults (effective 2026-11-01, open-ended)."""
    return Row(
        id=id,
        product=product,
        term=term,
        term_months=term_months,
        tier=tier,
        rate_percent=rate_percent,
        apr_percent=apr,
        apy_percent=apy,
        effective_from=start,
        effective_until=until,
        source=source,
        superseded_at=dt.datetime(2026, 11, 2, tzinfo=dt.UTC) if superseded else None,
    )
