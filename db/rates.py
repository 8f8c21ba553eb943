"""Repository functions for rate sheets and their rows.

A sheet is one upload; loading it inserts all its rows or none (the caller's
transaction wraps `insert_sheet`). Rows are never deleted or edited except to mark them
superseded, so every rate Teller ever quoted can be traced back to its sheet.

Which rows are current on a day (`current_rates`):

- `effective_from <= day` and (`effective_until` is null or `effective_until >= day`);
- not superseded by a later sheet;
- among rows left for the same (product, term, tier), the latest `effective_from` wins
  (ties: the row loaded last).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import or_, select, text
from sqlalchemy.orm import Session

from db.base import utcnow
from db.errors import translating
from db.models import RateRow, RateSheet

RateKey = tuple[str, str | None, str | None, dt.date]
RateStatus = Literal["current", "future", "expired", "superseded", "replaced"]

# Keys per `IN (...)` query: well under SQLite's and PostgreSQL's parameter limits.
_BATCH = 1000
# pg_advisory_xact_lock key serialising sheet loads: the bytes of "tellrate".
_LOAD_LOCK_KEY = int.from_bytes(b"tellrate", "big", signed=True)


@dataclass(frozen=True, slots=True)
class NewRateRow:
    """A validated rate row to store (see `bot.rates.loader.parse_rate_sheet`).

    `product` and `term` are normalised (lower-case product, "30 years"/"12 months"
    terms); the percentages are the strings as published, without "%".
    """

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

    @property
    def key(self) -> RateKey:
        """(product, term, tier, effective_from): a later sheet's row with it supersedes."""
        return (self.product, self.term, self.tier, self.effective_from)


@dataclass(frozen=True, slots=True)
class RateSheetResult:
    """What `insert_sheet` stored.

    `row_ids` are the new rows' ids in the order given; `superseded_ids` those of the
    earlier sheets' rows they replaced (still stored, now marked superseded).

    `unchanged` is true when every row of the sheet was already in force, value for
    value (a retried upload, the same sheet loaded twice): nothing was stored,
    `row_ids` are the stored rows that already say the same and `sheet_id` is the sheet
    that loaded the newest of them.
    """

    sheet_id: str
    filename: str
    rows: int
    row_ids: list[int]
    superseded_ids: list[int]
    unchanged: bool = False

    @property
    def superseded(self) -> int:
        """How many earlier rows this sheet superseded."""
        return len(self.superseded_ids)


def row_key(row: RateRow) -> RateKey:
    """The supersede key of a stored row."""
    return (row.product, row.term, row.tier, row.effective_from)


def _same_values(stored: RateRow | None, row: NewRateRow) -> bool:
    """Whether `stored` (a live row with `row`'s key, or None) says exactly what `row`
    says; percentages compare as published ("6.1" and "6.10" differ)."""
    return stored is not None and (
        stored.term_months,
        stored.rate_percent,
        stored.apr_percent,
        stored.apy_percent,
        stored.effective_until,
        stored.source,
    ) == (
        row.term_months,
        row.rate_percent,
        row.apr_percent,
        row.apy_percent,
        row.effective_until,
        row.source,
    )


def _check_length(name: str, value: str | None, limit: int) -> None:
    # SQLite does not enforce VARCHAR lengths; check here so both databases agree.
    if value is not None and len(value) > limit:
        raise ValueError(f"{name} is {len(value)} characters long; the limit is {limit}")


def _validate(row: NewRateRow) -> None:
    if not row.product:
        raise ValueError("a rate row needs a product")
    for name, value, limit in (
        ("product", row.product, 200),
        ("term", row.term, 100),
        ("tier", row.tier, 200),
        ("rate_percent", row.rate_percent, 32),
        ("apr_percent", row.apr_percent, 32),
        ("apy_percent", row.apy_percent, 32),
        ("source", row.source, 1024),
    ):
        _check_length(name, value, limit)
    if row.effective_until is not None and row.effective_until < row.effective_from:
        raise ValueError(
            f"{row.product}: effective_until {row.effective_until} is before "
            f"effective_from {row.effective_from}"
        )


