"""`teller keys`, `teller export`, `teller finetune`, `teller rerank` and `teller bench
feedback` argument handling, on a SQLite data dir (no model loaded)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest
import typer
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from bot import cli_feedback
from bot.settings import Settings
from db import audit
from db.api_keys import find_api_key
from db.migrate import upgrade
from db.session import make_engine, make_session_factory
from feedback.capture import FeedbackService, Vote
from tests.feedback.helpers import store_answer, store_doc

runner = CliRunner()


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("TELLER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TELLER_ENVIRONMENT", "test")
    monkeypatch.delenv("TELLER_DATABASE_URL", raising=False)
    application = typer.Typer()
    bench = typer.Typer()
    application.add_typer(bench, name="bench")
    cli_feedback.register(application)
    return application


@pytest.fixture
def sessions(app: typer.Typer) -> sessionmaker[Session]:
    url = Settings().sqlalchemy_url
    Settings().ensure_dirs()
    upgrade(url)
    return make_session_factory(make_engine(url))


def test_keys_create_list_revoke(app: typer.Typer, sessions: sessionmaker[Session]) -> None:
    created = runner.invoke(app, ["keys", "create", "--scope", "export", "--name", "ml team"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("tk_") and len(key) > 40
    with sessions.begin() as session:
        row = find_api_key(session, key=key)
        assert row is not None and row.scopes == ["export"] and row.name == "ml team"
        key_id = row.id

    listed = runner.invoke(app, ["keys", "list", "--json"])
    assert json.loads(listed.stdout)["keys"][0]["id"] == key_id
    assert key not in listed.stdout  # never shown again
    assert runner.invoke(app, ["keys", "revoke", key_id]).exit_code == 0
    with sessions() as session:
        assert find_api_key(session, key=key) is None
    assert "revoked" in runner.invoke(app, ["keys", "list"]).stdout

    unknown = runner.invoke(app, ["keys", "revoke", "nope"])
    assert unknown.exit_code == 2 and "no API key" in unknown.output
    bad = runner.invoke(app, ["keys", "create", "--scope", "root"])
    assert bad.exit_code == 2 and "unknown scope" in bad.output


def test_key_changes_and_exports_are_in_the_audit_log(
    app: typer.Typer, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    created = runner.invoke(app, ["keys", "create", "--scope", "admin", "--name", "alice"])
    assert created.exit_code == 0, created.output
    key_id = created.stdout.split()[3]
    assert runner.invoke(app, ["keys", "revoke", key_id]).exit_code == 0
    out = tmp_path / "kto.jsonl"
    exported = runner.invoke(app, ["export", "--format", "kto", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    assert runner.invoke(app, ["keys", "revoke", "nope"]).exit_code == 2  # nothing changed

    listed = runner.invoke(app, ["audit", "--json"])
    assert listed.exit_code == 0, listed.output
    events = json.loads(listed.stdout)["events"]
    me = f"cli:{getpass.getuser()}"
    assert [(e["action"], e["actor"], e["target"]) for e in events] == [
        ("feedback.export", me, str(out.resolve())),
        ("keys.revoke", me, key_id),
        ("keys.create", me, key_id),
    ]
    assert events[2]["details"] == {"name": "alice", "scopes": ["admin"]}
    assert events[0]["details"]["counts"] == {"train": 0, "validation": 0}

    table = runner.invoke(app, ["audit", "--action", "keys.create"])
    assert table.exit_code == 0 and len(table.stdout.splitlines()) == 1
    assert f"keys.create      {me}  {key_id}" in table.stdout
    since = runner.invoke(app, ["audit", "--since", "2999-01-01", "--json"])
    assert json.loads(since.stdout) == {"events": []}
    bad = runner.invoke(app, ["audit", "--action", "keys.delete"])
    assert bad.exit_code == 2 and "--action must be one of" in bad.output


def test_export_writes_split_files_and_manifest(
    app: typer.Typer, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    doc = store_doc(sessions, "fees", ["Wires cost $45."])
    answer_id = store_answer(sessions, "wire fee?", [("fees", 1, doc.added_keys[0])])
    FeedbackService(sessions).vote(answer_id, Vote("up", "customer", "c1"))
    out = tmp_path / "out" / "sft.jsonl"
    result = runner.invoke(
        app, ["export", "--format", "sft", "--out", str(out), "--validation-fraction", "0"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["counts"]["train"] == 1
    assert (tmp_path / "out" / "sft.train.jsonl").read_text().count("\n") == 1
    assert (tmp_path / "out" / "sft.manifest.json").is_file()

    since = runner.invoke(
        app, ["export", "--format", "sft", "--out", str(out), "--since", "2999-01-01"]
    )
    assert since.exit_code == 0 and json.loads(since.stdout)["counts"]["train"] == 0
    for args, message in [
        (["--format", "csv"], "--format must be one of sft, kto, preference, retrieval"),
        (["--format", "sft", "--since", "yesterday"], "--since"),
        (["--format", "sft", "--rating", "meh"], "--rating must be one of up, down"),
        (["--format", "sft", "--since", "2026-02-01", "--until", "2026-01-01"], "empty"),
    ]:
        failed = runner.invoke(app, ["export", *args, "--out", str(out)])
        assert failed.exit_code == 2 and message in failed.output, failed.output


def test_an_export_the_audit_log_cannot_record_leaves_no_files(
    app: typer.Typer,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def database_down(*args: object, **kwargs: object) -> None:
        raise OperationalError("INSERT INTO audit_events", {}, Exception("connection lost"))

    monkeypatch.setattr(audit, "record_committed", database_down)
    out = tmp_path / "out" / "kto.jsonl"
    failed = runner.invoke(app, ["export", "--format", "kto", "--out", str(out)])
    assert failed.exit_code == 2, failed.output
    assert "could not be recorded in the audit log" in failed.output
    assert "connection lost" in failed.output
    assert list((tmp_path / "out").iterdir()) == []


def test_finetune_rerank_and_bench_report_bad_input(
    app: typer.Typer, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    missing = runner.invoke(
        app,
        [
            "finetune",
            "retriever",
            "--data",
            str(tmp_path / "none.jsonl"),
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert missing.exit_code == 2 and "teller export --format retrieval" in missing.output
    bad = tmp_path / "bad.train.jsonl"
    bad.write_text('{"query": "q"}\n')
    invalid = runner.invoke(
        app,
        [
            "finetune",
            "retriever",
            "--data",
            str(tmp_path / "bad.jsonl"),
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert invalid.exit_code == 2 and "bad.train.jsonl:1" in invalid.output

    listed = runner.invoke(app, ["rerank", "list", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout) == {"versions": []}

    nowhere = runner.invoke(
        app, ["bench", "feedback", "--train", str(tmp_path), "--eval", str(tmp_path)]
    )
    assert nowhere.exit_code == 2 and "corpus.jsonl" in nowhere.output


def test_training_files_follow_the_export_naming(tmp_path: Path) -> None:
    (tmp_path / "r.train.jsonl").write_text("x\n")
    (tmp_path / "r.validation.jsonl").write_text("y\n")
    assert cli_feedback._training_files(tmp_path / "r.jsonl") == (
        tmp_path / "r.train.jsonl",
        tmp_path / "r.validation.jsonl",
    )
    (tmp_path / "r.validation.jsonl").write_text("")
    assert cli_feedback._training_files(tmp_path / "r.jsonl")[1] is None
    assert cli_feedback._training_files(tmp_path / "r.train.jsonl") == (
        tmp_path / "r.train.jsonl",
        None,
    )
