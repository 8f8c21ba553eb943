"""TransformersGenerator against a tiny random Llama built here (no download, ~1 s)."""

import threading
from pathlib import Path
from types import GeneratorType

import pytest

from bot.generation.errors import GenerationError, GeneratorUnavailableError
from bot.generation.local_llm import TransformersGenerator
from bot.generation.types import GenerationRequest, Generator
from tests.generation.helpers import passage

WORDS = (
    "the rate fee is a for of and to you your card loan savings account mortgage "
    "deposit interest month year pay balance bank branch online transfer penalty"
)
TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant\n{% endif %}"
)


def save_tiny_model(path: Path, *, chat_template: str | None = TEMPLATE) -> Path:
    """A 2-layer Llama with hidden size 32 and a word-level tokenizer, saved to `path`."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    backend = Tokenizer(models.WordLevel(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=["<unk>", "<s>", "</s>", "<pad>"])
    backend.train_from_iterator([WORDS], trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    path.mkdir(parents=True)
    tokenizer.save_pretrained(path)
    LlamaForCausalLM(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("llm") / "tiny-llama")


@pytest.fixture(scope="module")
def generator(model_dir: Path) -> TransformersGenerator:
    generator = TransformersGenerator(model_dir, max_new_tokens=24)
    generator.load()
    return generator


def make_request() -> GenerationRequest:
    return GenerationRequest(
        "What is the penalty on savings?",
        [passage(1, "The penalty is 90 days of interest."), passage(2, "Savings pay 4.5% APY.")],
    )


def test_missing_directory_is_reported_at_construction(tmp_path: Path) -> None:
    with pytest.raises(GeneratorUnavailableError, match="TELLER_GENERATOR_MODEL_DIR"):
        TransformersGenerator(tmp_path / "absent")
    with pytest.raises(ValueError):
        TransformersGenerator(tmp_path, max_new_tokens=0)


def test_tokenizer_without_chat_template_is_refused(tmp_path: Path) -> None:
    path = save_tiny_model(tmp_path / "base-model", chat_template=None)
    generator = TransformersGenerator(path)
    with pytest.raises(GeneratorUnavailableError, match="no chat template"):
        generator.load()


def test_directory_without_a_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(GeneratorUnavailableError, match="tokenizer"):
        TransformersGenerator(tmp_path / "empty").load()


def test_prompt_holds_rules_passages_and_question(generator: TransformersGenerator) -> None:
    prompt = generator.render_prompt(make_request())
    assert prompt.startswith("<s>system\nYou are Teller")
    assert '<passage number="1" title="Harbor home loans">' in prompt
    assert "The penalty is 90 days of interest." in prompt
    assert "Savings pay 4.5% APY." in prompt
    assert "<question>\nWhat is the penalty on savings?\n</question>" in prompt
    assert prompt.endswith("<s>assistant\n")


def test_generate_is_greedy_and_identifies_the_model(
    generator: TransformersGenerator, model_dir: Path
) -> None:
    first = generator.generate(make_request())
    assert first.text
    assert first.generator == "transformers"
    assert first.version == model_dir.name == "tiny-llama"
    assert generator.generate(make_request()) == first
    assert isinstance(generator, Generator)


def test_stream_yields_tokens_that_join_to_generate(generator: TransformersGenerator) -> None:
    deltas = list(generator.stream(make_request()))
    assert len(deltas) >= 3
    assert all(deltas)
    assert "".join(deltas) == generator.generate(make_request()).text


def test_closing_a_stream_early_stops_generation(generator: TransformersGenerator) -> None:
    stream = generator.stream(make_request())
    assert isinstance(stream, GeneratorType)
    next(stream)
    stream.close()
    assert not any(t.name == "teller-generate" for t in threading.enumerate())


def test_prompt_longer_than_the_context_is_refused(model_dir: Path) -> None:
    generator = TransformersGenerator(model_dir, max_new_tokens=10_000)
    with pytest.raises(GenerationError, match="context of 512"):
        generator.generate(make_request())
    with pytest.raises(GenerationError, match="context of 512"):
        list(generator.stream(make_request()))
