"""The `teller` command line: migrate, ingest, search, reindex, ask, demo load, and the
wiring of the commands kept in the other `bot.cli_*` modules: `serve` (`bot.cli_serve`),
the benchmarks of `teller bench` (`bot.cli_bench`, `bot.cli_feedback`), the index
maintenance commands (`bot.cli_index`: export-index, import-index, index-status), rates
(`bot.cli_rates`), screenshots (`bot.cli_web`), and keys, export, finetune and rerank
(`bot.cli_feedback`)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot import cli_bench, cli_feedback, cli_index, cli_rates, cli_serve, cli_web
from bot.cli_common import api_call, fail, load_settings, opened_runtime

if TYPE_CHECKING:
    from retrieval.types import IndexedChunk

app = typer.Typer(help="Teller: grounded customer-service answers for banks.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks; each prints one JSON object.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo knowledge base of a fictional bank.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(demo_app, name="demo")


ApiOption = Annotated[
    str | None,
    typer.Option("--api", help="Send the request to a running Teller server at this URL."),
]


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


cli_serve.register(app)  # first in `teller --help`


@app.command()
def migrate() -> None:
    """Upgrade the database schema to the newest revision."""
    from db.errors import DatabaseError
    from db.migrate import current_revision, upgrade

    settings = load_settings()
    settings.ensure_dirs()
    try:
        upgrade(settings.sqlalchemy_url)
        typer.echo(f"database at revision {current_revision(settings.sqlalchemy_url)}")
    except DatabaseError as exc:
        fail(str(exc))


def _expand(paths: list[Path]) -> Iterator[Path]:
    from retrieval.parsers import SUPPORTED_EXTENSIONS

    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in SUPPORTED_EXTENSIONS:
                    yield child
        else:
            yield path


def _print_outcomes(outcomes: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"results": outcomes}, indent=2))
        return
    for o in outcomes:
        if o["status"] == "failed":
            typer.secho(f"failed     {o['source']}: {o['error']}", fg=typer.colors.RED, err=True)
        else:
            typer.echo(
                f"{o['status']:<10} {o['doc_id']} (v{o['version'] or '-'}, {o['chunks']} chunks)"
            )
    failed = sum(o["status"] == "failed" for o in outcomes)
    typer.echo(f"{len(outcomes) - failed} ok, {failed} failed")


@app.command()
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders.")] = None,
    beir: Annotated[Path | None, typer.Option(help="A BEIR folder with corpus.jsonl.")] = None,
    api: ApiOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Add or update documents (Markdown, HTML, text, PDF, CSV, JSON Lines)."""
    from dataclasses import asdict

    from bot.knowledge import audit_ingest
    from db.audit import Actor

    if not paths and beir is None:
        fail("give files or folders to ingest, or --beir DIR")
    files = list(_expand(paths or []))
    missing = [str(p) for p in files if not p.exists()]
    if missing:
        fail("not found: " + ", ".join(missing))
    if api:
        if beir is not None:
            fail("--beir cannot be combined with --api; ingest the folder locally")
        outcomes: list[dict[str, Any]] = []
        for path in files:
            body = api_call(
                "POST",
                api.rstrip("/") + "/v1/documents",
                files=[("files", (path.name, path.read_bytes()))],
            )
            outcomes.extend(body["results"])
    else:
        with opened_runtime() as runtime:
            results = runtime.knowledge.ingest_files((p.name, p.read_bytes(), None) for p in files)
            if beir is not None:
                from retrieval.errors import RetrievalError
                from retrieval.parsers import load_beir_corpus

                try:
                    docs = list(load_beir_corpus(beir))
                except RetrievalError as exc:
                    fail(str(exc))
                results += runtime.knowledge.ingest_documents(docs)
            audit_ingest(runtime.sessions, Actor.cli(), results)
            outcomes = [asdict(o) for o in results]
    _print_outcomes(outcomes, as_json)
    if outcomes and all(o["status"] == "failed" for o in outcomes):
        raise typer.Exit(1)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="The question.")],
    k: Annotated[int, typer.Option("--k", min=1, max=100)] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, bm25 or dense.")] = "hybrid",
    product: Annotated[str | None, typer.Option()] = None,
    document_type: Annotated[str | None, typer.Option("--type")] = None,
    valid_on: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    api: ApiOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Search the knowledge base and show passages with their scores."""
    from retrieval.parsing import printable

    query = printable(query).strip()
    if not query:
        fail("the query is empty; type what to search for")
    if mode not in ("hybrid", "bm25", "dense"):
        fail("--mode must be hybrid, bm25 or dense")
    filters = {"product": product, "document_type": document_type, "valid_on": valid_on}
    if api:
        body = api_call(
            "POST",
            api.rstrip("/") + "/v1/search",
            json={"query": query, "k": k, "mode": mode, "filters": filters},
        )
    else:
        from bot.api.routes.search import to_search_out
        from retrieval.types import SearchFilters, SearchRequest

        try:
            day = dt.date.fromisoformat(valid_on) if valid_on else None
        except ValueError:
            fail(f"--valid-on {valid_on!r} is not a YYYY-MM-DD date")
        request = SearchRequest(
            query=query,
            k=k,
            mode=mode,  # type: ignore[arg-type]
            filters=SearchFilters(product=product, document_type=document_type, valid_on=day),
        )
        with opened_runtime() as runtime:
            body = to_search_out(query, mode, runtime.knowledge.search(request)).model_dump()
    if as_json:
        typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
        return
    if not body["hits"]:
        typer.echo("no passages found")
    for hit in body["hits"]:
        section = [s for s in hit["section"] if s != hit["title"]]
        where = " › ".join(p for p in [hit["title"], *section] if p) or hit["doc_id"]
        bm25 = "-" if hit["bm25_score"] is None else f"{hit['bm25_score']:.2f}"
        dense = "-" if hit["dense_score"] is None else f"{hit['dense_score']:.3f}"
        typer.secho(f"{hit['rank']}. {where}  [{hit['doc_id']} v{hit['version']}]", bold=True)
        typer.echo(f"   fused {hit['score']:.3f}  bm25 {bm25}  dense {dense}")
        typer.echo("   " + hit["text"][:300].replace("\n", " "))


@app.command()
def reindex(
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Chunks read from SQL at a time.")
    ] = 1000,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="Switch to this sentence-transformers model folder (for example one "
            "written by `teller finetune retriever`): every chunk is re-embedded into a "
            "new index while the old one keeps serving; a running API switches within "
            "TELLER_RELOAD_POLL_S seconds.",
        ),
    ] = None,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Switch back to the previous model the same way.")
    ] = False,
) -> None:
    """Rebuild the index from the database (no re-embedding), or switch the embedding
    model (--model, --rollback). On Elasticsearch a rebuild builds a new index version
    that replaces the old one behind the alias, without downtime."""
    from db.errors import DatabaseError
    from retrieval.errors import RetrievalError

    if model is not None or rollback:
        _switch_model(model, rollback=rollback)
        return
    with _index_runtime(rebuild=True) as runtime:
        try:
            report = runtime.knowledge.rebuild(batch_size=batch_size)
        except (DatabaseError, RetrievalError) as exc:
            fail(str(exc))
    typer.echo(f"index rebuilt: {report.total} chunks")


def _switch_model(model: Path | None, *, rollback: bool) -> None:
    from bot.reindex import rollback_target, switch_embedding_model
    from bot.runtime import open_database
    from db import audit
    from db.errors import DatabaseError
    from retrieval.errors import RetrievalError

    settings = load_settings()
    if model is not None and rollback:
        fail("give either --model DIR or --rollback, not both")
    try:
        target = rollback_target(settings) if rollback else model
    except LookupError as exc:
        fail(str(exc))
    assert target is not None
    if not (target / "config.json").is_file() and not (target / "modules.json").is_file():
        fail(f"{target} is not a sentence-transformers model folder (no modules.json)")
    try:
        report = switch_embedding_model(settings, target)
        shown = {k: v for k, v in report.items() if k != "previous"}
        engine, sessions = open_database(settings, migrate=False)
        try:
            audit.record_committed(
                sessions,
                audit.Actor.cli(),
                "index.model_switch",
                target=str(report.get("embedding_model_name")),
                details={"model_dir": str(target.resolve()), "rollback": rollback, **shown},
            )
        finally:
            engine.dispose()
    except NotImplementedError as exc:
        fail(str(exc))
    except (DatabaseError, RetrievalError) as exc:
        fail(str(exc))
    typer.echo(json.dumps(shown))


@demo_app.command("load")
def demo_load() -> None:
    """Load the demo bank's knowledge base and rate sheet (idempotent)."""
    from dataclasses import asdict

    from bot.demo_bank import DEMO_RATES, load_demo_bank
    from db.audit import Actor

    with opened_runtime() as runtime:
        loaded = load_demo_bank(runtime.knowledge, runtime.sessions, Actor.cli())
    _print_outcomes([asdict(o) for o in loaded.documents], as_json=False)
    if loaded.rate_rows is None:
        typer.echo(f"unchanged  rate sheet {DEMO_RATES.name}")
    else:
        typer.echo(f"created    rate sheet {DEMO_RATES.name} ({loaded.rate_rows} rows)")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, as a customer would ask it.")],
    conversation: Annotated[
        str | None, typer.Option("--conversation", help="Continue this conversation id.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Answer a question with the full pipeline (rates, retrieval, generator, guard)."""
    from bot.answers.pipeline import ConversationIdError, EmptyMessageError

    with opened_runtime() as runtime:
        try:
            result = runtime.answers.answer(question, conversation_id=conversation, channel="cli")
        except (ConversationIdError, EmptyMessageError) as exc:
            fail(str(exc))
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
        return
    typer.echo(result.text)
    for citation in result.citations:
        where = " › ".join([citation.title, *citation.section])
        ref = citation.doc_id or f"rate row {citation.rate_row_id}"
        typer.secho(f"  [{citation.number}] {where} ({ref})", dim=True)
    if result.handoff_reference:
        typer.secho(f"  handoff reference: {result.handoff_reference}", dim=True)
    typer.secho(
        f"  conversation {result.conversation_id} · answer {result.answer_id} · "
        f"confidence {result.confidence:.2f}",
        dim=True,
    )


# -- index maintenance: reindex above, export-index, import-index, index-status ---------


@contextmanager
def _index_runtime(*, rebuild: bool = False) -> Iterator[cli_index.IndexRuntime]:
    """Like `_runtime`, but the index is neither checked nor reconciled on opening
    (`cli_index.open_index_runtime`): these commands are how a broken index is repaired."""
    from db.errors import DatabaseError
    from retrieval.errors import RetrievalError

    try:
        runtime = cli_index.open_index_runtime(load_settings(), rebuild=rebuild)
    except (DatabaseError, RetrievalError) as exc:
        fail(str(exc))
    try:
        yield runtime
    finally:
        runtime.close()


def _sql_chunk_batches(
    runtime: cli_index.IndexRuntime, batch_size: int
) -> Iterator[list[IndexedChunk]]:
    """The documents table's chunks with their stored embeddings, `batch_size` at a time."""
    from bot.knowledge import indexed_chunk_from_row
    from db.repository import iter_chunks

    with runtime.sessions() as session:
        for batch in iter_chunks(session, batch_size=batch_size):
            yield [indexed_chunk_from_row(row) for row in batch]


cli_index.register(app, _index_runtime, chunk_batches=_sql_chunk_batches)
cli_rates.register(app)
cli_web.register(app)
cli_bench.register(bench_app)
cli_feedback.register(app, bench_app)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
