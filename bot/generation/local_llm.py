"""A local transformers causal LM as a `Generator` (any model directory, no network)."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.generation.errors import GenerationError, GeneratorUnavailableError
from bot.generation.prompt import DEFAULT_SYSTEM_PROMPT, build_messages
from bot.generation.types import (
    Generation,
    GenerationRequest,
    parse_citations,
    trim_deltas,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


class TransformersGenerator:
    """`Generator` backed by a causal LM directory and its tokenizer's chat template.

    The constructor only checks that `model_dir` exists; `load()` reads the tokenizer and
    weights (``local_files_only``, once, at start-up). Decoding is greedy when
    `temperature` is 0 (the default: the same question and passages give the same
    answer), sampling otherwise. `stream` runs generation in a thread and yields text as
    `transformers.TextIteratorStreamer` decodes it; closing the iterator early stops the
    generation at the next token.
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        device: str = "cpu",
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        stream_timeout_s: float = 120.0,
    ) -> None:
        path = Path(model_dir)
        if not path.is_dir():
            raise GeneratorUnavailableError(
                f"generator model directory {path} does not exist; set "
                "TELLER_GENERATOR_MODEL_DIR to a local causal LM folder (config, weights "
                "and a tokenizer with a chat template)"
            )
        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        if temperature < 0:
            raise ValueError("temperature must not be negative")
        if stream_timeout_s <= 0:
            raise ValueError("stream_timeout_s must be positive")
        self._path = path
        self._max_new_tokens = max_new_tokens
        self._temperature = temperature
        self._device = device
        self._system_prompt = system_prompt
        self._stream_timeout_s = stream_timeout_s
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._model: PreTrainedModel | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return "transformers"

    @property
    def version(self) -> str:
        return self._path.name if self._path.name != "model" else self._path.parent.name

    def load(self) -> None:
        """Load the tokenizer and weights now (idempotent, thread-safe)."""
        self._loaded()

    def render_prompt(self, request: GenerationRequest) -> str:
        """The exact prompt text the model sees (the chat template applied)."""
        tokenizer, _ = self._loaded()
        rendered = tokenizer.apply_chat_template(
            self._messages(request), add_generation_prompt=True, tokenize=False
        )
        return str(rendered)

    def generate(self, request: GenerationRequest) -> Generation:
        """Generate the whole answer; raises `GenerationError` if the model fails."""
        tokenizer, model = self._loaded()
        inputs = self._inputs(request)
        prompt_length = inputs["input_ids"].shape[1]
        try:
            output = model.generate(**inputs, **self._generation_kwargs(tokenizer))  # type: ignore[operator]
        except Exception as exc:  # torch and transformers raise many unrelated types
            raise GenerationError(f"the model in {self._path} failed to generate: {exc}") from exc
        text = tokenizer.decode(output[0, prompt_length:], skip_special_tokens=True)
        return self._generation(str(text).strip(), request)

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Yield text as tokens are generated; joined, they equal `generate`'s text."""
        raw = self._raw_stream(request)
        try:
            yield from trim_deltas(raw)
        finally:
            raw.close()  # stops the generation thread when the consumer stops early

    def _raw_stream(self, request: GenerationRequest) -> Generator[str, None, None]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        tokenizer, model = self._loaded()
        inputs = self._inputs(request)
        streamer = TextIteratorStreamer(
            tokenizer,
            skip_prompt=True,
            timeout=self._stream_timeout_s,
            skip_special_tokens=True,
        )
        cancelled = threading.Event()
        errors: list[BaseException] = []

        class _StopWhenCancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                size = (input_ids.shape[0],)
                return torch.full(
                    size, cancelled.is_set(), dtype=torch.bool, device=input_ids.device
                )

        def run() -> None:
            try:
                model.generate(  # type: ignore[operator]
                    **inputs,
                    **self._generation_kwargs(tokenizer),
                    streamer=streamer,
                    stopping_criteria=StoppingCriteriaList([_StopWhenCancelled()]),
                )
            except BaseException as exc:  # re-raised in the consuming thread below
                errors.append(exc)
                streamer.end()

        thread = threading.Thread(target=run, name="teller-generate", daemon=True)
        thread.start()
        try:
            for delta in streamer:
                if errors:
                    break
                if delta:
                    yield delta
        except queue.Empty as exc:
            cancelled.set()
            raise GenerationError(
                f"the model in {self._path} produced nothing for {self._stream_timeout_s} s"
            ) from exc
        finally:
            cancelled.set()
            thread.join()
        if errors:
            raise GenerationError(
                f"the model in {self._path} failed to generate: {errors[0]}"
            ) from errors[0]

    def _messages(self, request: GenerationRequest) -> list[dict[str, str]]:
        return build_messages(request, system_prompt=self._system_prompt)

    def _inputs(self, request: GenerationRequest) -> dict[str, Any]:
        tokenizer, model = self._loaded()
        encoded: Any = tokenizer.apply_chat_template(
            self._messages(request),
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        )
        prompt_length = int(encoded["input_ids"].shape[1])
        context = getattr(model.config, "max_position_embeddings", None)
        if isinstance(context, int) and prompt_length + self._max_new_tokens > context:
            raise GenerationError(
                f"the prompt has {prompt_length} tokens and the answer may take "
                f"{self._max_new_tokens}, more than the model's context of {context}; "
                "pass fewer or shorter passages"
            )
        return {key: value.to(self._device) for key, value in encoded.items()}

    def _generation_kwargs(self, tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
        pad = tokenizer.pad_token_id
        kwargs: dict[str, Any] = {
            "max_new_tokens": self._max_new_tokens,
            "pad_token_id": pad if pad is not None else tokenizer.eos_token_id,
        }
        if self._temperature > 0:
            kwargs.update(do_sample=True, temperature=self._temperature)
        else:  # override sampling defaults a model's generation_config may carry
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kwargs

    def _generation(self, text: str, request: GenerationRequest) -> Generation:
        return Generation(
            text=text,
            cited=parse_citations(text, request.max_citation),
            generator=self.name,
            version=self.version,
        )

    def _loaded(self) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
        if self._tokenizer is None or self._model is None:
            with self._lock:
                if self._tokenizer is None or self._model is None:
                    self._tokenizer, self._model = self._load()
        return self._tokenizer, self._model

    def _load(self) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        try:
            tokenizer = AutoTokenizer.from_pretrained(self._path, local_files_only=True)
        except Exception as exc:  # any loader failure means a bad model folder
            raise GeneratorUnavailableError(
                f"could not load a tokenizer from {self._path}: {exc}"
            ) from exc
        if not getattr(tokenizer, "chat_template", None):
            raise GeneratorUnavailableError(
                f"the tokenizer in {self._path} has no chat template; use an instruction-"
                "tuned (chat) model, or add a chat_template to its tokenizer_config.json"
            )
        try:
            model = AutoModelForCausalLM.from_pretrained(self._path, local_files_only=True)
            model.to(self._device)  # type: ignore[arg-type]
            model.eval()
        except Exception as exc:
            raise GeneratorUnavailableError(
                f"could not load a causal language model from {self._path} on {self._device}: {exc}"
            ) from exc
        return tokenizer, model
