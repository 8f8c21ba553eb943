"""A Rasa featurizer with sentence embeddings: all-MiniLM-L6-v2, run by onnxruntime.

Rasa's own featurizers count words and character n-grams; they cannot tell that "my card
has gone missing" and "I lost my card" mean the same. This component adds the sentence
embedding of all-MiniLM-L6-v2 (the model Teller retrieves with) as dense features:

* sentence features: the mean of the model's token vectors, L2-normalised, times `scale`
  (logistic regression's L2 penalty treats every column alike, and a unit vector's
  coordinates are far smaller than the count features beside it; 30 was best of 5-50
  on a validation split of BANKING77's training part, see the README);
* sequence features: for each token of Rasa's tokenizer, the mean of the model's vectors
  of the word pieces inside it (zeros for a token cut off by the length limit).

Rasa runs on Python 3.10, where this project has no torch: the model is exported to ONNX
by Teller's environment (`python -m bot.nlu_encoder`), and training reads that export from
the folder in `TELLER_NLU_ENCODER` (or the `encoder` setting) and copies it into the
trained model, so a model carries its encoder and a Rasa server needs nothing else.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import ACTION_TEXT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from tokenizers import Tokenizer as WordPieceTokenizer

log = logging.getLogger(__name__)

ENCODER_ENV = "TELLER_NLU_ENCODER"
# The export's files, written by bot/nlu_encoder.py; encoder.json describes the other two.
ENCODER_FILES = ("model.onnx", "tokenizer.json", "encoder.json")
ATTRIBUTES = (TEXT, ACTION_TEXT)


class SentenceEncoder:
    """The exported model: word pieces in, token vectors and a unit sentence vector out."""

    def __init__(self, folder: Path, *, threads: int = 0) -> None:
        missing = [name for name in ENCODER_FILES if not (folder / name).is_file()]
        if missing:
            raise InvalidConfigException(
                f"the sentence encoder folder {folder} lacks {', '.join(missing)}; "
                "export it with `python -m bot.nlu_encoder` in Teller's environment"
            )
        self.folder = folder
        self.manifest: dict[str, Any] = json.loads((folder / "encoder.json").read_text())
        self.dimension = int(self.manifest["dimension"])
        self.tokenizer = WordPieceTokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(int(self.manifest["max_seq_length"]))
        self.tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(
            str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )

    def encode(
        self, texts: Sequence[str]
    ) -> tuple[list[np.ndarray], list[list[tuple[int, int]]], np.ndarray]:
        """Per text: its word pieces' vectors (special tokens included) and their
        character offsets; and all texts' unit sentence vectors, one row each."""
        encodings = self.tokenizer.encode_batch(list(texts))
        width = max(len(encoding.ids) for encoding in encodings)
        shape = (len(encodings), width)
        ids, mask, types = (np.zeros(shape, np.int64) for _ in range(3))
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[row, :n] = encoding.ids
            mask[row, :n] = encoding.attention_mask
            types[row, :n] = encoding.type_ids
        tokens, sentences = self.session.run(
            ["token_embeddings", "sentence_embedding"],
            {"input_ids": ids, "attention_mask": mask, "token_type_ids": types},
        )
        pieces = [tokens[row, : len(e.ids)] for row, e in enumerate(encodings)]
        offsets = [list(e.offsets) for e in encodings]
        return pieces, offsets, np.asarray(sentences, dtype=np.float32)


