"""Index maintenance commands: `export-index`, `import-index`, `index-status`.

Wire them into the main CLI with `register`::

    from bot import cli_index

    cli_index.register(app, _index_runtime, chunk_batches=_sql_chunk_batches)

* `get_context` — a zero-argument callable returning a context manager that yields
  the process's runtime: any object with `index` (an `IndexBackend`) and `embedder`
  (an `Embedder`). `open_index_runtime` builds one for these commands: unlike
  `bot.runtime.build_runtime` it neither checks an Elasticsearch index's layout nor
  reconciles the index with SQL, since these commands are how a broken index is
  repaired and an import must not be undone before it starts.
* `chunk_batches` — optional `(context, batch_size) -> batches of IndexedChunk`, the
  live chunks of the documents table with their stored embeddings. With it,
  `export-index` works on backends that cannot list their chunks (the embedded
  index) and `export-index --from-database` on any backend.

`teller reindex` is not here: it is `KnowledgeService.rebuild` (see `bot.cli`).

Every command prints one JSON object on success; failures print `error: ...` on
stderr and exit with status 2.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypeVar

import typer

from bot.cli_common import fail
from retrieval.errors import RetrievalError
from retrieval.index_transfer import (
    ChunkSource,
    export_index,
    import_index,
    iter_index_file,
    verify_index_file,
)
from retrieval.types import Embedder, IndexBackend, IndexedChunk

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from bot.knowledge import KnowledgeService
    from bot.settings import Settings


class IndexCommandContext(Protocol):
    """What the commands need from the runtime."""

    @property
    def index(self) -> IndexBackend: ...

    @property
    def embedder(self) -> Embedder: ...


ContextT = TypeVar("ContextT", bound=IndexCommandContext)
ContextFactory = Callable[[], AbstractContextManager[ContextT]]
ChunkBatchesFn = Callable[[ContextT, int], Iterable[Sequence[IndexedChunk]]]

BatchOption = Annotated[int, typer.Option("--batch-size", min=1, help="Chunks per request.")]


def _echo(payload: dict[str, Any]) -> None:
    typer.echo(json.dumps(payload, default=str))


def _flatten(batches: Iterable[Sequence[IndexedChunk]]) -> Iterator[IndexedChunk]:
    for batch in batches:
        yield from batch


def _reload(index: IndexBackend, batches: Iterable[Sequence[IndexedChunk]]) -> dict[str, Any]:
    """Replace the index's contents with `batches`, without downtime where the backend
    can (`reindex`), otherwise by emptying it and loading it again."""
    reindex = getattr(index, "reindex", None)
    if callable(reindex):
        name = reindex(_flatten(batches))
        return {"index": name, "count": index.count(), "zero_downtime": True}
    present = sorted(index.keys())
    if present:
        index.delete(present)
    for batch in batches:
        index.upsert(batch)
    index.flush()
    return {"count": index.count(), "zero_downtime": False}


@dataclass
class IndexRuntime:
    """The database, the embedding model, the index, and the knowledge service over
    them (for `KnowledgeService.rebuild`), as the maintenance commands need them."""

    engine: Engine
    sessions: sessionmaker[Session]
    embedder: Embedder
    index: IndexBackend
    knowledge: KnowledgeService

    def close(self) -> None:
        """Close the index and the database connections."""
        self.index.close()
        self.engine.dispose()


def open_index_runtime(settings: Settings, *, rebuild: bool = False) -> IndexRuntime:
    """Open the database, model and index for maintenance commands; close it when done.

    Unlike `bot.runtime.build_runtime`, an Elasticsearch alias is not checked or created
    (`ensure_index`) and the index is not reconciled with SQL: `teller reindex` must
    work on the broken alias or mapping that those checks reject, and reconciling
    before `import-index` would undo the import. Raises `DatabaseError` or
    `RetrievalError` with a message for the user.
    """
    from bot.knowledge import KnowledgeService
    from bot.reindex import with_active_index
    from bot.runtime import build_index, open_database
    from retrieval.embedded import EmbeddedIndex
    from retrieval.embedder import SentenceTransformerEmbedder
    from retrieval.errors import IncompatibleIndexError

    settings = with_active_index(settings)
    engine, sessions = open_database(settings, migrate=settings.should_auto_migrate)
    try:
        embedder = SentenceTransformerEmbedder(
            settings.embedding_model, batch_size=settings.embedding_batch_size
        )
        embedder.load()
        index: IndexBackend
        if settings.backend == "elasticsearch":
            from retrieval.elasticsearch import ElasticsearchIndex

            index = ElasticsearchIndex.from_settings(settings, embedder.dimension)
        else:
            try:
                index = build_index(settings, embedder.dimension)
            except IncompatibleIndexError:
                if not rebuild:
                    raise
                # SQL holds every chunk and embedding: set the old files aside, start empty.
                EmbeddedIndex.set_aside(settings.index_dir)
                index = build_index(settings, embedder.dimension)
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
    return IndexRuntime(engine, sessions, embedder, index, knowledge)


def register(
    app: typer.Typer,
    get_context: ContextFactory[ContextT],
    *,
    chunk_batches: ChunkBatchesFn[ContextT] | None = None,
) -> None:
    """Add the index commands to `app` (see the module docstring for the arguments)."""

    @app.command("export-index")
    def export_index_command(
        path: Annotated[Path, typer.Argument(help="Output file (.jsonl, or .jsonl.gz).")],
        batch_size: BatchOption = 500,
        from_database: Annotated[
            bool,
            typer.Option("--from-database", help="Read the chunks from SQL, not the index."),
        ] = False,
    ) -> None:
        """Write every chunk and its embedding to a JSON Lines file."""
        with get_context() as context:
            index, embedder = context.index, context.embedder
            if from_database or not isinstance(index, ChunkSource):
                if chunk_batches is None:
                    fail("this index cannot list its chunks; use --from-database")
                source: Any = chunk_batches(context, batch_size)
            else:
                source = index
            try:
                summary = export_index(
                    source,
                    path,
                    embedder=embedder.name,
                    dimension=embedder.dimension,
                    batch_size=batch_size,
                )
            except (RetrievalError, ValueError, OSError) as exc:
                fail(str(exc))
        _echo({"path": summary.path, "count": summary.count, "embedder": summary.embedder})

    @app.command("import-index")
    def import_index_command(
        path: Annotated[Path, typer.Argument(help="A file written by `teller export-index`.")],
        batch_size: BatchOption = 500,
        replace: Annotated[
            bool,
            typer.Option(
                "--replace",
                help="Make the index hold exactly the file's chunks (Elasticsearch: a new "
                "index version behind the alias, no downtime). Default: upsert.",
            ),
        ] = False,
    ) -> None:
        """Load an export into the configured index.

        The API reconciles the index with the database when it starts: chunks that the
        database does not hold are removed again, so import into a deployment whose
        database holds the same documents.
        """
        with get_context() as context:
            index, embedder = context.index, context.embedder
            try:
                header, count = verify_index_file(path)
                if header.dimension != embedder.dimension:
                    fail(
                        f"{path} holds {header.dimension}-dimensional vectors from "
                        f"{header.embedder!r}; the configured model makes {embedder.dimension}"
                    )
                if replace:
                    result = _reload(index, iter_index_file(path, batch_size))
                else:
                    ensure_index = getattr(index, "ensure_index", None)
                    if callable(ensure_index):  # upserts need the alias in place
                        ensure_index()
                    import_index(path, index, batch_size=batch_size)
                    result = {"count": index.count()}
            except (RetrievalError, ValueError, OSError) as exc:
                fail(str(exc))
        _echo({"path": path, "imported": count, "embedder": header.embedder, **result})

    @app.command("index-status")
    def index_status_command() -> None:
        """Print the index's readiness report (backend, alias, count, health)."""
        with get_context() as context:
            index = context.index
            health = getattr(index, "health", None)
            try:
                report = health() if callable(health) else {"ok": True, "count": index.count()}
            except RetrievalError as exc:
                fail(str(exc))
        _echo({"backend": type(index).__name__, **report})
        if not report.get("ok", False):
            raise typer.Exit(1)
