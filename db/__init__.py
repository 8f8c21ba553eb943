"""Teller's SQL storage: models, engines and sessions, migrations, repository functions.

SQLite (a file in the data dir) by default, PostgreSQL in production. Repository
functions take a session and never commit; the caller owns the transaction::

    engine = make_engine(url)
    upgrade(url)
    session_factory = make_session_factory(engine)
    with session_factory.begin() as session:
        result = upsert_document(session, doc_id="faq-1", ..., chunks=chunks)
"""

from db.conversations import (
    ConversationNotFound,
    add_message,
    create_conversation,
    get_answer,
    get_conversation,
    recent_messages,
    save_answer,
)
from db.errors import (
    ConflictError,
    DatabaseError,
    DatabaseUnavailableError,
    DocumentNotFound,
    MigrationError,
    NotFoundError,
)
from db.migrate import current_revision, downgrade, head_revision, upgrade
from db.models import (
    Answer,
    Base,
    Chunk,
    Conversation,
    Document,
    DocumentVersion,
    Message,
    RateRow,
    RateSheet,
)
from db.rates import (
    NewRateRow,
    RateSheetResult,
    current_rates,
    get_rate_rows,
    get_sheet,
    insert_sheet,
    list_products,
    list_sheets,
    rate_history,
    row_status,
)
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
    "Answer",
    "Base",
    "Chunk",
    "ChunkVersion",
    "ConflictError",
    "Conversation",
    "ConversationNotFound",
    "DatabaseError",
    "DatabaseUnavailableError",
    "Document",
    "DocumentNotFound",
    "DocumentSummary",
    "DocumentVersion",
    "Message",
    "MigrationError",
    "NewChunk",
    "NewRateRow",
    "NotFoundError",
    "RateRow",
    "RateSheet",
    "RateSheetResult",
    "UpsertResult",
    "UpsertStatus",
    "add_message",
    "check_connection",
    "count_chunks",
    "count_documents",
    "create_conversation",
    "current_hashes",
    "current_rates",
    "current_revision",
    "delete_document",
    "downgrade",
    "embedding_from_bytes",
    "embedding_to_bytes",
    "get_answer",
    "get_chunk_versions",
    "get_conversation",
    "get_document",
    "get_document_summary",
    "get_document_version",
    "get_rate_rows",
    "get_sheet",
    "head_revision",
    "insert_sheet",
    "iter_chunks",
    "list_document_versions",
    "list_documents",
    "list_products",
    "list_sheets",
    "live_chunk_keys",
    "load_chunks",
    "make_engine",
    "make_session_factory",
    "rate_history",
    "recent_messages",
    "row_status",
    "save_answer",
    "upgrade",
    "upsert_document",
]
