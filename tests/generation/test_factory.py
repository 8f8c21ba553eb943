from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.generation import (
    ExtractiveComposer,
    GeneratorUnavailableError,
    OpenAICompatibleGenerator,
    TransformersGenerator,
    build_generator,
)
from retrieval.embedder import SentenceTransformerEmbedder

pytestmark = pytest.mark.slow  # every test takes the loaded embedder


def test_extractive_is_built_from_the_embedder(embedder: SentenceTransformerEmbedder) -> None:
    generator = build_generator("extractive", embedder)
    assert isinstance(generator, ExtractiveComposer)
    assert generator.version.endswith(embedder.name)


def test_local_needs_an_existing_model_dir(
    embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    with pytest.raises(GeneratorUnavailableError, match="TELLER_GENERATOR_MODEL_DIR"):
        build_generator("local", embedder)
    with pytest.raises(GeneratorUnavailableError, match="does not exist"):
        build_generator("local", embedder, model_dir=tmp_path / "absent")
    generator = build_generator("local", embedder, model_dir=tmp_path, max_new_tokens=16)
    assert isinstance(generator, TransformersGenerator)
    assert generator.version == tmp_path.name


def test_openai_needs_url_and_model(embedder: SentenceTransformerEmbedder) -> None:
    with pytest.raises(GeneratorUnavailableError, match="TELLER_GENERATOR_URL"):
        build_generator("openai", embedder, base_url="http://vllm:8000")
    for key in ("k", SecretStr("k"), None):
        generator = build_generator(
            "openai", embedder, base_url="http://vllm:8000", model="qwen", api_key=key
        )
        assert isinstance(generator, OpenAICompatibleGenerator)
        assert generator.url == "http://vllm:8000/v1/chat/completions"
        assert generator.version == "qwen"


def test_unknown_kind_is_refused(embedder: SentenceTransformerEmbedder) -> None:
    with pytest.raises(GeneratorUnavailableError, match="unknown TELLER_GENERATOR"):
        build_generator("magic", embedder)  # type: ignore[arg-type]
