"""Index maintenance commands: `export-index`, `import-index`, `index-status`, `reindex`.

Wire them into the main CLI with `register`::

    from bot import cli_index

    cli_index.register(app, _runtime, chunk_batches=live_chunk_batches)

* `get_context` — a zero-argument callable returning a context manager that yields
  the process's runtime: any object with `index` (an `IndexBackend`) and `embedder`
  (an `Embedder`); `bot.cli._runtime` fits.
* `chunk_batches` — optional `(context, batch_size) -> batches of IndexedChunk`, the
  live chunks of the documents table with their stored embeddings. With it,
  `export-index --from-database` works on any backend and a `reindex` command is
  registered: on Elasticsearch it builds a new index version and swaps the alias
  (no downtime); on other backends it empties the index and loads it again. Leave it
  out to keep an existing `reindex` command.

Every command prints one JSON object on success; failures print `error: ...` on
stderr and exit with status 2.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated, Any, NoReturn, Protocol

import typer

from retrieval.errors import RetrievalError
from retrieval.index_transfer import (
    ChunkSource,
    export_index,
    import_index,
    iter_index_file,
    verify_index_file,
)
from retrieval.types import Embedder, IndexBackend, IndexedChunk


class IndexCommandContext(Protocol):
    """What the commands need from the runtime."""

    @property
    def index(self) -> IndexBackend: ...

    @property
    def embedder(self) -> Embedder: ...


ContextFactory = Callable[[], AbstractContextManager[IndexCommandContext]]
ChunkBatchesFn = Callable[[IndexCommandContext, int], Iterable[Sequence[IndexedChunk]]]

BatchOption = Annotated[int, typer.Option("--batch-size", min=1, help="Chunks per request.")]


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


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


def register(
    app: typer.Typer,
    get_context: ContextFactory,
    *,
    chunk_batches: ChunkBatchesFn | None = None,
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
                    _fail("this index cannot list its chunks; use --from-database")
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
                _fail(str(exc))
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
                    _fail(
                        f"{path} holds {header.dimension}-dimensional vectors from "
                        f"{header.embedder!r}; the configured model makes {embedder.dimension}"
                    )
                if replace:
                    result = _reload(index, iter_index_file(path, batch_size))
                else:
                    import_index(path, index, batch_size=batch_size)
                    result = {"count": index.count()}
            except (RetrievalError, ValueError, OSError) as exc:
                _fail(str(exc))
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
                _fail(str(exc))
        _echo({"backend": type(index).__name__, **report})
        if not report.get("ok", False):
            raise typer.Exit(1)

    if chunk_batches is None:
        return

    @app.command("reindex")
    def reindex_command(batch_size: BatchOption = 1000) -> None:
        """Rebuild the index from the documents table (no re-embedding; on
        Elasticsearch a new index version replaces the old one without downtime)."""
        with get_context() as context:
            try:
                result = _reload(context.index, chunk_batches(context, batch_size))
            except (RetrievalError, ValueError) as exc:
                _fail(str(exc))
        _echo(result)
