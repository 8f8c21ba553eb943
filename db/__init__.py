"""Teller's SQL storage: models, engines and sessions, migrations, repository functions.

SQLite (a file in the data dir) by default, PostgreSQL in production. Repository
functions take a session and never commit; the caller owns the transaction::

    engine = make_engine(url)
    upgrade(url)
    session_factory = make_session_factory(engine)
    with session_factory.begin() as session:
        result = upsert_document(session, doc_id="faq-1", ..., chunks=chunks)
"""

from db.errors import (
    ConflictError,
    DatabaseError,
    DatabaseUnavailableError,
    DocumentNotFound,
    MigrationError,
    NotFoundError,
)
from db.migrate import current_revision, downgrade, head_revision, upgrade
from db.models import Base, Chunk, Document, DocumentVersion
from db.repository import (
    count_chunks,
    count_documents,
    current_hashes,
    delete_document,
    embedding_from_bytes,
    embedding_to_bytes,
    get_chunk_versions,
    get_document,
    get_document_summary,
    get_document_version,
    iter_chunks,
    list_document_versions,
    list_documents,
    live_chunk_keys,
    load_chunks,
    upsert_document,
)
from db.session import check_connection, make_engine, make_session_factory
from db.types import ChunkVersion, DocumentSummary, NewChunk, UpsertResult, UpsertStatus

__all__ = [
    "Base",
    "Chunk",
    "ChunkVersion",
    "ConflictError",
    "DatabaseError",
    "DatabaseUnavailableError",
    "Document",
    "DocumentNotFound",
    "DocumentSummary",
    "DocumentVersion",
    "MigrationError",
    "NewChunk",
    "NotFoundError",
    "UpsertResult",
    "UpsertStatus",
    "check_connection",
    "count_chunks",
    "count_documents",
    "current_hashes",
    "current_revision",
    "delete_document",
    "downgrade",
    "embedding_from_bytes",
    "embedding_to_bytes",
    "get_chunk_versions",
    "get_document",
    "get_document_summary",
    "get_document_version",
    "head_revision",
    "iter_chunks",
    "list_document_versions",
    "list_documents",
    "live_chunk_keys",
    "load_chunks",
    "make_engine",
    "make_session_factory",
    "upgrade",
    "upsert_document",
]
