"""Feedback-loop commands: API keys, dataset export, fine-tuning, reranker, benchmark.

Wire them into the main CLI with `register`::

    from bot import cli_feedback

    cli_feedback.register(app)  # finds the `bench` group by name, or pass bench=

- `teller keys create --scope S [--name N]`, `teller keys list`, `teller keys revoke ID`
- `teller export --format sft|kto|preference|retrieval --out FILE [filters]`
- `teller audit [--since] [--until] [--action] [--actor] [--json]`: the audit log
- `teller finetune retriever --data retrieval.jsonl --out DIR`
- `teller rerank train`, `teller rerank list`: the feedback reranker's adapter versions
- `teller bench feedback --train DIR --eval DIR --json`

Keys, export and
`rerank list` open the database only (never the index or the model), so they work
while the server runs. Failures print `error: ...` on stderr and exit with status 2.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_args

import typer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.cli_common import api_call, fail, load_settings, opened_runtime

if TYPE_CHECKING:
    from db.audit import AuditAction
    from db.models import ApiKey

keys_app = typer.Typer(help="API keys (shown once at creation).", no_args_is_help=True)
finetune_app = typer.Typer(help="Train models from exported feedback.", no_args_is_help=True)
rerank_app = typer.Typer(help="The feedback reranker's learned adapter.", no_args_is_help=True)


@contextmanager
def _sessions() -> Iterator[sessionmaker[Session]]:
    from bot.runtime import open_database
    from db.errors import DatabaseError

    try:
        engine, sessions = open_database(load_settings(), migrate=True)
    except DatabaseError as exc:
        fail(str(exc))
    try:
        yield sessions
    except DatabaseError as exc:
        fail(str(exc))
    finally:
        engine.dispose()


def _time(value: str | None, option: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r} is not an ISO date or time (e.g. 2026-01-31 or 2026-01-31T12:00)")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


# -- keys ------------------------------------------------------------------------------


def _audit_key(session: Session, action: AuditAction, row: ApiKey) -> None:
    """Record a key's creation or revocation in the transaction that makes it."""
    from db import audit

    details = {"name": row.name, "scopes": list(row.scopes)}
    audit.record(session, audit.Actor.cli(), action, target=row.id, details=details)


@keys_app.command("create")
def keys_create(
    scope: Annotated[
        list[str], typer.Option("--scope", help="export, agent or admin; repeatable.")
    ],
    name: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
) -> None:
    """Create an API key; it is printed once, on the last line, and never stored."""
    from db.api_keys import create_api_key

    with _sessions() as sessions:
        try:
            with sessions.begin() as session:
                row, key = create_api_key(session, name=name or "+".join(scope), scopes=scope)
                _audit_key(session, "keys.create", row)
        except ValueError as exc:
            fail(str(exc))
    typer.echo(f"created API key {row.id} ({row.name}; scopes: {', '.join(row.scopes)})")
    typer.echo("store it now, it is not shown again:", err=True)
    typer.echo(key)


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List API keys (ids, names, scopes, use and revocation; never the keys)."""
    from db.api_keys import list_api_keys

    with _sessions() as sessions, sessions() as session:
        rows: list[dict[str, Any]] = [
            {
                "id": r.id,
                "name": r.name,
                "scopes": list(r.scopes),
                "created_at": r.created_at.isoformat(),
                "last_used_at": r.last_used_at.isoformat() if r.last_used_at else None,
                "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
            }
            for r in list_api_keys(session)
        ]
    if as_json:
        typer.echo(json.dumps({"keys": rows}, indent=2))
        return
    for r in rows:
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        typer.echo(f"{r['id']}  {','.join(r['scopes']):<14} {state:<8}  {r['name']}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The id from `teller keys list`.")],
) -> None:
    """Revoke an API key at once (it stays listed)."""
    from db.api_keys import ApiKeyNotFound, revoke_api_key

    with _sessions() as sessions:
        try:
            with sessions.begin() as session:
                row = revoke_api_key(session, key_id=key_id)
                _audit_key(session, "keys.revoke", row)
        except ApiKeyNotFound as exc:
            fail(str(exc))
    typer.echo(f"revoked API key {key_id}")


# -- audit log ---------------------------------------------------------------------------


def audit_log(
    since: Annotated[str | None, typer.Option(help="Events at or after (ISO, UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="Events before (ISO, UTC).")] = None,
    action: Annotated[str | None, typer.Option(help="e.g. rates.load, keys.create.")] = None,
    actor: Annotated[
        str | None, typer.Option(help='"admin-token", "key:<id>", "cli:<user>" or "open".')
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Who changed documents, rate sheets, API keys or the reranker, and who exported
    feedback: the audit log, newest first."""
    from db import audit

    if action is not None and action not in audit.ACTIONS:
        fail(f"--action must be one of {', '.join(sorted(audit.ACTIONS))}")
    window = {"since": _time(since, "--since"), "until": _time(until, "--until")}
    with _sessions() as sessions, sessions() as session:
        events = [
            audit.event_dict(event)
            for event in audit.list_events(
                session,
                action=action,
                actor=actor,
                limit=limit,
                **window,
            )
        ]
    if as_json:
        typer.echo(json.dumps({"events": events}, indent=2))
        return
    for e in events:
        who = f"{e['actor']} ({e['actor_name']})" if e["actor_name"] else e["actor"]
        typer.echo(f"{e['at']}  {e['action']:<16} {who}  {e['target'] or '-'}")


