"""The embedding model's identity: its folder name plus a digest of what changes vectors."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.embedder import SentenceTransformerEmbedder, content_digest
from retrieval.errors import ModelLoadError


def _model(folder: Path, weights: bytes) -> Path:
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "config.json").write_text('{"hidden_size": 4}', encoding="utf-8")
    (folder / "1_Pooling" / "config.json").write_text('{"mean": true}', encoding="utf-8")
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def test_two_fine_tuned_models_in_folders_of_the_same_name_are_told_apart(
    tmp_path: Path,
) -> None:
    first = SentenceTransformerEmbedder(_model(tmp_path / "run-1" / "tuned", b"\x01" * 64))
    second = SentenceTransformerEmbedder(_model(tmp_path / "run-2" / "tuned", b"\x02" * 64))
    assert first.label == second.label == "tuned"
    assert first.name != second.name
    assert first.name.startswith("tuned-") and second.name.startswith("tuned-")


def test_a_copy_of_the_same_files_has_the_same_name(tmp_path: Path) -> None:
    one = SentenceTransformerEmbedder(_model(tmp_path / "a" / "model", b"\x07" * 64))
    other = SentenceTransformerEmbedder(_model(tmp_path / "b" / "model", b"\x07" * 64))
    # A folder called "model" is named after its parent (as packaged models are).
    assert (one.label, other.label) == ("a", "b")
    assert one.name.split("-")[-1] == other.name.split("-")[-1]


def test_the_digest_ignores_reports_and_docs_but_not_configuration(tmp_path: Path) -> None:
    folder = _model(tmp_path / "m", b"\x03" * 64)
    before = content_digest(folder)
    (folder / "report.json").write_text('{"before": 0.5}', encoding="utf-8")
    (folder / "README.md").write_text("# notes", encoding="utf-8")
    (folder / ".gitattributes").write_text("*.bin lfs", encoding="utf-8")
    assert content_digest(folder) == before
    (folder / "1_Pooling" / "config.json").write_text('{"cls": true}', encoding="utf-8")
    assert content_digest(folder) != before


def test_a_missing_folder_is_refused_with_the_setting_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="TELLER_EMBEDDING_MODEL"):
        SentenceTransformerEmbedder(tmp_path / "nope")
