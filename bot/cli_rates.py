"""`teller rates load FILE` and `teller rates list`: the rate sheet from the command line.

Wire them into the main CLI with `register`::

    from bot import cli_rates

    cli_rates.register(app)

The commands open the database only (never the index or the embedding model).
Failures print `error: ...` on stderr; a rejected sheet exits with status 1 and lists
its row errors, configuration and database problems exit with status 2.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from bot.cli_common import fail
from bot.settings import Settings


@contextmanager
def _sessions() -> Iterator[sessionmaker[Session]]:
    from bot.runtime import open_database
    from db.errors import DatabaseError

    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = "TELLER_" + str(first["loc"][0]).upper() if first["loc"] else "settings"
        fail(f"invalid configuration ({field}): {first['msg']}")
    try:
        engine, sessions = open_database(settings, migrate=True)
    except DatabaseError as exc:
        fail(str(exc))
    try:
        yield sessions
    finally:
        engine.dispose()


def load(
    file: Annotated[Path, typer.Argument(help="Rate sheet: .csv or .json.")],
) -> None:
    """Load a rate sheet; any invalid row rejects the whole file (nothing is written)."""
    from bot.rates.errors import RateSheetError
    from bot.rates.loader import load_rate_sheet
    from db.audit import Actor
    from db.errors import DatabaseError

    try:
        data = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}")
    with _sessions() as sessions:
        try:
            with sessions.begin() as session:
                result = load_rate_sheet(session, filename=file.name, data=data, actor=Actor.cli())
        except RateSheetError as exc:
            typer.secho(
                f"error: {file.name} was rejected; nothing was loaded",
                err=True,
                fg=typer.colors.RED,
            )
            for problem in exc.errors:
                typer.echo(f"  {problem}", err=True)
            if exc.error_count > len(exc.errors):
                typer.echo(f"  ... and {exc.error_count - len(exc.errors)} more", err=True)
            raise typer.Exit(1) from exc
        except DatabaseError as exc:
            fail(str(exc))
    if result.unchanged:
        typer.echo(
            f"unchanged: every row of {result.filename} is already in force "
            f"(sheet {result.sheet_id}); nothing was stored"
        )
        return
    typer.echo(
        f"loaded sheet {result.sheet_id} from {result.filename}: "
        f"{result.rows} rows, {result.superseded} superseded"
    )


def _row_dict(row: Any, status: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "sheet_id": row.sheet_id,
        "product": row.product,
        "term": row.term,
        "term_months": row.term_months,
        "tier": row.tier,
        "rate_percent": row.rate_percent,
        "apr_percent": row.apr_percent,
        "apy_percent": row.apy_percent,
        "effective_from": row.effective_from.isoformat(),
        "effective_until": row.effective_until and row.effective_until.isoformat(),
        "source": row.source,
        "status": status,
    }


def _table(rows: list[dict[str, Any]]) -> None:
    columns = ("product", "term", "tier", "rate", "APR", "APY", "from", "until", "status")
    cells = [
        (
            r["product"],
            r["term"] or "-",
            r["tier"] or "-",
            r["rate_percent"] + "%",
            (r["apr_percent"] + "%") if r["apr_percent"] else "-",
            (r["apy_percent"] + "%") if r["apy_percent"] else "-",
            r["effective_from"],
            r["effective_until"] or "-",
            r["status"],
        )
        for r in rows
    ]
    widths = [max([len(c), *(len(line[i]) for line in cells)]) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for line in cells:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def list_rates(
    on: Annotated[
        str | None, typer.Option(help="Day to quote for, YYYY-MM-DD; default today.")
    ] = None,
    product: Annotated[str | None, typer.Option(help="Only this product.")] = None,
    history: Annotated[bool, typer.Option("--history", help="Every row, with its status.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List the rates in force today (or --on DATE), or the whole history."""
    from db import rates as repo
    from db.errors import DatabaseError

    try:
        day = dt.date.fromisoformat(on) if on else dt.date.today()
    except ValueError:
        fail(f"--on {on!r} is not a YYYY-MM-DD date")
    with _sessions() as sessions:
        try:
            with sessions() as session:
                current = repo.current_rates(session, on=day, product=product)
                ids = {row.id for row in current}
                rows = repo.rate_history(session, product=product) if history else current
                out = [_row_dict(r, repo.row_status(r, on=day, current_ids=ids)) for r in rows]
        except DatabaseError as exc:
            fail(str(exc))
    if as_json:
        body = {"on": day.isoformat(), "history": history, "rates": out}
        typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
        return
    if not out:
        typer.echo(f"no rates in force on {day.isoformat()}" if not history else "no rates loaded")
        return
    _table(out)


def register(app: typer.Typer) -> None:
    """Add the `rates` command group (`load`, `list`) to `app`."""
    rates_app = typer.Typer(help="The rate sheet: load and list rates.", no_args_is_help=True)
    rates_app.command("load")(load)
    rates_app.command("list")(list_rates)
    app.add_typer(rates_app, name="rates")


__all__ = ["register"]
