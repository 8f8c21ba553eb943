"""Export and import an index's chunks as JSON Lines, between any two backends.

File layout (UTF-8, one JSON object per line; gzip-compressed when the name ends in
`.gz`):

1. header: ``{"type": "header", "format": "teller-index", "format_version": 1,
   "embedder": NAME, "dimension": D, "created_at": ISO-8601}``
2. one line per chunk: every `IndexedChunk` field, with ``"type": "chunk"`` and the
   embedding as base64 of its little-endian float32 bytes (4·D bytes);
3. footer: ``{"type": "footer", "count": N, "sha256": HEX}``, the hash being over the
   chunk lines' bytes, so a truncated or edited file is refused before anything is
   imported.

Reading goes through a callable that yields batches of chunks (an `iter_chunks`
method, such as `ElasticsearchIndex.iter_chunks`, or any function), and writing through
`IndexBackend.upsert`, so neither side needs to know the other's backend.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, cast, runtime_checkable

import numpy as np

from retrieval.errors import DocumentParseError, IndexUnavailableError
from retrieval.types import IndexBackend, IndexedChunk

FORMAT = "teller-index"
FORMAT_VERSION = 1

ChunkBatches = Iterable[Sequence[IndexedChunk]]


@runtime_checkable
class ChunkSource(Protocol):
    """A backend that can list its chunks with their embeddings."""

    def iter_chunks(self, batch_size: int = ...) -> ChunkBatches: ...


ChunkReader = Callable[[], ChunkBatches]


@dataclass(frozen=True, slots=True)
class IndexFileHeader:
    embedder: str
    dimension: int
    created_at: str
    format_version: int = FORMAT_VERSION


@dataclass(frozen=True, slots=True)
class TransferSummary:
    """What an export or import moved."""

    path: Path
    count: int
    embedder: str
    dimension: int


def encode_embedding(vector: np.ndarray[Any, Any]) -> str:
    """Base64 of the vector's little-endian float32 bytes."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_embedding(text: str, dimension: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Inverse of `encode_embedding`; checks the length against `dimension`."""
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 4 * dimension:
        raise ValueError(f"embedding has {len(raw) // 4} values, expected {dimension}")
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def chunk_to_line(chunk: IndexedChunk, dimension: int) -> str:
    """One chunk as a JSON line (no newline)."""
    if chunk.embedding is None:
        raise ValueError(f"chunk {chunk.key} has no embedding; an export needs every vector")
    if chunk.embedding.shape != (dimension,):
        raise ValueError(
            f"chunk {chunk.key} has a {chunk.embedding.shape} embedding, expected ({dimension},)"
        )
    record = {
        "type": "chunk",
        "key": chunk.key,
        "doc_id": chunk.doc_id,
        "version": chunk.version,
        "ordinal": chunk.ordinal,
        "title": chunk.title,
        "section_path": list(chunk.section_path),
        "text": chunk.text,
        "context": chunk.context,
        "metadata": dict(chunk.metadata),
        "embedding": encode_embedding(chunk.embedding),
    }
    return json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":"))


def chunk_from_line(record: dict[str, Any], dimension: int) -> IndexedChunk:
    """Inverse of `chunk_to_line` (from the parsed JSON object)."""
    return IndexedChunk(
        key=int(record["key"]),
        doc_id=str(record["doc_id"]),
        version=int(record["version"]),
        ordinal=int(record["ordinal"]),
        title=str(record["title"]),
        section_path=tuple(record["section_path"]),
        text=str(record["text"]),
        context=str(record["context"]),
        metadata=dict(record["metadata"]),
        embedding=decode_embedding(record["embedding"], dimension),
    )


def _open(path: Path, mode: str, *, gzipped: bool | None = None) -> IO[str]:
    if path.suffix == ".gz" if gzipped is None else gzipped:
        return cast(IO[str], gzip.open(path, mode + "t", encoding="utf-8", newline="\n"))
    return open(path, mode, encoding="utf-8", newline="\n")


ExportSource = ChunkSource | ChunkReader | ChunkBatches | Iterable[IndexedChunk]


def _batches_of(source: ExportSource, batch_size: int) -> Iterator[Sequence[IndexedChunk]]:
    if isinstance(source, ChunkSource):
        items: Iterable[Any] = source.iter_chunks(batch_size)
    elif callable(source):
        items = source()
    else:
        items = source
    for item in items:
        yield [item] if isinstance(item, IndexedChunk) else item