# -- export and fine-tuning -------------------------------------------------------------


def export(
    format: Annotated[str, typer.Option("--format", help="sft, kto, preference or retrieval.")],
    out: Annotated[
        Path,
        typer.Option(
            help="FILE.jsonl: writes FILE.train/.validation.jsonl and FILE.manifest.json."
        ),
    ],
    since: Annotated[str | None, typer.Option(help="Votes at or after (ISO, UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="Votes before (ISO, UTC).")] = None,
    min_agreement: Annotated[float | None, typer.Option(min=0.0, max=1.0)] = None,
    rating: Annotated[str | None, typer.Option(help="up or down.")] = None,
    channel: Annotated[str | None, typer.Option()] = None,
    product: Annotated[str | None, typer.Option()] = None,
    reason: Annotated[str | None, typer.Option()] = None,
    validation_fraction: Annotated[float, typer.Option(min=0.0, max=0.99)] = 0.1,
    seed: Annotated[int, typer.Option()] = 13,
) -> None:
    """Write a redacted JSON Lines dataset from the feedback, with a manifest and a
    deterministic train/validation split."""
    from db import audit
    from feedback.capture import FeedbackService
    from feedback.datasets import export_audit_details
    from feedback.errors import ExportError
    from feedback.types import ExportFilters, ExportFormat, Rating

    # The choices come from the feedback package's types, imported here rather than as
    # the options' types: importing them at CLI start would slow every `teller` command.
    if format not in get_args(ExportFormat):
        fail(f"--format must be one of {', '.join(get_args(ExportFormat))}")
    if rating is not None and rating not in get_args(Rating):
        fail(f"--rating must be one of {', '.join(get_args(Rating))}")
    filters = ExportFilters(
        since=_time(since, "--since"),
        until=_time(until, "--until"),
        min_agreement=min_agreement,
        rating=rating,  # type: ignore[arg-type]
        channel=channel,
        product=product,
        reason=reason,
    )
    with _sessions() as sessions:
        try:
            result = FeedbackService(sessions).export(
                format, out, filters, validation_fraction=validation_fraction, seed=seed
            )
        except ExportError as exc:
            fail(str(exc))
        try:
            audit.record_committed(
                sessions,
                audit.Actor.cli(),
                "feedback.export",
                target=str(out.resolve()),
                details=export_audit_details(result, filters),
            )
        except BaseException as exc:
            # Keep only exports that are on record (the API does the same).
            for path in [*result.files.values(), result.manifest_path]:
                Path(path).unlink(missing_ok=True)
            if isinstance(exc, SQLAlchemyError):
                fail(
                    "the export could not be recorded in the audit log, so its files "
                    f"were removed: {exc}"
                )
            raise
    typer.echo(
        json.dumps(
            {
                "format": result.format,
                "files": dict(result.files),
                "manifest": result.manifest_path,
                "counts": dict(result.counts),
            },
            indent=2,
        )
    )


def _training_files(data: Path) -> tuple[Path, Path | None]:
    """`data`, or the `.train.jsonl` (and `.validation.jsonl`) an export wrote for it."""
    stem = data.with_suffix("") if data.suffix in {".jsonl", ".json"} else data
    train, validation = Path(f"{stem}.train.jsonl"), Path(f"{stem}.validation.jsonl")
    if data.is_file():
        return data, None
    if train.is_file():
        has_rows = validation.is_file() and validation.stat().st_size > 0
        return train, validation if has_rows else None
    fail(f"{data} not found (nor {train.name}); export with `teller export --format retrieval`")


@finetune_app.command("retriever")
def finetune_retriever_command(
    data: Annotated[Path, typer.Option(help="Retrieval triplets (the --out of `teller export`).")],
    out: Annotated[Path, typer.Option(help="New, empty directory for the model.")],
    base_model: Annotated[
        Path | None, typer.Option(help="Default: TELLER_EMBEDDING_MODEL.")
    ] = None,
    validation: Annotated[Path | None, typer.Option(help="Held-out triplets.")] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 1,
    batch_size: Annotated[int, typer.Option(min=2)] = 16,
    learning_rate: Annotated[float, typer.Option()] = 2e-5,
    seed: Annotated[int, typer.Option()] = 13,
    loss: Annotated[
        str,
        typer.Option(help="symmetric (queries and passages both ranked) or mnrl (passages only)."),
    ] = "symmetric",
) -> None:
    """Fine-tune the embedding model on retrieval triplets; prints the old-vs-new report.
    Switch to it with `teller reindex --model DIR`."""
    from feedback.errors import FinetuneError
    from feedback.finetune import finetune_retriever

    train, found_validation = _training_files(data)
    try:
        report = finetune_retriever(
            train,
            out,
            base_model=base_model or Path(load_settings().embedding_model),
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
            validation=validation or found_validation,
            loss=loss,
        )
    except FinetuneError as exc:
        fail(str(exc))
    typer.echo(json.dumps(report, indent=2))


# -- reranker ---------------------------------------------------------------------------


@rerank_app.command("train")
def rerank_train(
    api: Annotated[
        str | None,
        typer.Option("--api", help="Train inside the running Teller server at this URL."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = True,
) -> None:
    """Fit a new adapter on the live votes and store it (served when it validates).
    Locally it needs the index; while a server holds it, pass --api URL (sends
    TELLER_API_KEY or TELLER_ADMIN_TOKEN when set) and the server trains without
    stopping."""
    if api:
        report = api_call("POST", api.rstrip("/") + "/v1/reranker/train")
        typer.echo(json.dumps(report, indent=2 if not as_json else None))
        return
    from db.audit import Actor

    hint = "to train while it serves: teller rerank train --api http://HOST:PORT"
    with opened_runtime(in_use_hint=hint) as runtime:
        report = runtime.reranker.train(runtime.index.inner.search, actor=Actor.cli())
    typer.echo(json.dumps(report, indent=2 if not as_json else None))


@rerank_app.command("list")
def rerank_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Stored adapter versions, newest first (set TELLER_FEEDBACK_RERANK_VERSION to one
    of them to pin or roll back; "latest" serves the newest accepted one)."""
    from db.reranker_versions import list_reranker_versions

    with _sessions() as sessions, sessions() as session:
        rows: list[dict[str, Any]] = [
            {
                "id": r.id,
                "kind": r.kind,
                "embedding_model": r.embedding_model,
                "created_at": r.created_at.isoformat(),
                "metrics": dict(r.metrics),
            }
            for r in list_reranker_versions(session)
        ]
    if as_json:
        typer.echo(json.dumps({"versions": rows}, indent=2))
        return
    for r in rows:
        accepted = "accepted" if r["metrics"].get("accepted") else "rejected"
        typer.echo(f"{r['id']}  {r['created_at']}  {accepted}  {r['embedding_model']}")


# -- benchmark --------------------------------------------------------------------------


def bench_feedback_command(
    train: Annotated[Path, typer.Option(help="BEIR folder replayed by simulated users.")],
    eval: Annotated[Path, typer.Option("--eval", help="BEIR folder measured (held out).")],
    as_json: Annotated[bool, typer.Option("--json")] = True,
    seed: Annotated[int, typer.Option()] = 13,
    agent_rate: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.5,
    hostile_votes: Annotated[int, typer.Option(min=0)] = 2000,
    epochs: Annotated[int, typer.Option(min=1)] = 3,
    learning_rate: Annotated[float, typer.Option()] = 5e-5,
    triplets_per_query: Annotated[int, typer.Option(min=1)] = 1,
    loss: Annotated[str, typer.Option(help="Fine-tuning loss: symmetric or mnrl.")] = "symmetric",
    verbose: Annotated[bool, typer.Option("--progress", help="Timings on stderr.")] = False,
) -> None:
    """nDCG@10 on --eval before feedback, after reranking, after fine-tuning, poisoned."""
    from feedback.bench import bench_feedback
    from feedback.errors import FinetuneError

    for folder in (train, eval):
        if not (folder / "corpus.jsonl").exists():
            fail(f"{folder} has no corpus.jsonl")
    try:
        result = bench_feedback(
            load_settings(),
            train,
            eval,
            seed=seed,
            agent_rate=agent_rate,
            hostile_votes=hostile_votes,
            epochs=epochs,
            learning_rate=learning_rate,
            triplets_per_query=triplets_per_query,
            loss=loss,
            progress=(lambda line: typer.echo(line, err=True)) if verbose else (lambda _: None),
        )
    except FinetuneError as exc:
        fail(str(exc))
    typer.echo(json.dumps(result, indent=None if as_json else 2))


def bench_split_command(
    dataset: Annotated[Path, typer.Option(help="BEIR folder whose queries are split.")],
    out: Annotated[Path, typer.Option(help="Writes OUT/train and OUT/eval.")],
    split: Annotated[str, typer.Option(help="qrels/<split>.tsv to split.")] = "dev",
    fraction: Annotated[float, typer.Option(help="Share of queries in train.")] = 0.5,
    seed: Annotated[int, typer.Option()] = 13,
    folds: Annotated[
        int | None,
        typer.Option(help="Cross-validation: cut the queries in K parts (instead of --fraction)."),
    ] = None,
    fold: Annotated[int, typer.Option(help="With --folds: the part (from 0) used as eval.")] = 0,
) -> None:
    """Split a BEIR split's queries into seeded train/eval parts (for `bench feedback`)."""
    from feedback.bench import split_beir
    from retrieval.errors import DocumentParseError

    if not (dataset / "corpus.jsonl").exists():
        fail(f"{dataset} has no corpus.jsonl")
    if folds is None and not 0.0 < fraction < 1.0:
        fail("--fraction must be between 0 and 1")
    if folds is not None and (folds < 2 or not 0 <= fold < folds):
        fail(f"--folds must be at least 2 and --fold between 0 and {max(folds, 2) - 1}")
    if folds is None and fold:
        fail("--fold needs --folds")
    try:
        result = split_beir(
            dataset, out, split=split, fraction=fraction, seed=seed, folds=folds, fold=fold
        )
    except DocumentParseError as exc:
        fail(str(exc))
    typer.echo(json.dumps(result))


def register(app: typer.Typer, bench: typer.Typer | None = None) -> None:
    """Add `keys`, `export`, `audit`, `finetune`, `rerank` and `bench feedback` to `app`."""
    app.add_typer(keys_app, name="keys")
    app.add_typer(finetune_app, name="finetune")
    app.add_typer(rerank_app, name="rerank")
    app.command("export")(export)
    app.command("audit")(audit_log)
    if bench is None:
        bench = next((g.typer_instance for g in app.registered_groups if g.name == "bench"), None)
    if bench is not None:
        bench.command("feedback")(bench_feedback_command)
        bench.command("split")(bench_split_command)
