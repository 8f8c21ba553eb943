"""Rate sheet repository on real SQLite and PostgreSQL: supersede, history, current rows."""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from db.migrate import downgrade, upgrade
from db.models import RateRow, RateSheet
from db.rates import (
    NewRateRow,
    current_rates,
    get_rate_rows,
    get_sheet,
    insert_sheet,
    list_products,
    list_sheets,
    rate_history,
    row_status,
)
from db.session import make_engine, make_session_factory
from tests.conftest import PostgresServer

Factory = sessionmaker[Session]
D = dt.date


def rate(
    product: str = "30-year fixed mortgage",
    rate_percent: str = "6.125",
    *,
    term: str | None = "30 years",
    term_months: int | None = 360,
    tier: str | None = None,
    apr: str | None = "6.291",
    apy: str | None = None,
    start: dt.date = D(2026, 11, 1),
    until: dt.date | None = None,
    source: str = "Harbor Bank rate sheet 2026-11",
) -> NewRateRow:
    return NewRateRow(
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
    )


def load(session: Session, *rows: NewRateRow, name: str = "rates.csv") -> list[int]:
    return insert_sheet(session, filename=name, content_hash="0" * 64, rows=rows).row_ids


def test_insert_sheet_stores_rows_exactly(session_factory: Factory) -> None:
    with session_factory.begin() as session:
        result = insert_sheet(
            session,
            filename="nov.csv",
            content_hash="a" * 64,
            rows=[rate(), rate("certificate of deposit", "4.10", term="6 months", term_months=6)],
            loaded_by="ops@harbor",
        )
    assert (result.filename, result.rows, result.superseded) == ("nov.csv", 2, 0)
    assert len(result.row_ids) == 2 and len(result.sheet_id) == 36
    with session_factory() as session:
        sheet = get_sheet(session, sheet_id=result.sheet_id)
        assert sheet is not None
        assert (sheet.rows, sheet.loaded_by, sheet.content_hash) == (2, "ops@harbor", "a" * 64)
        assert sheet.loaded_at.tzinfo is not None
        mortgage, cd = get_rate_rows(session, ids=result.row_ids)
        assert (mortgage.rate_percent, mortgage.apr_percent) == ("6.125", "6.291")
        assert (cd.rate_percent, cd.term, cd.term_months) == ("4.10", "6 months", 6)
        assert mortgage.sheet_id == result.sheet_id
        assert mortgage.superseded_at is None
        assert list_sheets(session)[0].id == result.sheet_id


def test_a_later_sheet_supersedes_same_key_and_keeps_history(session_factory: Factory) -> None:
    with session_factory.begin() as session:
        first = insert_sheet(
            session,
            filename="a.csv",
            content_hash="a" * 64,
            rows=[
                rate(),
                rate("15-year fixed mortgage", "5.500", term="15 years", term_months=180),
            ],
        )
    with session_factory.begin() as session:
        second = insert_sheet(
            session, filename="b.csv", content_hash="b" * 64, rows=[rate(rate_percent="6.000")]
        )

    assert second.superseded_ids == [first.row_ids[0]]
    assert second.superseded == 1
    with session_factory() as session:
        old, untouched = get_rate_rows(session, ids=first.row_ids)
        assert old.superseded_by_sheet == second.sheet_id
        assert old.superseded_at is not None
        assert untouched.superseded_at is None
        assert session.scalar(select(func.count()).select_from(RateRow)) == 3  # nothing deleted
        history = rate_history(session, product="30-year fixed mortgage")
        assert [r.rate_percent for r in history] == ["6.125", "6.000"]
        current = current_rates(session, on=D(2026, 11, 23))
        assert sorted(r.rate_percent for r in current) == ["5.500", "6.000"]


def test_a_sheet_already_in_force_stores_nothing(session_factory: Factory) -> None:
    mortgage = rate()
    cd = rate("certificate of deposit", "4.10", term="6 months", term_months=6)
    with session_factory.begin() as session:
        first = insert_sheet(session, filename="a.csv", content_hash="a" * 64, rows=[mortgage, cd])
    with session_factory.begin() as session:
        again = insert_sheet(session, filename="b.csv", content_hash="b" * 64, rows=[cd, mortgage])
        part = insert_sheet(session, filename="c.csv", content_hash="c" * 64, rows=[cd])

    assert again.unchanged and part.unchanged and not first.unchanged
    assert again.sheet_id == part.sheet_id == first.sheet_id
    assert again.row_ids == first.row_ids[::-1] and part.row_ids == first.row_ids[1:]
    assert (again.rows, again.superseded, again.filename) == (2, 0, "b.csv")
    with session_factory() as session:
        assert [sheet.id for sheet in list_sheets(session)] == [first.sheet_id]
        assert session.scalar(select(func.count()).select_from(RateRow)) == 2
        assert all(row.superseded_at is None for row in rate_history(session))


