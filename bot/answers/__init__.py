"""Answer orchestration: route -> retrieve -> generate -> guard -> store."""

from bot.answers.pipeline import AnswerPipeline
from bot.answers.types import AnswerResult, Citation, StreamEvent

__all__ = ["AnswerPipeline", "AnswerResult", "Citation", "StreamEvent"]
