"""`teller export-index`, `import-index`, `index-status` and `reindex` on the embedded
index, run in-process against real data dirs and the real embedding model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli import app

DOCS = {
    "wires.md": "# Wire transfers\n\nInternational wires cost $45 and arrive in 1-3 days.\n",
    "atm.md": "# ATM fees\n\nOut-of-network ATM withdrawals cost $3 each.\n",
}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in ("TELLER_DATABASE_URL", "TELLER_BACKEND", "TELLER_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return {"TELLER_DATA_DIR": str(tmp_path / "a"), "TELLER_ENVIRONMENT": "test"}


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def run_json(env: dict[str, str], *args: str) -> dict[str, Any]:
    code, out = run(env, *args)
    assert code == 0, out
    body: dict[str, Any] = json.loads(out)
    return body


@pytest.fixture
def ingested(env: dict[str, str], tmp_path: Path) -> int:
    """Ingest DOCS into data dir `a`; returns the number of chunks."""
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text)
    code, out = run(env, "ingest", str(folder))
    assert code == 0, out
    count = run_json(env, "index-status")["count"]
    assert count >= len(DOCS)
    return int(count)


def test_export_then_import_round_trip(env: dict[str, str], ingested: int, tmp_path: Path) -> None:
    export = tmp_path / "index.jsonl.gz"
    summary = run_json(env, "export-index", str(export))
    assert summary["count"] == ingested and export.exists()

    # Restore into the same deployment after losing its index: no re-embedding.
    shutil.rmtree(tmp_path / "a" / "index")
    assert run_json(env, "index-status")["count"] == 0
    result = run_json(env, "import-index", str(export))
    assert result["imported"] == ingested and result["count"] == ingested
    status = run_json(env, "index-status")
    assert status == {"backend": "EmbeddedIndex", "ok": True, "count": ingested}

    hits = run_json(env, "search", "international wire fee", "--k", "1", "--json")["hits"]
    assert hits[0]["doc_id"] == "wires"


def test_a_corrupted_export_is_refused_and_nothing_is_imported(
    env: dict[str, str], ingested: int, tmp_path: Path
) -> None:
    export = tmp_path / "index.jsonl"
    run_json(env, "export-index", str(export))
    lines = export.read_text().splitlines(keepends=True)
    chunk = json.loads(lines[1])
    chunk["text"] = "Wires are free."  # an edit that keeps the line valid JSON
    lines[1] = json.dumps(chunk) + "\n"
    export.write_text("".join(lines))

    empty = {**env, "TELLER_DATA_DIR": str(tmp_path / "b")}
    code, out = run(empty, "import-index", str(export))
    assert code == 2
    assert "is damaged" in out and str(export) in out
    assert run_json(empty, "index-status")["count"] == 0


def test_reindex_rebuilds_a_deleted_index(
    env: dict[str, str], ingested: int, tmp_path: Path
) -> None:
    shutil.rmtree(tmp_path / "a" / "index")
    code, out = run(env, "reindex")
    assert code == 0, out
    assert f"index rebuilt: {ingested} chunks" in out
    assert run_json(env, "index-status")["count"] == ingested


def test_reindex_repairs_an_index_built_for_another_model(tmp_path: Path) -> None:
    import json as _json

    from typer.testing import CliRunner

    from bot.cli import app

    env = {"TELLER_DATA_DIR": str(tmp_path / "data"), "TELLER_ENVIRONMENT": "test"}
    doc = tmp_path / "fees.md"
    doc.write_text("# Fees\n\nPaper statements cost $2 per month.")
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(doc)], env=env).exit_code == 0
    meta = tmp_path / "data" / "index" / "index.json"
    meta.write_text(_json.dumps({"format": 1, "dimension": 768}))  # another model's index

    broken = runner.invoke(app, ["search", "paper statements"], env=env)
    assert broken.exit_code == 2 and "teller reindex" in broken.output
    fixed = runner.invoke(app, ["reindex"], env=env)
    assert fixed.exit_code == 0, fixed.output
    found = runner.invoke(app, ["search", "paper statements", "--json"], env=env)
    assert _json.loads(found.output)["hits"][0]["doc_id"] == "fees"
    assert list((tmp_path / "data").glob("index.set-aside-*"))  # kept, not deleted