def _live_rows(session: Session, products: Collection[str]) -> list[RateRow]:
    """Not-yet-superseded rows of `products`, locked until the transaction ends."""
    found: list[RateRow] = []
    ordered = sorted(products)
    for start in range(0, len(ordered), _BATCH):
        statement = (
            select(RateRow)
            .where(RateRow.product.in_(ordered[start : start + _BATCH]))
            .where(RateRow.superseded_at.is_(None))
            .order_by(RateRow.id)
            .with_for_update()
        )
        found.extend(session.scalars(statement))
    return found


def insert_sheet(
    session: Session,
    *,
    filename: str,
    content_hash: str,
    rows: Sequence[NewRateRow],
    loaded_by: str | None = None,
    sheet_id: str | None = None,
) -> RateSheetResult:
    """Store one rate sheet and its rows; rows of earlier sheets with the same key are
    marked superseded (never deleted).

    The key is (product, term, tier, effective_from). Keys must be unique within
    `rows` (`ValueError` otherwise, as for an empty sheet or over-long values). A sheet
    whose every row is already in force with the same values stores nothing and
    returns `unchanged=True`: loading a sheet again cannot change a quote, and would
    only fill the history with rows superseding their twins. Sheet loads are
    serialised on PostgreSQL (advisory lock); on SQLite a concurrent loader gets
    `ConflictError`: roll back and retry.
    """
    if not rows:
        raise ValueError("a rate sheet needs at least one row")
    _check_length("filename", filename, 255)
    _check_length("content_hash", content_hash, 64)
    _check_length("loaded_by", loaded_by, 200)
    keys: set[RateKey] = set()
    for row in rows:
        _validate(row)
        if row.key in keys:
            raise ValueError(f"two rows of the sheet have the same key {row.key}")
        keys.add(row.key)
    sheet_id = sheet_id or str(uuid.uuid4())

    with translating(f"loading rate sheet {filename!r}"):
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOAD_LOCK_KEY})
        # One live row per key: every load supersedes the rows with its keys.
        live = {row_key(old): old for old in _live_rows(session, {row.product for row in rows})}
        if all(_same_values(live.get(row.key), row) for row in rows):
            held = [live[row.key] for row in rows]
            return RateSheetResult(
                sheet_id=max(held, key=lambda old: old.id).sheet_id,
                filename=filename,
                rows=len(rows),
                row_ids=[old.id for old in held],
                superseded_ids=[],
                unchanged=True,
            )
        now = utcnow()
        session.add(
            RateSheet(
                id=sheet_id,
                filename=filename,
                rows=len(rows),
                content_hash=content_hash,
                loaded_at=now,
                loaded_by=loaded_by,
            )
        )
        session.flush()
        superseded: list[int] = []
        for key, old in live.items():
            if key in keys:
                old.superseded_at = now
                old.superseded_by_sheet = sheet_id
                superseded.append(old.id)
        new_rows = [
            RateRow(
                sheet_id=sheet_id,
                product=row.product,
                term=row.term,
                term_months=row.term_months,
                tier=row.tier,
                rate_percent=row.rate_percent,
                apr_percent=row.apr_percent,
                apy_percent=row.apy_percent,
                effective_from=row.effective_from,
                effective_until=row.effective_until,
                source=row.source,
                created_at=now,
            )
            for row in rows
        ]
        session.add_all(new_rows)
        session.flush()
        return RateSheetResult(
            sheet_id=sheet_id,
            filename=filename,
            rows=len(new_rows),
            row_ids=[row.id for row in new_rows],
            superseded_ids=sorted(superseded),
        )


def _history_key(row: RateRow) -> tuple[str, bool, int, str, str, dt.date, int]:
    return (
        row.product,
        row.term_months is None,
        row.term_months or 0,
        row.term or "",
        row.tier or "",
        row.effective_from,
        row.id,
    )