@pytest.mark.parametrize(
    "change",
    [
        {"rate_percent": "6.1250"},  # as published: another string is another quote
        {"apr_percent": None},
        {"apy_percent": "6.300"},
        {"effective_until": D(2027, 1, 31)},
        {"source": "Harbor Bank rate sheet 2026-12"},
    ],
)
def test_any_changed_value_loads_the_whole_sheet(
    session_factory: Factory, change: dict[str, Any]
) -> None:
    kept = rate("certificate of deposit", "4.10", term="6 months", term_months=6)
    with session_factory.begin() as session:
        first = load(session, rate(), kept)
    with session_factory.begin() as session:
        result = insert_sheet(
            session,
            filename="b.csv",
            content_hash="b" * 64,
            rows=[replace(rate(), **change), kept],
        )
    assert not result.unchanged
    assert result.superseded_ids == first


def test_going_back_to_an_earlier_sheet_is_a_change(session_factory: Factory) -> None:
    with session_factory.begin() as session:
        load(session, rate(rate_percent="6.125"))
    with session_factory.begin() as session:
        (second,) = load(session, rate(rate_percent="6.000"))
    with session_factory.begin() as session:
        back = insert_sheet(
            session, filename="a.csv", content_hash="a" * 64, rows=[rate(rate_percent="6.125")]
        )
    assert not back.unchanged and back.superseded_ids == [second]
    with session_factory() as session:
        assert [r.rate_percent for r in current_rates(session, on=D(2026, 11, 23))] == ["6.125"]


def test_rows_with_another_key_do_not_supersede(session_factory: Factory) -> None:
    base = rate(tier="under $10,000")
    with session_factory.begin() as session:
        load(session, base)
    with session_factory.begin() as session:
        result = insert_sheet(
            session,
            filename="b.csv",
            content_hash="b" * 64,
            rows=[
                replace(base, tier="$10,000 and above"),
                replace(base, term="15 years"),
                replace(base, effective_from=D(2026, 12, 1)),
                replace(base, product="7/6 arm mortgage"),
            ],
        )
    assert result.superseded_ids == []


def test_null_term_and_tier_are_part_of_the_key(session_factory: Factory) -> None:
    heloc = rate("home equity line of credit", "8.250", term=None, term_months=None, apr="8.250")
    with session_factory.begin() as session:
        (first,) = load(session, heloc)
    with session_factory.begin() as session:
        result = insert_sheet(
            session,
            filename="b.csv",
            content_hash="b" * 64,
            rows=[replace(heloc, rate_percent="8.000")],
        )
    assert result.superseded_ids == [first]


def test_current_rates_skip_expired_future_and_superseded(session_factory: Factory) -> None:
    with session_factory.begin() as session:
        expired, current, future, replaced_by_later_date, later = load(
            session,
            rate(rate_percent="6.375", start=D(2026, 9, 1), until=D(2026, 10, 31)),
            rate(rate_percent="6.125", start=D(2026, 11, 1)),
            rate("heloc", "7.990", term=None, term_months=None, start=D(2027, 1, 1)),
            rate("savings", "0.40", term=None, term_months=None, start=D(2026, 1, 1)),
            rate("savings", "0.50", term=None, term_months=None, start=D(2026, 6, 1)),
        )
    today = D(2026, 11, 23)
    with session_factory() as session:
        rows = current_rates(session, on=today)
        assert [r.id for r in rows] == [current, later]
        ids = {r.id for r in rows}
        statuses = {r.id: row_status(r, on=today, current_ids=ids) for r in rate_history(session)}
        assert statuses == {
            expired: "expired",
            current: "current",
            future: "future",
            replaced_by_later_date: "replaced",
            later: "current",
        }
        # On the last day of its range a row is still current; the next day it is not.
        assert [r.rate_percent for r in current_rates(session, on=D(2026, 10, 31))] == [
            "6.375",
            "0.50",
        ]
        assert [r.rate_percent for r in current_rates(session, on=D(2027, 1, 1))] == [
            "6.125",
            "7.990",
            "0.50",
        ]
        assert current_rates(session, on=today, product="  Savings ") == [
            session.get(RateRow, later)
        ]
        assert current_rates(session, on=D(2025, 1, 1)) == []
        assert list_products(session) == ["30-year fixed mortgage", "heloc", "savings"]


