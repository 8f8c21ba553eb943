"""Switching the embedding model (`teller reindex --model`, `--rollback`): a fresh index
is built beside the serving one, every process starts on the recorded switch, a running
API swaps to it without stopping, and chunks written meanwhile are re-embedded."""

from __future__ import annotations

import getpass
import json
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from bot.app import create_app
from bot.cli import app as cli
from bot.reindex import read_active_index, switch_embedding_model, with_active_index
from bot.runtime import build_runtime
from db.audit import list_events
from db.models import Chunk
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.types import ParsedDocument, SearchRequest, Section

FEES = ParsedDocument(
    title="Fees",
    sections=(Section(path=(), text="International wires cost $45. Domestic wires cost $25."),),
    doc_id="fees",
    source="fees.md",
)
CARDS = ParsedDocument(
    title="Cards",
    sections=(
        Section(path=(), text="Freeze a lost card in the app under Cards, then order a new one."),
    ),
    doc_id="cards",
    source="cards.md",
)


@pytest.fixture
def other_model(tmp_path: Path, embedder: Any) -> Path:
    """The same weights under another folder name (a model's name is its folder's name
    plus a digest of its files, so this is another model as far as the index knows)."""
    link = tmp_path / "models" / "minilm-tuned"
    link.parent.mkdir()
    link.symlink_to(embedder.path, target_is_directory=True)
    return link


def _top(runtime: Any, query: str) -> str:
    hits = runtime.knowledge.search(SearchRequest(query=query, k=3, mode="dense")).hits
    return str(hits[0].doc_id)


def _models(runtime: Any) -> set[str]:
    with runtime.sessions() as session:
        return set(session.scalars(select(Chunk.embedding_model)))


def test_switch_builds_a_new_index_that_every_start_uses(
    make_settings: Any, other_model: Path
) -> None:
    settings = make_settings()
    runtime = build_runtime(settings)
    runtime.knowledge.ingest_documents([FEES])
    old_dir = runtime.settings.index_dir
    runtime.close()

    report = switch_embedding_model(settings, other_model)
    assert report["chunks"] == 1 and report["embedding_model_name"].startswith("minilm-tuned-")
    record = read_active_index(settings)
    assert record is not None and record["previous"] is None
    assert Path(record["index_dir"]) != old_dir and old_dir.is_dir()  # kept for rollback
    assert with_active_index(settings).index_dir == Path(record["index_dir"])

    runtime = build_runtime(settings)
    try:
        assert runtime.embedder.label == "minilm-tuned"
        assert _models(runtime) == {runtime.embedder.name}
        assert _top(runtime, "international wire fee") == "fees"
    finally:
        runtime.close()


def test_chunks_written_by_a_server_that_had_not_switched_are_re_embedded(
    make_settings: Any, other_model: Path
) -> None:
    settings = make_settings()
    serving = build_runtime(settings)
    try:
        serving.knowledge.ingest_documents([FEES])
        switch_embedding_model(settings, other_model)
        serving.knowledge.ingest_documents([CARDS])  # still on the old model
        tuned = SentenceTransformerEmbedder(other_model).name
        assert _models(serving) == {tuned, serving.embedder.name}
    finally:
        serving.close()
    runtime = build_runtime(settings)
    try:
        assert runtime.embedder.label == "minilm-tuned"
        assert _models(runtime) == {runtime.embedder.name}
        assert _top(runtime, "lost card") == "cards"
    finally:
        runtime.close()


def test_a_running_api_swaps_to_the_new_model_without_stopping(
    make_settings: Any, other_model: Path
) -> None:
    settings = make_settings(reload_poll_s=0.05)
    app = create_app(settings)
    with TestClient(app) as client:
        document = {"id": "fees", "title": "Fees", "text": FEES.text}
        created = client.post("/v1/documents", json={"documents": [document]})
        assert created.status_code in (200, 201), created.text
        old = app.state.runtime
        switch_embedding_model(settings, other_model)
        deadline = time.monotonic() + 60
        while app.state.runtime is old and time.monotonic() < deadline:
            response = client.post("/v1/search", json={"query": "wire fee", "k": 1})
            assert response.status_code == 200  # served throughout
            time.sleep(0.05)
        assert app.state.runtime is not old
        assert app.state.runtime.embedder.label == "minilm-tuned"
        hits = client.post("/v1/search", json={"query": "wire fee", "k": 1}).json()["hits"]
        assert hits and "International wires cost $45." in hits[0]["text"]


def test_cli_switches_and_rolls_back(
    make_settings: Any, other_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TELLER_DATABASE_URL", "TELLER_BACKEND", "TELLER_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    env = {"TELLER_DATA_DIR": str(tmp_path / "data"), "TELLER_ENVIRONMENT": "test"}
    runner = CliRunner()

    result = runner.invoke(cli, ["reindex", "--rollback"], env=env)
    assert result.exit_code == 2 and "nothing to roll back" in result.output
    result = runner.invoke(cli, ["reindex", "--model", str(tmp_path / "nope")], env=env)
    assert result.exit_code == 2 and "not a sentence-transformers model" in result.output

    settings = make_settings()
    runtime = build_runtime(settings)
    runtime.knowledge.ingest_documents([FEES])
    default = runtime.embedder.name
    runtime.close()

    result = runner.invoke(cli, ["reindex", "--model", str(other_model)], env=env)
    assert result.exit_code == 0, result.output
    tuned = json.loads(result.output)["embedding_model_name"]
    assert tuned.startswith("minilm-tuned-")
    result = runner.invoke(cli, ["reindex", "--rollback"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["embedding_model_name"] == default
    runtime = build_runtime(settings)
    try:
        assert runtime.embedder.name == default and _models(runtime) == {default}
        with runtime.sessions() as session:
            events = list_events(session, action="index.model_switch")
    finally:
        runtime.close()
    assert [(e.target, e.details["rollback"]) for e in events] == [(default, True), (tuned, False)]
    assert events[1].details["model_dir"] == str(other_model.resolve())
    assert {e.actor for e in events} == {f"cli:{getpass.getuser()}"}
