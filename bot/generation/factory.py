"""Build the configured generator from plain values (the lead maps settings onto them).

``TELLER_GENERATOR`` -> `kind`, ``TELLER_GENERATOR_MODEL_DIR`` -> `model_dir`,
``TELLER_GENERATOR_URL`` -> `base_url`, ``TELLER_GENERATOR_MODEL`` -> `model`,
``TELLER_GENERATOR_API_KEY`` -> `api_key`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from bot.generation.errors import GeneratorUnavailableError
from bot.generation.extractive import ExtractiveComposer
from bot.generation.local_llm import TransformersGenerator
from bot.generation.openai_compat import OpenAICompatibleGenerator
from bot.generation.types import Generator
from retrieval.types import Embedder

GeneratorKind = Literal["extractive", "local", "openai"]


def build_generator(
    kind: GeneratorKind,
    embedder: Embedder,
    *,
    model_dir: str | Path | None = None,
    base_url: str | None = None,
    model: str | None = None,
    api_key: SecretStr | str | None = None,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    device: str = "cpu",
    timeout_s: float = 30.0,
    max_retries: int = 2,
) -> Generator:
    """Return the generator of `kind`, constructed but not loaded.

    Construction is cheap and contacts nothing; call the generator's ``load()`` at
    start-up. `embedder` serves the extractive composer (the answer pipeline keeps one
    even when `kind` is generative, as the fallback for ungrounded answers). Raises
    `GeneratorUnavailableError` naming the missing setting when `kind` needs a value
    that is not given, or when `model_dir` does not exist.
    """
    if kind == "extractive":
        return ExtractiveComposer(embedder)
    if kind == "local":
        if model_dir is None:
            raise GeneratorUnavailableError(
                "TELLER_GENERATOR=local needs TELLER_GENERATOR_MODEL_DIR (a local causal "
                "LM directory with a chat template)"
            )
        return TransformersGenerator(
            model_dir, max_new_tokens=max_new_tokens, temperature=temperature, device=device
        )
    if kind == "openai":
        if not base_url or not model:
            raise GeneratorUnavailableError(
                "TELLER_GENERATOR=openai needs TELLER_GENERATOR_URL (for example "
                "http://vllm:8000) and TELLER_GENERATOR_MODEL (the served model's name)"
            )
        key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        return OpenAICompatibleGenerator(
            base_url,
            model,
            api_key=key,
            timeout_s=timeout_s,
            max_retries=max_retries,
            max_tokens=max_new_tokens,
            temperature=temperature,
        )
    raise GeneratorUnavailableError(
        f"unknown TELLER_GENERATOR {kind!r}; use extractive, local or openai"
    )