def test_a_corrected_sheet_replaces_the_quoted_number(session_factory: Factory) -> None:
    with session_factory.begin() as session:
        load(session, rate(rate_percent="6.125"))
    with session_factory.begin() as session:
        load(session, rate(rate_percent="6.250"), name="fix.csv")
    with session_factory() as session:
        assert [r.rate_percent for r in current_rates(session, on=D(2026, 11, 2))] == ["6.250"]


def test_invalid_rows_raise_before_writing(session_factory: Factory) -> None:
    with session_factory.begin() as session:
        with pytest.raises(ValueError, match="same key"):
            load(session, rate(), rate())
        with pytest.raises(ValueError, match="before effective_from"):
            load(session, rate(start=D(2026, 11, 1), until=D(2026, 10, 1)))
        with pytest.raises(ValueError, match="limit is 200"):
            load(session, rate("x" * 201))
        with pytest.raises(ValueError, match="at least one row"):
            load(session)
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(RateSheet)) == 0


def test_a_rolled_back_load_leaves_nothing(session_factory: Factory) -> None:
    with session_factory.begin() as session:
        load(session, rate())
    with pytest.raises(RuntimeError), session_factory.begin() as session:
        load(session, rate(rate_percent="7.000"))
        raise RuntimeError("the caller failed after loading")
    with session_factory() as session:
        assert [r.rate_percent for r in rate_history(session)] == ["6.125"]
        assert current_rates(session, on=D(2026, 11, 23))[0].superseded_at is None
        assert len(list_sheets(session)) == 1


def test_get_rate_rows_keeps_order_and_skips_unknown(session_factory: Factory) -> None:
    with session_factory.begin() as session:
        a, b = load(session, rate(), rate("heloc", "8.25", term=None, term_months=None))
    with session_factory() as session:
        assert [r.id for r in get_rate_rows(session, ids=[b, 999_999, a, b])] == [b, a]
        assert get_rate_rows(session, ids=[]) == []


def test_downgrade_to_0001_drops_only_the_new_tables(database_url: str) -> None:
    upgrade(database_url)
    downgrade(database_url, "0001")
    engine = make_engine(database_url)
    try:
        tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()
    assert tables == {"documents", "document_versions", "chunks"}
    upgrade(database_url)


def _wait_until_blocked(server: PostgresServer, database: str) -> None:
    """Wait until a backend on `database` waits for a lock (here: the load lock)."""
    deadline = time.monotonic() + 20
    with server.connect() as monitor:
        while time.monotonic() < deadline:
            waiting = monitor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = %s AND wait_event_type = 'Lock'",
                (database,),
            ).fetchone()
            if waiting is not None and waiting[0] > 0:
                return
            time.sleep(0.02)
    raise AssertionError("the second load never waited for the first one's lock")


def _load_in_own_transaction(factory: Factory, row: NewRateRow) -> list[int]:
    with factory.begin() as session:
        return insert_sheet(
            session, filename="second.csv", content_hash="2" * 64, rows=[row]
        ).superseded_ids


@pytest.mark.postgres
def test_concurrent_loads_are_serialised_on_postgresql(
    postgres_url: str, postgres_server: PostgresServer
) -> None:
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    factory = make_session_factory(engine)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool, factory() as first:
            first.begin()
            (row_id,) = load(first, rate(rate_percent="6.125"))  # not committed yet
            second = pool.submit(_load_in_own_transaction, factory, rate(rate_percent="6.250"))
            _wait_until_blocked(postgres_server, engine.url.database or "")
            first.commit()
            # The second load waited for the first and superseded the row it committed.
            assert second.result(timeout=30) == [row_id]
        with factory() as session:
            assert [r.rate_percent for r in current_rates(session, on=D(2026, 11, 23))] == ["6.250"]
    finally:
        engine.dispose()
