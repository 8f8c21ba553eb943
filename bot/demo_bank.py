"""The demo bank shipped in `bot/demo/`: its knowledge base and rate sheet.

`teller demo load` calls `load_demo_bank`; nothing else loads it implicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from bot.knowledge import IngestOutcome, KnowledgeService, audit_ingest
from bot.rates import load_rate_sheet
from db.audit import Actor

DEMO_KNOWLEDGE = Path(__file__).parent / "demo" / "knowledge"
DEMO_RATES = Path(__file__).parent / "demo" / "rates.csv"


@dataclass(frozen=True, slots=True)
class DemoLoad:
    """What loading did: one outcome per document, and the rate rows loaded (None when
    every demo rate was already in force)."""

    documents: list[IngestOutcome]
    rate_rows: int | None


def load_demo_bank(
    knowledge: KnowledgeService, sessions: sessionmaker[Session], actor: Actor
) -> DemoLoad:
    """Ingest the demo documents and load the demo rate sheet, recording both in the
    audit log as `actor`'s; idempotent."""
    files = sorted(p for p in DEMO_KNOWLEDGE.rglob("*") if p.is_file())
    outcomes = knowledge.ingest_files((p.name, p.read_bytes(), None) for p in files)
    audit_ingest(sessions, actor, outcomes)
    data = DEMO_RATES.read_bytes()
    with sessions.begin() as session:
        result = load_rate_sheet(session, filename=DEMO_RATES.name, data=data, actor=actor)
    return DemoLoad(outcomes, None if result.unchanged else result.rows)