def export_index(
    source: ExportSource,
    path: str | Path,
    *,
    embedder: str,
    dimension: int,
    batch_size: int = 500,
) -> TransferSummary:
    """Write every chunk of `source` to `path` (replaced atomically when complete).

    `source` is a backend with `iter_chunks(batch_size)`, a callable returning batches
    of chunks, the batches themselves or a plain iterable of chunks.
    `embedder`/`dimension` describe the model that made the embeddings;
    `import_index` checks them.
    """
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    count = 0
    header = {
        "type": "header",
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "embedder": embedder,
        "dimension": dimension,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    try:
        with _open(partial, "w", gzipped=target.suffix == ".gz") as out:
            out.write(json.dumps(header) + "\n")
            for batch in _batches_of(source, batch_size):
                for chunk in batch:
                    line = chunk_to_line(chunk, dimension) + "\n"
                    digest.update(line.encode("utf-8"))
                    out.write(line)
                    count += 1
            out.write(
                json.dumps({"type": "footer", "count": count, "sha256": digest.hexdigest()}) + "\n"
            )
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return TransferSummary(path=target, count=count, embedder=embedder, dimension=dimension)


def _records(path: Path) -> Iterator[tuple[int, str, dict[str, Any]]]:
    try:
        with _open(path, "r") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DocumentParseError(f"{path}:{number}: not JSON ({exc.msg})") from exc
                if not isinstance(record, dict):
                    raise DocumentParseError(f"{path}:{number}: expected a JSON object")
                yield number, line, record
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DocumentParseError(f"{path} cannot be read: {exc}") from exc


def read_header(path: str | Path) -> IndexFileHeader:
    """The file's header line, checked."""
    for number, _, record in _records(Path(path)):
        if record.get("type") != "header" or record.get("format") != FORMAT:
            raise DocumentParseError(f"{path}:{number}: not a Teller index export (no header)")
        if record.get("format_version") != FORMAT_VERSION:
            raise DocumentParseError(
                f"{path} has format version {record.get('format_version')}; "
                f"this Teller reads version {FORMAT_VERSION}"
            )
        return IndexFileHeader(
            embedder=str(record["embedder"]),
            dimension=int(record["dimension"]),
            created_at=str(record.get("created_at", "")),
        )
    raise DocumentParseError(f"{path} is empty")


def verify_index_file(path: str | Path) -> tuple[IndexFileHeader, int]:
    """Check the whole file (header, every chunk line, footer count and hash) without
    keeping it in memory. Returns the header and the chunk count."""
    header = read_header(path)
    digest = hashlib.sha256()
    count = 0
    footer: dict[str, Any] | None = None
    for number, line, record in _records(Path(path)):
        kind = record.get("type")
        if footer is not None:
            raise DocumentParseError(f"{path}:{number}: data after the footer")
        if kind == "chunk":
            try:
                chunk_from_line(record, header.dimension)
            except (KeyError, TypeError, ValueError) as exc:
                raise DocumentParseError(f"{path}:{number}: bad chunk ({exc})") from exc
            digest.update(line.encode("utf-8"))
            count += 1
        elif kind == "footer":
            footer = record
        elif kind != "header" or number != 1:
            raise DocumentParseError(f"{path}:{number}: unexpected line of type {kind!r}")
    if footer is None:
        raise DocumentParseError(f"{path} has no footer: the export is incomplete")
    if footer.get("count") != count or footer.get("sha256") != digest.hexdigest():
        raise DocumentParseError(
            f"{path} is damaged: the footer says {footer.get('count')} chunks with hash "
            f"{footer.get('sha256')}, the file holds {count} with hash {digest.hexdigest()}"
        )
    return header, count


def iter_index_file(path: str | Path, batch_size: int = 500) -> Iterator[list[IndexedChunk]]:
    """The file's chunks in batches (call `verify_index_file` first to refuse a bad file
    before anything is written)."""
    header = read_header(path)
    batch: list[IndexedChunk] = []
    for number, _, record in _records(Path(path)):
        if record.get("type") != "chunk":
            continue
        try:
            batch.append(chunk_from_line(record, header.dimension))
        except (KeyError, TypeError, ValueError) as exc:
            raise DocumentParseError(f"{path}:{number}: bad chunk ({exc})") from exc
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def import_index(
    path: str | Path,
    backend: IndexBackend,
    *,
    batch_size: int = 500,
    expected_embedder: str | None = None,
) -> TransferSummary:
    """Upsert every chunk of the export at `path` into `backend`.

    The file is verified first, and its dimension must equal the backend's
    (`backend.dimension` where it has one) — vectors of another model would make
    dense search meaningless. With `expected_embedder`, the model names must match too.
    """
    header, count = verify_index_file(path)
    backend_dimension = getattr(backend, "dimension", None)
    if backend_dimension is not None and backend_dimension != header.dimension:
        raise IndexUnavailableError(
            f"{path} holds {header.dimension}-dimensional vectors from {header.embedder!r}, "
            f"but the index takes {backend_dimension}; import it into an index built for that "
            "model, or re-embed with `teller reindex`"
        )
    if expected_embedder is not None and expected_embedder != header.embedder:
        raise IndexUnavailableError(
            f"{path} was embedded with {header.embedder!r}, not {expected_embedder!r}; "
            "configure that model (TELLER_EMBEDDING_MODEL) or re-embed with `teller reindex`"
        )
    for batch in iter_index_file(path, batch_size):
        backend.upsert(batch)
    backend.flush()
    return TransferSummary(
        path=Path(path), count=count, embedder=header.embedder, dimension=header.dimension
    )
