"""Answer generation: generators that cite passages, the prompt, and the grounding guard.

`ExtractiveComposer` (the default, no generative model), `TransformersGenerator` (a
local causal LM) and `OpenAICompatibleGenerator` (vLLM, TGI, Ollama...) implement the
`Generator` protocol; `check_grounding` verifies that every figure in an answer appears
in its sources. Importing this package loads neither torch nor transformers.
"""

from bot.generation.errors import GenerationError, GeneratorUnavailableError
from bot.generation.extractive import ExtractiveComposer, split_sentences
from bot.generation.factory import GeneratorKind, build_generator
from bot.generation.grounding import (
    Figure,
    FigureKind,
    GroundingReport,
    check_grounding,
    extract_figures,
)
from bot.generation.local_llm import TransformersGenerator
from bot.generation.openai_compat import OpenAICompatibleGenerator
from bot.generation.prompt import DEFAULT_SYSTEM_PROMPT, build_messages, neutralize
from bot.generation.types import (
    CITATION_MARKER,
    Generation,
    GenerationRequest,
    Generator,
    Passage,
    Turn,
    parse_citations,
    strip_citations,
    trim_deltas,
)

__all__ = [
    "CITATION_MARKER",
    "DEFAULT_SYSTEM_PROMPT",
    "ExtractiveComposer",
    "Figure",
    "FigureKind",
    "Generation",
    "GenerationError",
    "GenerationRequest",
    "Generator",
    "GeneratorKind",
    "GeneratorUnavailableError",
    "GroundingReport",
    "OpenAICompatibleGenerator",
    "Passage",
    "TransformersGenerator",
    "Turn",
    "build_generator",
    "build_messages",
    "check_grounding",
    "extract_figures",
    "neutralize",
    "parse_citations",
    "split_sentences",
    "strip_citations",
    "trim_deltas",
]
