"""The `teller` command line, run in-process against real data dirs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app

FIXTURES = Path(__file__).parent / "retrieval" / "fixtures"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in ("TELLER_DATABASE_URL", "TELLER_BACKEND", "TELLER_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return {"TELLER_DATA_DIR": str(tmp_path / "a"), "TELLER_ENVIRONMENT": "test"}


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_ingest_and_search(env: dict[str, str], tmp_path: Path) -> None:
    doc = tmp_path / "ATM fees.md"
    doc.write_text("# ATM fees\n\nOut-of-network ATM withdrawals cost $3 each.\n")
    code, out = run(env, "ingest", str(doc))
    assert code == 0, out
    assert "created    atm-fees" in out
    code, out = run(env, "ingest", str(doc))
    assert "unchanged  atm-fees" in out

    code, out = run(env, "search", "ATM withdrawal fee", "--k", "1", "--json")
    assert code == 0, out
    body = json.loads(out)
    assert body["hits"][0]["doc_id"] == "atm-fees"
    assert body["hits"][0]["section"] == ["ATM fees"]


def test_data_dirs_are_isolated(env: dict[str, str], tmp_path: Path) -> None:
    doc = tmp_path / "wires.txt"
    doc.write_text("International wires cost $45.")
    assert run(env, "ingest", str(doc))[0] == 0
    other = {**env, "TELLER_DATA_DIR": str(tmp_path / "b")}
    code, out = run(other, "search", "international wire", "--json")
    assert code == 0 and json.loads(out)["hits"] == []
    assert not (tmp_path / "a" / "teller.db").samefile(tmp_path / "b" / "teller.db")


def test_errors_are_clear_and_nonzero(env: dict[str, str], tmp_path: Path) -> None:
    code, out = run(env, "ingest", str(tmp_path / "missing.md"))
    assert code == 2 and "not found" in out
    bad = tmp_path / "bad.exe"
    bad.write_bytes(b"MZ")
    code, out = run(env, "ingest", str(bad))
    assert code == 1 and "failed" in out
    code, out = run(env, "search", "x", "--valid-on", "yesterday")
    assert code == 2 and "YYYY-MM-DD" in out
    code, out = run(env, "search", " \x00 ")
    assert code == 2 and "the query is empty" in out
    code, out = run(env, "ask", "   ")
    assert code == 2 and "the message is empty" in out and "Traceback" not in out
    code, out = run(env, "ask", "hello", "--conversation", "x")
    assert code == 2 and "conversation_id must be 8-36" in out
    code, out = run({**env, "TELLER_CHUNK_OVERLAP": "5000"}, "migrate")
    assert code == 2 and "TELLER_CHUNK_OVERLAP" in out


def test_beir_ingest(env: dict[str, str], tmp_path: Path) -> None:
    beir = tmp_path / "beir"
    beir.mkdir()
    rows = [
        {
            "_id": "d1",
            "title": "",
            "text": "Lost cards can be frozen in the app.",
            "class": "cards",
        },
        {"_id": "d2", "title": "", "text": "Home loans need two years of W-2s.", "class": "loans"},
    ]
    (beir / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    code, out = run(env, "ingest", "--beir", str(beir))
    assert code == 0, out
    code, out = run(env, "search", "mortgage documents", "--k", "1", "--json")
    hit = json.loads(out)["hits"][0]
    assert hit["doc_id"] == "d2" and hit["metadata"] == {"class": "loans"}


def test_demo_load_is_idempotent(env: dict[str, str]) -> None:
    code, out = run(env, "demo", "load")
    assert code == 0 and "0 failed" in out and "created" in out
    code, out = run(env, "demo", "load")
    assert code == 0 and "created" not in out and "unchanged" in out

    # Both loads are in the audit log: the first changed documents and rates, the
    # second only tried the rate sheet again (unchanged) and changed no document.
    code, out = run(env, "audit", "--json")
    assert code == 0, out
    events = [(e["action"], e["details"].get("unchanged")) for e in json.loads(out)["events"]]
    assert events == [("rates.load", True), ("rates.load", False), ("documents.ingest", None)]
