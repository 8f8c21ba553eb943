"""Builds the long-lived parts of a Teller process once: database, model, index.

The API (in its lifespan) and the CLI both use `Runtime`, so a command and the
server behave identically and the embedding model is loaded once per process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.answers.pipeline import AnswerPipeline
from bot.dialogue import DialogueService, RasaClient
from bot.generation.extractive import ExtractiveComposer
from bot.generation.factory import build_generator
from bot.generation.types import Generator
from bot.knowledge import KnowledgeService
from bot.reindex import active_index_stamp, reembed_stale, with_active_index
from bot.settings import Settings
from db.migrate import upgrade
from db.session import check_connection, make_engine, make_session_factory
from feedback.rerank import FeedbackReranker, RerankedIndex
from feedback.rerank_math import RerankConfig
from retrieval.embedded import EmbeddedIndex
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.types import IndexBackend

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """`settings` are the effective ones (after `with_active_index`); `index` is the
    backend wrapped in the feedback reranker; `active_stamp` identifies the model switch
    it was built for (`bot.reindex.active_index_stamp`)."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    embedder: SentenceTransformerEmbedder
    index: RerankedIndex
    knowledge: KnowledgeService
    answers: AnswerPipeline
    dialogue: DialogueService
    active_stamp: str | None = None

    @property
    def reranker(self) -> FeedbackReranker:
        return self.index.reranker

    def close(self) -> None:
        if self.dialogue.rasa is not None:
            self.dialogue.rasa.close()
        self.index.close()
        self.engine.dispose()


def open_database(settings: Settings, *, migrate: bool) -> tuple[Engine, sessionmaker[Session]]:
    settings.ensure_dirs()
    engine = make_engine(settings.sqlalchemy_url)
    check_connection(engine)
    if migrate:
        upgrade(settings.sqlalchemy_url)
    return engine, make_session_factory(engine)


def build_index(settings: Settings, dimension: int) -> IndexBackend:
    if settings.backend == "elasticsearch":
        from retrieval.elasticsearch import ElasticsearchIndex

        es = ElasticsearchIndex.from_settings(settings, dimension)
        es.ensure_index()
        return es
    return EmbeddedIndex(
        settings.index_dir,
        dimension=dimension,
        fusion=settings.fusion,
        dense_weight=settings.fusion_dense_weight,
        rrf_k=settings.rrf_k,
        candidates=settings.candidates,
    ).open()


def build_runtime(settings: Settings, *, migrate: bool | None = None) -> Runtime:
    """Open the database (migrating if asked), load the model, open and reconcile the
    index; the model and index are those of the last `teller reindex --model` switch."""
    stamp = active_index_stamp(settings)
    settings = with_active_index(settings)
    engine, sessions = open_database(
        settings, migrate=settings.should_auto_migrate if migrate is None else migrate
    )
    try:
        embedder = SentenceTransformerEmbedder(
            settings.embedding_model, batch_size=settings.embedding_batch_size
        )
        embedder.load()
        reranker = FeedbackReranker(sessions, embedder, RerankConfig.from_settings(settings))
        index = RerankedIndex(build_index(settings, embedder.dimension), reranker)
    except BaseException:
        engine.dispose()
        raise
    knowledge = KnowledgeService(
        session_factory=sessions,
        index=index,
        embedder=embedder,
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        max_upload_bytes=settings.max_upload_bytes,
    )
    try:
        answers = build_answer_pipeline(settings, sessions, knowledge, embedder)
    except BaseException:
        index.close()
        engine.dispose()
        raise
    rasa = (
        RasaClient(
            settings.rasa_url,
            settings.rasa_timeout_s,
            token=settings.rasa_token.get_secret_value() if settings.rasa_token else None,
        )
        if settings.rasa_url
        else None
    )
    dialogue = DialogueService(rasa, answers)
    runtime = Runtime(
        settings, engine, sessions, embedder, index, knowledge, answers, dialogue, stamp
    )
    try:
        reembed_stale(knowledge)
        report = knowledge.reconcile()
    except BaseException:
        runtime.close()
        raise
    log.info(
        "index ready: %d chunks (%d added, %d removed by reconcile)",
        report.total,
        report.added,
        report.removed,
    )
    return runtime


def build_answer_pipeline(
    settings: Settings,
    sessions: sessionmaker[Session],
    knowledge: KnowledgeService,
    embedder: SentenceTransformerEmbedder,
) -> AnswerPipeline:
    """The configured generator (loaded now) with the extractive composer as fallback."""
    fallback = ExtractiveComposer(embedder)
    generator: Generator = fallback
    if settings.generator != "extractive":
        generator = build_generator(
            settings.generator,
            embedder,
            model_dir=settings.generator_model_dir,
            base_url=settings.generator_url,
            model=settings.generator_model,
            api_key=settings.generator_api_key,
            timeout_s=settings.generator_timeout_s,
        )
        load = getattr(generator, "load", None)
        if callable(load):
            load()
    return AnswerPipeline(
        sessions=sessions,
        knowledge=knowledge,
        generator=generator,
        fallback=fallback,
        k=settings.answer_passages,
        min_confidence=settings.min_confidence,
        min_confidence_agreed=settings.min_confidence_agreed,
        min_support=settings.min_support,
        min_coverage=settings.min_coverage,
        coverage_below=settings.coverage_below,
        strict_coverage=settings.strict_coverage,
        strict_coverage_below=settings.strict_coverage_below,
    )