def token_vectors(
    spans: Sequence[tuple[int, int]],
    pieces: np.ndarray,
    offsets: Sequence[tuple[int, int]],
) -> np.ndarray:
    """One row per (start, end) span: the mean of the word pieces overlapping it
    (special tokens, whose offsets are empty, never do); zeros where none does."""
    out = np.zeros((len(spans), pieces.shape[1]), dtype=np.float32)
    for row, (start, end) in enumerate(spans):
        inside = [i for i, (s, e) in enumerate(offsets) if e > s and s < end and e > start]
        if inside:
            out[row] = pieces[inside].mean(axis=0)
    return out


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class SentenceEncoderFeaturizer(DenseFeaturizer, GraphComponent):
    """Dense sentence and token features from the exported all-MiniLM-L6-v2."""

    @classmethod
    def required_components(cls) -> list[type]:
        return [Tokenizer]

    @staticmethod
    def required_packages() -> list[str]:
        return ["onnxruntime", "tokenizers"]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            **DenseFeaturizer.get_default_config(),
            # The exported encoder; None: the folder in TELLER_NLU_ENCODER.
            "encoder": None,
            # Multiplies the unit sentence vector (see the module docstring).
            "scale": 30.0,
            "batch_size": 64,
            # onnxruntime's threads for one batch; 0: its default (one per core).
            "threads": 0,
        }

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        scale, batch = config.get("scale"), config.get("batch_size")
        if not isinstance(scale, int | float) or scale <= 0:
            raise InvalidConfigException(f"{cls.__name__}: scale must be > 0, not {scale!r}")
        if not isinstance(batch, int) or batch < 1:
            raise InvalidConfigException(f"{cls.__name__}: batch_size must be >= 1, not {batch!r}")

    def __init__(
        self,
        config: dict[str, Any],
        name: str,
        model_storage: ModelStorage,
        resource: Resource,
        encoder: SentenceEncoder,
    ) -> None:
        super().__init__(name, config)
        self._model_storage = model_storage
        self._resource = resource
        self.encoder = encoder

    @staticmethod
    def source_folder(config: dict[str, Any]) -> Path:
        """The export training reads: the `encoder` setting, else TELLER_NLU_ENCODER."""
        folder = config.get("encoder") or os.environ.get(ENCODER_ENV)
        if not folder:
            raise InvalidConfigException(
                "SentenceEncoderFeaturizer needs the exported sentence encoder: set "
                f"{ENCODER_ENV} to the folder `python -m bot.nlu_encoder` prints "
                "(Teller's `bot.rasa_setup` does this when it trains)"
            )
        return Path(folder).expanduser().resolve()

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentenceEncoderFeaturizer:
        encoder = SentenceEncoder(cls.source_folder(config), threads=config["threads"])
        return cls(config, execution_context.node_name, model_storage, resource, encoder)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> SentenceEncoderFeaturizer:
        with model_storage.read_from(resource) as folder:
            encoder = SentenceEncoder(Path(folder), threads=config["threads"])
        return cls(config, execution_context.node_name, model_storage, resource, encoder)

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        """The export's key, so Rasa's training cache never reuses another encoder's
        features."""
        try:
            manifest = json.loads((cls.source_folder(config) / "encoder.json").read_text())
        except (InvalidConfigException, OSError, ValueError):
            return None
        return str(manifest.get("key"))

    def train(self, training_data: TrainingData) -> Resource:
        """Nothing to learn: copies the encoder into the model."""
        with self._model_storage.write_to(self._resource) as folder:
            for name in ENCODER_FILES:
                shutil.copyfile(self.encoder.folder / name, Path(folder) / name)
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for attribute in ATTRIBUTES:
            todo = [message for message in messages if message.get(attribute)]
            size = self._config["batch_size"]
            for first in range(0, len(todo), size):
                self._featurize(todo[first : first + size], attribute)
        return messages

    def _featurize(self, messages: list[Message], attribute: str) -> None:
        pieces, offsets, sentences = self.encoder.encode([m.get(attribute) for m in messages])
        scale = float(self._config["scale"])
        for i, message in enumerate(messages):
            tokens = message.get(TOKENS_NAMES[attribute]) or []
            sequence = token_vectors([(t.start, t.end) for t in tokens], pieces[i], offsets[i])
            self.add_features_to_message(
                sequence=sequence,
                sentence=(sentences[i] * scale).reshape(1, -1),
                attribute=attribute,
                message=message,
            )
