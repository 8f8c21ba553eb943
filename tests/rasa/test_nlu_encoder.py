"""The NLU's sentence encoder: exported once per key, and in Rasa's environment
(onnxruntime, Python 3.10) the same vectors as sentence-transformers computes here."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from bot import nlu_encoder
from bot.nlu_encoder import (
    ENCODER_ENV,
    EncoderExportError,
    ensure_encoder,
    export_key,
    source_model_dir,
)
from bot.rasa_setup import PROJECT_DIR, QUIET_ENV, rasa_venv

TEXTS = [
    "My card has gone missing",
    "Où est ma carte?? I ordered it 2 weeks ago...",
    "transfer",
    # Longer than the model's 256 word pieces: both sides truncate the same way.
    "why was my payment declined " * 60,
]

# Runs in .venv-rasa: the featurizer's encoder on stdin's texts, sentence vectors and
# the vectors of each whitespace-separated word (Rasa's WhitespaceTokenizer's spans).
RASA_SIDE = """
import json, re, sys
from pathlib import Path
from teller_nlu.sentence_encoder import SentenceEncoder, token_vectors
folder, texts = sys.argv[1], json.load(sys.stdin)
encoder = SentenceEncoder(Path(folder))
pieces, offsets, sentences = encoder.encode(texts)
words = [[(m.start(), m.end()) for m in re.finditer(r"\\S+", t)] for t in texts]
print(json.dumps({
    "sentences": sentences.tolist(),
    "words": [token_vectors(w, p, o).tolist() for w, p, o in zip(words, pieces, offsets)],
}))
"""


def _rasa_side(folder: Path, texts: list[str]) -> dict[str, list]:
    result = subprocess.run(
        [str(rasa_venv() / "bin" / "python"), "-c", RASA_SIDE, str(folder)],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_rasa_computes_the_sentence_vectors_sentence_transformers_does(
    nlu_encoder: Path,
) -> None:
    model = SentenceTransformer(str(source_model_dir()), device="cpu")
    expected = model.encode(TEXTS, normalize_embeddings=True)
    got = np.array(_rasa_side(nlu_encoder, TEXTS)["sentences"])
    assert got.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_each_word_gets_the_mean_of_its_word_pieces(nlu_encoder: Path) -> None:
    model = SentenceTransformer(str(source_model_dir()), device="cpu")
    text = "Où est ma carte?? I ordered it 2 weeks ago..."
    pieces = model.encode(text, output_value="token_embeddings").numpy()
    encoded = model.tokenizer(text, return_offsets_mapping=True)
    offsets = encoded["offset_mapping"]
    words = [(0, 2), (3, 6), (7, 9), (10, 17)]  # "Où", "est", "ma", "carte??"
    got = np.array(_rasa_side(nlu_encoder, [text])["words"][0])
    assert got.shape == (len(text.split()), 384)
    for row, (start, end) in enumerate(words):
        inside = [i for i, (s, e) in enumerate(offsets) if e > s and s < end and e > start]
        assert len(inside) >= 1
        np.testing.assert_allclose(got[row], pieces[inside].mean(axis=0), atol=1e-4)


def test_words_cut_off_by_the_length_limit_get_zeros(nlu_encoder: Path) -> None:
    text = TEXTS[-1]
    words = np.array(_rasa_side(nlu_encoder, [text])["words"][0])
    assert np.abs(words[0]).sum() > 0
    assert np.abs(words[-1]).sum() == 0  # 300 words: more than 256 word pieces


def test_the_export_describes_itself(nlu_encoder: Path) -> None:
    manifest = json.loads((nlu_encoder / "encoder.json").read_text())
    assert manifest["key"] == export_key(source_model_dir())
    assert nlu_encoder.name == f"minilm-{manifest['key'][:16]}"
    assert (manifest["dimension"], manifest["max_seq_length"]) == (384, 256)
    assert manifest["outputs"] == ["token_embeddings", "sentence_embedding"]


def test_the_trained_model_carries_its_encoder(rasa_model: Path, nlu_encoder: Path) -> None:
    """A Rasa server (or the Docker image) needs no export: the model has a copy."""
    with tarfile.open(rasa_model) as archive:
        members = {Path(m.name).name: m for m in archive.getmembers() if m.isfile()}
    assert members["model.onnx"].size == (nlu_encoder / "model.onnx").stat().st_size
    assert "tokenizer.json" in members and "encoder.json" in members


def _fake_export(calls: list[Path]):
    def export(model_dir: Path, out_dir: Path, *, key: str) -> None:
        calls.append(out_dir)
        for name in ("model.onnx", "tokenizer.json"):
            (out_dir / name).write_bytes(b"x")
        (out_dir / "encoder.json").write_text(json.dumps({"key": key}))

    return export


def test_an_export_is_made_once_per_key_and_replaces_older_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(nlu_encoder, "export_encoder", _fake_export(calls))
    older = tmp_path / "minilm-0123456789abcdef"
    older.mkdir()
    (older / "encoder.json").write_text("{}")
    killed, running = tmp_path / "partial-minilm-killed", tmp_path / "partial-minilm-running"
    killed.mkdir()
    running.mkdir()
    os.utime(killed, (time.time() - 7200, time.time() - 7200))

    folder = ensure_encoder(tmp_path)
    assert folder.name == f"minilm-{export_key(source_model_dir())[:16]}"
    assert ensure_encoder(tmp_path) == folder
    assert len(calls) == 1
    # The older export and the partial one of a killed process are removed; the partial
    # one of an export that may still be running is left alone.
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name, running.name]
    assert json.loads((folder / "encoder.json").read_text())["key"].startswith(folder.name[7:])


def test_a_failed_export_leaves_nothing_that_looks_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(model_dir: Path, out_dir: Path, *, key: str) -> None:
        (out_dir / "model.onnx").write_bytes(b"half")
        raise RuntimeError("out of disk space")

    monkeypatch.setattr(nlu_encoder, "export_encoder", broken)
    with pytest.raises(EncoderExportError, match="out of disk space"):
        ensure_encoder(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_model_folder_that_is_not_sentence_transformers_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(EncoderExportError, match=r"no model\.safetensors"):
        ensure_encoder(tmp_path / "cache", tmp_path)


def test_training_without_the_encoder_says_how_to_export_it(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text(
        "recipe: default.v1\nassistant_id: t\nlanguage: en\npipeline:\n"
        "  - name: WhitespaceTokenizer\n"
        "  - name: teller_nlu.sentence_encoder.SentenceEncoderFeaturizer\n"
        "  - name: LogisticRegressionClassifier\n"
    )
    (tmp_path / "nlu.yml").write_text(
        'version: "3.1"\nnlu:\n'
        "  - intent: greet\n    examples: |\n      - hi\n      - hello\n"
        "  - intent: bye\n    examples: |\n      - bye\n      - see you\n"
    )
    env = {**os.environ, **QUIET_ENV, "PYTHONPATH": str(PROJECT_DIR)}
    env.pop(ENCODER_ENV, None)
    result = subprocess.run(
        [str(rasa_venv() / "bin" / "rasa"), "train", "nlu", "--config", "config.yml",
         "--nlu", "nlu.yml", "--out", "models"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert ENCODER_ENV in output and "python -m bot.nlu_encoder" in output, output[-3000:]
    assert not list((tmp_path / "models").glob("*.tar.gz"))
