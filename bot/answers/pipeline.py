"""The answer pipeline: one question in, one grounded, stored answer out.

route (rate sheet or knowledge base) -> retrieve -> generate -> grounding guard ->
store (conversation, messages, answer with its full trace: `bot.answers.store`).

Rules a compliance officer can check:
- Rate questions are answered from the rate rows valid today only, quoting the
  stored numbers and their effective date; ambiguity becomes a clarifying question.
- Every figure in a generated answer must appear in a passage the answer cites;
  otherwise the answer is replaced by the extractive one (which quotes passages) and
  the event is logged and recorded in the trace.
- Weak retrieval (top passage below `min_confidence`, or below
  `min_confidence_agreed` when keyword and semantic search put the same document
  first) gives an honest "not covered" with a handoff offer instead of a guess; so
  does retrieval that cannot settle on a document (keyword and semantic search
  agreeing less than `min_support`), and so does an answer on a passage only weakly
  close in meaning (cosine under `coverage_below`) that does not mention what the
  question asks about (less than `min_coverage` of the question's content words, and
  `strict_coverage` under cosine `strict_coverage_below`: `bot.answers.coverage`).
- Sources are chosen by retrieval alone; text inside documents or messages cannot
  add sources or change these rules.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Generator as Generator_
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.answers.confidence import best_cosine, retriever_support
from bot.answers.convert import (
    citation_from_passage,
    grounding_trace,
    hit_trace,
    passage_from_hit,
    result_from_dict,
)
from bot.answers.coverage import CoverageCheck
from bot.answers.rewrite import chosen_question, rewrite_followup
from bot.answers.store import Draft, open_conversation, store_answer
from bot.answers.types import AnswerResult, Citation, StreamEvent
from bot.generation.grounding import check_grounding
from bot.generation.types import Generation, GenerationRequest, Generator, Turn
from bot.knowledge import KnowledgeService
from bot.rates import answer_rate_question, detect_rate_question
from db import rates as rates_repo
from retrieval.parsing import printable
from retrieval.types import SearchFilters, SearchRequest

log = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_CONVERSATION_ID = re.compile(r"^[A-Za-z0-9_-]{8,36}$")

HANDOFF_OFFER = "Would you like me to connect you with a person?"
ABSTAIN_TEXT = (
    "I'm sorry, our knowledge base doesn't cover that, and I won't guess about your "
    f"money. {HANDOFF_OFFER}"
)
NO_RATE_TEXT = (
    f"I don't have a current published rate for that, so I can't quote one. {HANDOFF_OFFER}"
)


AGREED = 0.999
"""`retriever_support` from which keyword and semantic search put the same document first
(exactly 1.0 then; the margin absorbs float rounding)."""


class ConversationIdError(ValueError):
    """A conversation id that is not 8-36 letters, digits, '-' or '_'."""


class EmptyMessageError(ValueError):
    """A message with no text once spaces and control characters are removed."""


class AnswerPipeline:
    """Answers questions from the rate sheet and the knowledge base, with citations."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        knowledge: KnowledgeService,
        generator: Generator,
        fallback: Generator,
        k: int = 5,
        min_confidence: float = 0.35,
        min_confidence_agreed: float = 0.25,
        min_support: float = 0.775,
        min_coverage: float = 0.25,
        coverage_below: float = 0.45,
        strict_coverage: float = 0.5,
        strict_coverage_below: float = 0.40,
        support_depth: int = 30,
        today: Callable[[], dt.date] = dt.date.today,
    ):
        if k < 1:
            raise ValueError("k must be at least 1")
        shares = {
            "min_confidence_agreed": min_confidence_agreed,
            "min_support": min_support,
            "min_coverage": min_coverage,
            "coverage_below": coverage_below,
            "strict_coverage": strict_coverage,
            "strict_coverage_below": strict_coverage_below,
        }
        for name, value in shares.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
        if support_depth < 1:
            raise ValueError("support_depth must be at least 1")
        self._sessions = sessions
        self.knowledge = knowledge
        self.generator = generator
        self.fallback = fallback
        self.k = k
        self.min_confidence = min_confidence
        self.min_confidence_agreed = min_confidence_agreed
        self.min_support = min_support
        self.min_coverage = min_coverage
        self.coverage_below = coverage_below
        self.strict_coverage = strict_coverage
        self.strict_coverage_below = strict_coverage_below
        self.support_depth = support_depth
        self._today = today

    # -- public API -------------------------------------------------------------------

    def answer(
        self,
        message: str,
        *,
        conversation_id: str | None = None,
        channel: str = "api",
        degraded: bool = False,
    ) -> AnswerResult:
        """Answer one message (see `stream` for the steps)."""
        final: AnswerResult | None = None
        for event in self.stream(
            message, conversation_id=conversation_id, channel=channel, degraded=degraded
        ):
            if event.event == "final":
                final = result_from_dict(event.data)
        assert final is not None
        return final

    def stream(
        self,
        message: str,
        *,
        conversation_id: str | None = None,
        channel: str = "api",
        degraded: bool = False,
    ) -> Iterator[StreamEvent]:
        """Yield `token` events as the answer is produced, then one `final` event.

        `degraded` marks (and stores) an answer given without the Rasa front end
        because it was unreachable.
        """
        message = printable(message).strip()
        if not message:
            raise EmptyMessageError("the message is empty; type a question")
        if conversation_id is not None and not _CONVERSATION_ID.match(conversation_id):
            raise ConversationIdError(
                "conversation_id must be 8-36 letters, digits, '-' or '_'; omit it to start one"
            )
        started = time.perf_counter()
        timings: dict[str, float] = {}
        conversation_id, history, offered = open_conversation(
            self._sessions, conversation_id, channel
        )
        rewritten = chosen_question(message, offered) or rewrite_followup(
            message, [t.text for t in history if t.role == "user"]
        )
        today = self._today()

        with self._sessions() as session:
            products = rates_repo.list_products(session)
        rate_query = detect_rate_question(rewritten, products=products)
        if rate_query is not None:
            draft = self._rate_answer(rate_query, today)
            timings["rates"] = _ms(started)
            yield from _word_tokens(draft.text)
        else:
            draft = yield from self._knowledge(rewritten, history, today, timings)

        timings["total"] = _ms(started)
        result = store_answer(
            self._sessions,
            conversation_id=conversation_id,
            channel=channel,
            question=message,
            rewritten=rewritten,
            draft=draft,
            timings=timings,
            degraded=degraded,
        )
        yield StreamEvent("final", result.as_dict())

    # -- steps ------------------------------------------------------------------------

    def _rate_answer(self, query: Any, today: dt.date) -> Draft:
        with self._sessions() as session:
            rows = rates_repo.current_rates(session, on=today)
        answer = answer_rate_question(query, rows, today=today)
        citations = [
            Citation(
                number=i,
                kind="rate",
                title=source.title,
                rate_row_id=source.row_id,
                snippet=source.text,
            )
            for i, source in enumerate(answer.sources, start=1)
        ]
        trace = {
            "route": "rates",
            "rate_query": answer.query_dict(),
            "rate_rows": [s.row_id for s in answer.sources],
            "on": today.isoformat(),
        }
        if answer.status != "options":
            # A quote's figures come from its rows; a "none" answer may also echo the
            # question ("a 5/1 ARM") beside the terms of the rows it offers instead.
            evidence = [s.text for s in answer.sources]
            if answer.status == "none":
                evidence.append(query.text)
            report = check_grounding(answer.text, evidence)
            trace["grounding"] = grounding_trace(report)
            if not report.ok:  # cannot happen unless the renderer is broken: refuse
                log.error("rate answer failed the grounding guard: %s", report.unsupported)
                return Draft("abstain", NO_RATE_TEXT, [], 0.0, True, trace, "rates", "1", [])
        if answer.status == "quoted":
            return Draft("rate", answer.text, citations, 1.0, False, trace, "rates", "1", [])
        if answer.choices:  # "options", or "none" with what we do have
            trace["choice_queries"] = {c.label: c.query for c in answer.choices}  # for a click
            choices = [c.label for c in answer.choices]
            return Draft(
                "clarification", answer.text, citations, 1.0, False, trace, "rates", "1", choices
            )
        text = f"{answer.text} {HANDOFF_OFFER}"
        return Draft("abstain", text, [], 0.0, True, trace, "rates", "1", [])

    def _knowledge(
        self, query: str, history: Sequence[Turn], today: dt.date, timings: dict[str, float]
    ) -> Generator_[StreamEvent, None, Draft]:
        t0 = time.perf_counter()
        filters = SearchFilters(valid_on=today)
        # Agreement is judged over a deep list (30 by default: as deep as the feedback
        # reranker looks, so no extra search); only the first k hits become passages.
        depth = max(self.k, self.support_depth)
        result = self.knowledge.search(SearchRequest(query=query, k=depth, filters=filters))
        timings["retrieve"] = _ms(t0)
        hits = result.hits[: self.k]
        passages = [passage_from_hit(i, hit) for i, hit in enumerate(hits, start=1)]
        confidence = best_cosine(hits)
        support = retriever_support(result.hits)
        # Both retrievers putting the same document first is evidence too ("How do I top
        # up my account?" finds "Topping up your account" first on both at cosine 0.30):
        # the floor is lower then, and the coverage check still has to pass.
        agreed = support is not None and support >= AGREED
        floor = self.min_confidence
        if agreed:
            floor = min(floor, self.min_confidence_agreed)
        trace: dict[str, Any] = {
            "route": "knowledge",
            "filters": {"valid_on": today.isoformat()},
            "retrieved": [hit_trace(h) for h in hits],
            "reranker_version": result.reranker_version,
            "confidence": confidence,
            "min_confidence": floor,
            "retrievers_agree": agreed,
            "support": support,
            "min_support": self.min_support,
        }
        if not hits or confidence < floor:
            trace["abstain_reason"] = "no passage above the confidence threshold"
            yield from _word_tokens(ABSTAIN_TEXT)
            return self._abstain(trace, confidence)
        if support is not None and support < self.min_support:
            trace["abstain_reason"] = "keyword and semantic search disagree on the best document"
            yield from _word_tokens(ABSTAIN_TEXT)
            return self._abstain(trace, confidence)
        # Any answer is made from these passages: when all of them together do not
        # mention what the question asks about, no answer can, so nothing is generated.
        check = self.coverage_check(query)
        covered = check.of([p.text for p in passages], [p.heading for p in passages], confidence)
        if check.fails(covered):
            trace["coverage"] = check.trace(covered)
            trace["abstain_reason"] = "the passages do not mention what the question asks about"
            yield from _word_tokens(ABSTAIN_TEXT)
            return self._abstain(trace, confidence)

        request = GenerationRequest(question=query, passages=passages, history=history)
        t1 = time.perf_counter()
        sources = {p.number: p.text for p in passages}
        emitted: list[str] = []
        produced: list[str] = []
        buffer = ""
        unsafe = False
        for delta in self.generator.stream(request):
            produced.append(delta)
            buffer += delta
            # Release only whole sentences whose figures all appear in a retrieved passage.
            while not unsafe and (match := _SENTENCE_END.search(buffer)):
                sentence, buffer = buffer[: match.end()], buffer[match.end() :]
                if check_grounding(sentence, list(sources.values())).ok:
                    emitted.append(sentence)
                    yield StreamEvent("token", {"text": sentence})
                else:
                    unsafe = True
        if buffer and not unsafe and check_grounding(buffer, list(sources.values())).ok:
            emitted.append(buffer)
            yield StreamEvent("token", {"text": buffer})
        full_text = "".join(produced).strip()
        generation = Generation(
            text=full_text,
            cited=_cited(full_text, len(passages)),
            generator=self.generator.name,
            version=self.generator.version,
        )
        timings["generate"] = _ms(t1)
        draft_text, cited, report, replaced = self._guard(generation, request, sources)
        trace["grounding"] = {**report, "replaced": replaced}
        if not draft_text:
            trace["abstain_reason"] = "no sentence of the passages answers the question"
            yield from _word_tokens(ABSTAIN_TEXT)
            return self._abstain(trace, confidence)
        name = self.fallback.name if replaced else self.generator.name
        version = self.fallback.version if replaced else self.generator.version
        # The answer's own words when the extractive composer wrote it (its sentences
        # are the passages'), else the cited passages: a generative model can repeat the
        # question's words over passages about something else.
        shown_passages = [passages[n - 1] for n in cited]
        shown = [draft_text] if name == self.fallback.name else [p.text for p in shown_passages]
        covered = check.of(shown, [p.heading for p in shown_passages], confidence)
        trace["coverage"] = check.trace(covered)
        if check.fails(covered):
            trace["abstain_reason"] = "the answer does not mention what the question asks about"
            yield StreamEvent("token", {"replace": True, "text": ABSTAIN_TEXT})
            return self._abstain(trace, confidence)
        citations = [citation_from_passage(passages[n - 1]) for n in cited]
        if replaced or unsafe:
            # The client replaces what it showed with the final event's text.
            yield StreamEvent("token", {"replace": True, "text": draft_text})
        return Draft(
            "knowledge", draft_text, citations, confidence, False, trace, name, version, []
        )

    def thresholds(self) -> dict[str, float]:
        """The settings that decide whether a knowledge answer is given (for reports)."""
        return {
            "min_confidence": self.min_confidence,
            "min_confidence_agreed": self.min_confidence_agreed,
            "min_support": self.min_support,
            "min_coverage": self.min_coverage,
            "coverage_below": self.coverage_below,
            "strict_coverage": self.strict_coverage,
            "strict_coverage_below": self.strict_coverage_below,
        }

    def coverage_check(self, question: str) -> CoverageCheck:
        """The coverage test of `question` with this pipeline's thresholds and index."""
        return CoverageCheck(
            question,
            minimum=self.min_coverage,
            below=self.coverage_below,
            strict=self.strict_coverage,
            strict_below=self.strict_coverage_below,
            count=self.knowledge.index.document_frequencies,
        )

    def _abstain(self, trace: dict[str, Any], confidence: float) -> Draft:
        return Draft(
            "abstain",
            ABSTAIN_TEXT,
            [],
            confidence,
            True,
            trace,
            self.generator.name,
            self.generator.version,
            [],
        )

    def _guard(
        self, generation: Generation, request: GenerationRequest, sources: dict[int, str]
    ) -> tuple[str, tuple[int, ...], dict[str, Any], bool]:
        """Check every figure against the cited passages; fall back to extraction."""
        cited_sources = [sources[n] for n in generation.cited if n in sources]
        report = check_grounding(generation.text, cited_sources)
        if generation.text and generation.cited and report.ok:
            return generation.text, generation.cited, grounding_trace(report), False
        if generation.generator != self.fallback.name:
            log.warning(
                "generator %s answer replaced by the extractive one: unsupported figures %s",
                generation.generator,
                report.unsupported,
            )
        fallback = self.fallback.generate(request)
        fallback_report = check_grounding(
            fallback.text, [sources[n] for n in fallback.cited if n in sources]
        )
        if not fallback.text or not fallback_report.ok:
            return "", (), grounding_trace(fallback_report), True
        return fallback.text, fallback.cited, grounding_trace(report), True


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1e3


def _word_tokens(text: str) -> Iterator[StreamEvent]:
    for piece in re.findall(r"\S+\s*", text):
        yield StreamEvent("token", {"text": piece})


def _cited(text: str, count: int) -> tuple[int, ...]:
    from bot.generation.types import parse_citations

    return parse_citations(text, count)
