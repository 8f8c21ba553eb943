"""`teller rates load` and `teller rates list`, run in-process on real databases."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from pathlib import Path

import pytest
import typer
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bot.cli_rates import register
from db.audit import list_events
from db.session import make_engine
from tests.rates.helpers import DEMO_SHEET

app = typer.Typer()
register(app)


@pytest.fixture
def env(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in ("TELLER_DATABASE_URL", "TELLER_BACKEND", "TELLER_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return {
        "TELLER_DATA_DIR": str(tmp_path / "data"),
        "TELLER_ENVIRONMENT": "test",
        "TELLER_DATABASE_URL": database_url,
    }


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_load_and_list(env: dict[str, str], tmp_path: Path) -> None:
    code, out = run(env, "rates", "load", str(DEMO_SHEET))
    assert code == 0, out
    assert out.startswith("loaded sheet ") and "from rates.csv: 17 rows, 0 superseded" in out
    sheet_id = out.split()[2]

    code, out = run(env, "rates", "list", "--on", "2026-11-23", "--json")
    assert code == 0, out
    body = json.loads(out)
    assert body["on"] == "2026-11-23"
    products = {(r["product"], r["term"], r["tier"]): r for r in body["rates"]}
    assert products[("30-year fixed mortgage", "30 years", None)]["rate_percent"] == "6.125"
    assert products[("home equity line of credit", None, None)]["rate_percent"] == "8.250"
    assert {r["status"] for r in body["rates"]} == {"current"}

    code, out = run(env, "rates", "list", "--on", "2026-11-23", "--product", "everyday savings")
    assert code == 0, out
    header, line = out.splitlines()
    assert header.split() == [
        "product",
        "term",
        "tier",
        "rate",
        "APR",
        "APY",
        "from",
        "until",
        "status",
    ]
    assert line.split() == [
        "everyday",
        "savings",
        "-",
        "-",
        "0.50%",
        "-",
        "0.50%",
        "2026-01-15",
        "-",
        "current",
    ]

    code, out = run(env, "rates", "load", str(DEMO_SHEET))
    assert code == 0, out
    assert out.strip() == (
        f"unchanged: every row of rates.csv is already in force (sheet {sheet_id}); "
        "nothing was stored"
    )
    changed = tmp_path / "rates.csv"
    changed.write_bytes(DEMO_SHEET.read_bytes().replace(b",0.50,,0.50,", b",0.55,,0.55,"))
    code, out = run(env, "rates", "load", str(changed))
    assert code == 0 and "17 rows, 17 superseded" in out
    code, out = run(env, "rates", "list", "--history", "--json", "--on", "2026-11-23")
    statuses = [r["status"] for r in json.loads(out)["rates"]]
    assert len(statuses) == 34 and statuses.count("superseded") == 17

    # Each load is in the audit log under the operator's name, the unchanged one too.
    engine = make_engine(env["TELLER_DATABASE_URL"])
    try:
        with Session(engine) as session:
            events = list_events(session, action="rates.load")
    finally:
        engine.dispose()
    assert [e.details["unchanged"] for e in events] == [False, True, False]
    assert {e.actor for e in events} == {f"cli:{getpass.getuser()}"}
    assert events[-1].target == sheet_id


def test_a_bad_file_exits_1_with_row_errors_and_loads_nothing(
    env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "product,rate_percent,effective_from,source\n"
        "cd,4.1,2026-01-01,s\n"
        "cd,lots,2026-01-01,s\n"
        "savings,0.5,2026-02-30,s\n"
    )
    code, out = run(env, "rates", "load", str(bad))
    assert code == 1
    assert "bad.csv was rejected; nothing was loaded" in out
    assert "row 2 (line 3): rate_percent 'lots' is not a decimal number" in out
    assert "row 3 (line 4): effective_from '2026-02-30' is not a date" in out
    code, out = run(env, "rates", "list", "--history")
    assert code == 0 and out.strip() == "no rates loaded"


def test_usage_errors(env: dict[str, str], tmp_path: Path) -> None:
    code, out = run(env, "rates", "load", str(tmp_path / "missing.csv"))
    assert code == 2 and "cannot read" in out
    code, out = run(env, "rates", "list", "--on", "tomorrow")
    assert code == 2 and "YYYY-MM-DD" in out
    code, out = run(env, "rates", "list")
    assert code == 0 and out.strip() == f"no rates in force on {dt.date.today().isoformat()}"
    code, out = run({**env, "TELLER_CHUNK_OVERLAP": "5000"}, "rates", "list")
    assert code == 2 and "TELLER_CHUNK_OVERLAP" in out
