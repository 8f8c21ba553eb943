"""Switching the embedding model without downtime (`teller reindex --model DIR`).

1. `switch_embedding_model` re-embeds every chunk from SQL with the new model into a
   fresh embedded index folder beside the current one (which keeps serving), stores
   the new vectors in SQL, and then replaces `active-index.json` in the data dir
   atomically.
2. Every process starts on the model and index that file names (`with_active_index`),
   and a running API polls it (`bot.app`): when it changes, the API builds a new
   runtime beside the old one, sends new requests to it and closes the old one after
   a grace period.
3. Chunks written with another model in between (by a server that had not switched
   yet) are re-embedded by `reembed_stale`, which runs whenever a runtime is built.

The old index folder is kept; `teller reindex --rollback` switches back to the
previous model the same way (a fresh index, re-embedded, never a stale folder).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import update

from bot.settings import Settings
from db.chunk_lookup import stale_chunk_keys
from db.models import Chunk
from db.repository import embedding_to_bytes, iter_chunks, live_chunk_keys, load_chunks
from retrieval.types import Embedder, IndexBackend

if TYPE_CHECKING:
    from bot.knowledge import KnowledgeService

log = logging.getLogger(__name__)

ACTIVE_INDEX_FILE = "active-index.json"


def read_active_index(settings: Settings) -> dict[str, Any] | None:
    """What the last switch recorded (model, index dir, previous record), or None."""
    path = settings.data_dir / ACTIVE_INDEX_FILE
    if not path.is_file():
        return None
    record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return record


def active_index_stamp(settings: Settings) -> str | None:
    """A cheap token that changes whenever a switch is recorded (the file's mtime)."""
    try:
        return str((settings.data_dir / ACTIVE_INDEX_FILE).stat().st_mtime_ns)
    except FileNotFoundError:
        return None


def with_active_index(settings: Settings) -> Settings:
    """`settings` with the embedding model and index folder of the last switch.

    A recorded switch wins over `TELLER_EMBEDDING_MODEL`: the index holds vectors of
    the recorded model, so starting on another one would return nonsense. Only the
    embedded backend records switches.
    """
    record = read_active_index(settings) if settings.backend == "embedded" else None
    if record is None:
        return settings
    return settings.model_copy(
        update={
            "embedding_model": record["embedding_model"],
            "index_path": Path(record["index_dir"]),
        }
    )


def _embedding_text(row: Chunk) -> str:
    return f"{row.context}\n{row.text}" if row.context else row.text


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _embed_rows(embedder: Embedder, index: IndexBackend, rows: list[Chunk]) -> list[dict[str, Any]]:
    """Embed `rows` with `embedder`, upsert them into `index`; the SQL updates to make."""
    from bot.knowledge import indexed_chunk_from_row

    vectors = embedder.embed_documents([_embedding_text(r) for r in rows])
    index.upsert(
        [
            replace(indexed_chunk_from_row(r), embedding=v)
            for r, v in zip(rows, vectors, strict=True)
        ]
    )
    return [
        {"id": r.id, "embedding": embedding_to_bytes(v), "embedding_model": embedder.name}
        for r, v in zip(rows, vectors, strict=True)
    ]


def reembed_stale(knowledge: KnowledgeService, *, batch_size: int = 256) -> int:
    """Re-embed the chunks stored under another model than the knowledge service's
    (SQL and index); returns how many. Cheap when there are none (one indexed query)."""
    embedder, index = knowledge.embedder, knowledge.index
    total = 0
    with knowledge.write_lock:
        while True:
            with knowledge.sessions.begin() as session:
                keys = stale_chunk_keys(session, model=embedder.name, limit=batch_size)
                if not keys:
                    break
                session.execute(
                    update(Chunk), _embed_rows(embedder, index, load_chunks(session, keys=keys))
                )
            total += len(keys)
        if total:
            index.flush()
            log.info("re-embedded %d chunks stored under another model", total)
    return total


def switch_embedding_model(
    settings: Settings, model_dir: Path, *, batch_size: int = 256
) -> dict[str, Any]:
    """Re-embed every chunk from SQL with `model_dir` into a fresh index, then switch.

    The new embedded index is built in a new folder beside the current one, which keeps
    serving meanwhile. The new vectors go to SQL in one transaction (chunks written
    meanwhile are caught up in it), then `active-index.json` is replaced atomically.
    Returns a report with the new `index_dir`.
    """
    from bot.runtime import build_index, open_database
    from retrieval.embedder import SentenceTransformerEmbedder

    if settings.backend != "embedded":
        raise NotImplementedError(
            "switching the embedding model is implemented for the embedded index; on "
            "Elasticsearch set TELLER_EMBEDDING_MODEL and run `teller reindex` after "
            "re-ingesting"
        )
    started = time.perf_counter()
    embedder = SentenceTransformerEmbedder(model_dir, batch_size=settings.embedding_batch_size)
    embedder.load()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    target = settings.data_dir / f"index-{embedder.name}-{stamp}"
    engine, sessions = open_database(settings, migrate=True)
    index = build_index(settings.model_copy(update={"index_path": target}), embedder.dimension)
    try:
        updates: list[dict[str, Any]] = []
        with sessions() as session:
            for batch in iter_chunks(session, batch_size=batch_size):
                updates.extend(_embed_rows(embedder, index, batch))
        with sessions.begin() as session:
            if updates:
                session.execute(update(Chunk), updates)
            stale = stale_chunk_keys(session, model=embedder.name)
            if stale:  # written by a running server since the scan
                session.execute(
                    update(Chunk), _embed_rows(embedder, index, load_chunks(session, keys=stale))
                )
        with sessions() as session:
            gone = sorted(set(index.keys()) - live_chunk_keys(session))
        if gone:
            index.delete(gone)
        index.flush()
    finally:
        index.close()
        engine.dispose()
    record = {
        "index_dir": str(target),
        "embedding_model": str(Path(model_dir).absolute()),
        "embedding_model_name": embedder.name,
        "dimension": embedder.dimension,
        "chunks": len(updates) + len(stale) - len(gone),
        "switched_at": dt.datetime.now(dt.UTC).isoformat(),
        "previous": _without_history(read_active_index(settings)),
    }
    _write_atomically(settings.data_dir / ACTIVE_INDEX_FILE, json.dumps(record, indent=2))
    return {**record, "seconds": round(time.perf_counter() - started, 1)}


def _without_history(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """A record to keep as `previous` (one level deep, so the file stays small)."""
    return None if record is None else {k: v for k, v in record.items() if k != "previous"}


def rollback_target(settings: Settings) -> Path:
    """The model to go back to: the previous switch's, or the configured default."""
    record = read_active_index(settings)
    if record is None:
        raise LookupError("no model switch is recorded in this data dir; nothing to roll back")
    previous = record.get("previous")
    return Path(previous["embedding_model"] if previous else settings.embedding_model)