def _current_key(row: RateRow) -> tuple[str, bool, int, str, int]:
    # Tiers keep the sheet's order (ids): "under $10,000" before "$10,000 and above".
    return (row.product, row.term_months is None, row.term_months or 0, row.term or "", row.id)


def pick_current(rows: Iterable[RateRow], *, on: dt.date) -> list[RateRow]:
    """The rows of `rows` current on `on` (see the module docstring), sorted by product
    and term (in months), tiers in load order. Pure: `current_rates` filters in SQL
    first, then applies it."""
    best: dict[tuple[str, str | None, str | None], RateRow] = {}
    for row in rows:
        if row.superseded_at is not None or row.effective_from > on:
            continue
        if row.effective_until is not None and row.effective_until < on:
            continue
        group = (row.product, row.term, row.tier)
        held = best.get(group)
        if held is None or (row.effective_from, row.id) > (held.effective_from, held.id):
            best[group] = row
    return sorted(best.values(), key=_current_key)


def current_rates(session: Session, *, on: dt.date, product: str | None = None) -> list[RateRow]:
    """Rows current on `on`, optionally of one (normalised, lower-case) `product`."""
    statement = (
        select(RateRow)
        .where(RateRow.superseded_at.is_(None))
        .where(RateRow.effective_from <= on)
        .where(or_(RateRow.effective_until.is_(None), RateRow.effective_until >= on))
    )
    if product is not None:
        statement = statement.where(RateRow.product == normalize_product(product))
    with translating("reading current rates"):
        return pick_current(session.scalars(statement), on=on)


def rate_history(session: Session, *, product: str | None = None) -> list[RateRow]:
    """Every row ever loaded (superseded and expired included), by product, term, tier,
    then effective date and load order."""
    statement = select(RateRow)
    if product is not None:
        statement = statement.where(RateRow.product == normalize_product(product))
    with translating("reading the rate history"):
        return sorted(session.scalars(statement), key=_history_key)


def row_status(row: RateRow, *, on: dt.date, current_ids: Collection[int]) -> RateStatus:
    """Why a row is or is not quoted on `on`.

    `current_ids` are the ids `current_rates(on=on)` returned. "replaced" means the row
    is in force by its dates but a row with a later `effective_from` for the same
    product, term and tier takes precedence.
    """
    if row.superseded_at is not None:
        return "superseded"
    if row.effective_from > on:
        return "future"
    if row.effective_until is not None and row.effective_until < on:
        return "expired"
    return "current" if row.id in current_ids else "replaced"


def get_rate_rows(session: Session, *, ids: Sequence[int]) -> list[RateRow]:
    """The rows with these ids, in the order given; unknown ids are left out."""
    wanted = list(dict.fromkeys(ids))
    found: dict[int, RateRow] = {}
    with translating("reading rate rows"):
        for start in range(0, len(wanted), _BATCH):
            batch = wanted[start : start + _BATCH]
            found.update(
                (r.id, r) for r in session.scalars(select(RateRow).where(RateRow.id.in_(batch)))
            )
    return [found[i] for i in wanted if i in found]


def get_sheet(session: Session, *, sheet_id: str) -> RateSheet | None:
    """One loaded sheet, or None."""
    with translating(f"reading rate sheet {sheet_id!r}"):
        return session.get(RateSheet, sheet_id)


def list_sheets(session: Session, *, limit: int = 50) -> list[RateSheet]:
    """The most recently loaded sheets, newest first."""
    statement = select(RateSheet).order_by(RateSheet.loaded_at.desc(), RateSheet.id).limit(limit)
    with translating("listing rate sheets"):
        return list(session.scalars(statement))


def list_products(session: Session) -> list[str]:
    """Every product that has rows (current or not), sorted."""
    with translating("listing rate products"):
        return list(session.scalars(select(RateRow.product).distinct().order_by(RateRow.product)))


def normalize_product(product: str) -> str:
    """Products are stored lower-case with single spaces: "30-year fixed mortgage"."""
    return " ".join(product.split()).lower()
