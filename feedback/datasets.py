"""Training sets from live feedback: SFT, KTO, preference and retrieval JSON Lines.

Rows follow TRL's conversational conventions, so `datasets.load_dataset("json", ...)`
feeds them to TRL's trainers (and the retrieval triplets to sentence-transformers)
without conversion. Every prompt is a list of ``{"role", "content"}`` messages: an
optional system message, the conversation's earlier turns, then the user's question.

- ``sft``: ``{"messages": [...prompt, {"role": "assistant", "content": answer}]}`` for
  approved answers; for a corrected answer the agent's correction is the assistant text.
- ``kto``: ``{"prompt": [...], "completion": [{"role": "assistant", ...}], "label": bool}``:
  approved answers and corrections are ``True``, rejected and corrected answers ``False``.
- ``preference``: ``{"prompt": [...], "chosen": [...], "rejected": [...]}``: a corrected
  answer against its correction, or a rejected answer against the latest approved answer
  to the same normalised conversation (earlier turns and question, see `normalise_text`).
- ``retrieval``: ``{"query", "positive", "negative"}`` (see `build_retrieval`).

Votes are aggregated per answer (`select_answers`, in `feedback.selection`); the split
unit is the conversation (the answer when it has none), so one conversation never
straddles train and validation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, get_args

from feedback.errors import ExportError
from feedback.redaction import find_phone_numbers, redact
from feedback.selection import AnswerVotes, as_aware, select_answers
from feedback.types import ExportFilters, ExportFormat, ExportResult, FeedbackRecord

SCHEMA_VERSION = 1
SPLITS = ("train", "validation")
Row = dict[str, Any]
Message = dict[str, str]


@dataclass(frozen=True, slots=True)
class Example:
    """One output row and its split unit (conversation id, or answer id without one)."""

    group: str
    row: Row


def normalise_text(text: str) -> str:
    """Case-folded text with punctuation dropped and whitespace collapsed, for matching."""
    return " ".join(re.sub(r"[^\w]+", " ", text.casefold()).split())


def _role(role: str) -> str:
    lowered = role.strip().lower()
    if lowered in {"user", "assistant", "system"}:
        return lowered
    return "user" if lowered in {"customer", "human", "client"} else "assistant"


def prompt_messages(rec: FeedbackRecord, system_prompt: str | None = None) -> list[Message]:
    """The chat that led to the answer: optional system message, earlier turns, question."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages += [{"role": _role(role), "content": text} for role, text in rec.history]
    messages.append({"role": "user", "content": rec.question})
    return messages


def _assistant(text: str) -> list[Message]:
    return [{"role": "assistant", "content": text}]


def build_sft(answers: Sequence[AnswerVotes], system_prompt: str | None = None) -> list[Example]:
    """Approved answers, and corrections in place of the answers they correct."""
    examples = []
    for a in answers:
        target = a.correction if a.correction is not None else a.answer.answer_text
        if a.correction is None and a.rating != "up":
            continue
        messages = [*prompt_messages(a.answer, system_prompt), *_assistant(target)]
        examples.append(Example(a.group, {"messages": messages}))
    return examples


def build_kto(answers: Sequence[AnswerVotes], system_prompt: str | None = None) -> list[Example]:
    """Unpaired labels: each answer with ``label = rating == "up"``; corrections as ``True``."""
    examples = []
    for a in answers:
        prompt = prompt_messages(a.answer, system_prompt)
        completions = [(a.answer.answer_text, a.rating == "up")]
        if a.correction is not None:
            completions.append((a.correction, True))
        for text, label in completions:
            row = {"prompt": prompt, "completion": _assistant(text), "label": label}
            examples.append(Example(a.group, row))
    return examples


def _context_key(rec: FeedbackRecord) -> str:
    turns = [normalise_text(text) for _, text in rec.history]
    return "\x1f".join([*turns, normalise_text(rec.question)])


def build_preference(
    answers: Sequence[AnswerVotes], system_prompt: str | None = None
) -> list[Example]:
    """Pairs: correction over corrected answer; else latest approved over rejected answer.

    A rejected answer without a correction is paired with the most recently voted
    approved answer to the same normalised conversation whose text differs; it is
    skipped when there is none.
    """
    approved: dict[str, AnswerVotes] = {}
    for a in answers:  # in order of first vote, so the latest approved answer wins
        if a.rating == "up":
            approved[_context_key(a.answer)] = a
    examples = []
    for a in answers:
        if a.rating != "down":
            continue
        rejected = a.answer.answer_text
        chosen = a.correction
        if chosen is None:
            other = approved.get(_context_key(a.answer))
            chosen = other.answer.answer_text if other is not None else None
        if chosen is None or normalise_text(chosen) == normalise_text(rejected):
            continue
        row = {
            "prompt": prompt_messages(a.answer, system_prompt),
            "chosen": _assistant(chosen),
            "rejected": _assistant(rejected),
        }
        examples.append(Example(a.group, row))
    return examples


def _correction_passage(a: AnswerVotes) -> str | None:
    for vote in reversed(a.votes):
        ref = vote.metadata.get("correction_passage", vote.metadata.get("correction_chunk_id"))
        if isinstance(ref, str) and ref.strip():
            return ref
        if isinstance(ref, int) and not isinstance(ref, bool):
            for passage in a.answer.passages:
                if passage.chunk_id == ref:
                    return passage.text
    return None


def build_retrieval(answers: Sequence[AnswerVotes]) -> list[Example]:
    """(query, positive, negative) triplets from the retrieval traces.

    The query is the rewritten query the retriever ran (the question when empty);
    answers are pooled by its normalised text. Positives: the passages an approved
    answer cited, and the passage an agent's correction names (``metadata
    ["correction_passage"]``: its text, or a chunk id of the trace; or ``metadata
    ["correction_chunk_id"]``). Negatives: passages cited by rejected or corrected
    answers; only when a query has none of those, passages retrieved for an approved
    answer but not cited. A passage that is a positive is never a negative. A query
    with ``P`` positives and ``N`` negatives gives ``max(P, N)`` triplets, pairing
    ``positive[i % P]`` with ``negative[i % N]``; queries lacking either are skipped.
    """
    pools: dict[str, dict[str, Any]] = {}
    for a in answers:
        rec = a.answer
        query = rec.rewritten_query.strip() or rec.question.strip()
        pool = pools.setdefault(
            normalise_text(query), {"query": query, "pos": {}, "hard": {}, "soft": {}}
        )
        cited = [p.text for p in rec.passages if p.cited and p.text.strip()]
        if a.correction is not None:
            source = _correction_passage(a)
            if source is not None:
                pool["pos"].setdefault(source, a.group)
            pool["hard"].update(dict.fromkeys(cited))
        elif a.rating == "up":
            for text in cited:
                pool["pos"].setdefault(text, a.group)
            uncited = [p.text for p in rec.passages if not p.cited and p.text.strip()]
            pool["soft"].update(dict.fromkeys(uncited))
        else:
            pool["hard"].update(dict.fromkeys(cited))
    examples = []
    for pool in pools.values():
        positives = list(pool["pos"].items())
        candidates = pool["hard"] or pool["soft"]
        negatives = [text for text in candidates if text not in pool["pos"]]
        if not positives or not negatives:
            continue
        for i in range(max(len(positives), len(negatives))):
            positive, group = positives[i % len(positives)]
            row = {
                "query": pool["query"],
                "positive": positive,
                "negative": negatives[i % len(negatives)],
            }
            examples.append(Example(group, row))
    return examples


def build_examples(
    answers: Sequence[AnswerVotes], fmt: ExportFormat, *, system_prompt: str | None = None
) -> list[Example]:
    """Rows of one export format (see the module docstring), before redaction."""
    if fmt == "sft":
        return build_sft(answers, system_prompt)
    if fmt == "kto":
        return build_kto(answers, system_prompt)
    if fmt == "preference":
        return build_preference(answers, system_prompt)
    if fmt == "retrieval":
        return build_retrieval(answers)
    raise ExportError(f"unknown export format {fmt!r}; choose one of {get_args(ExportFormat)}")


def split_of(group: str, *, validation_fraction: float, seed: int) -> str:
    """``"validation"`` when ``int(sha256(f"{seed}:{group}")[:8 bytes]) / 2**64`` falls
    below `validation_fraction`, else ``"train"``: stable across runs and machines."""
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    return (
        "validation" if int.from_bytes(digest[:8], "big") / 2**64 < validation_fraction else "train"
    )


def _redact_value(value: Any, allow: frozenset[str], counts: Counter[str]) -> Any:
    if isinstance(value, str):
        result = redact(value, allow)
        counts.update(result.counts)
        return result.text
    if isinstance(value, list):
        return [_redact_value(item, allow, counts) for item in value]
    if isinstance(value, dict):
        return {
            key: item if key == "role" else _redact_value(item, allow, counts)
            for key, item in value.items()
        }
    return value


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def _write_temp(directory: Path, name: str, data: bytes, temps: list[Path]) -> Path:
    fd, raw = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    temps.append(Path(raw))
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return Path(raw)


def write_export(
    records: Sequence[FeedbackRecord],
    fmt: ExportFormat,
    out: Path,
    filters: ExportFilters,
    *,
    validation_fraction: float = 0.1,
    seed: int = 13,
    allow_phones: Iterable[str] = (),
    system_prompt: str | None = None,
) -> ExportResult:
    """Write ``<stem>.train.jsonl``, ``<stem>.validation.jsonl`` and ``<stem>.manifest.json``.

    Every string in every row (message roles aside) goes through `redact` first; phone
    numbers in `allow_phones` or in any knowledge passage of `records` (the bank's
    published numbers) are kept. Identical rows are written once. Files are written to
    temporary names and renamed into place, the manifest last, so an error leaves no
    partial file. An empty selection still writes empty files and a manifest with zero
    counts. Raises `ExportError` for a bad format, fraction, filters or unwritable path.
    """
    if fmt not in get_args(ExportFormat):
        raise ExportError(f"unknown export format {fmt!r}; choose one of {get_args(ExportFormat)}")
    if not 0.0 <= validation_fraction < 1.0:
        raise ExportError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    answers = select_answers(records, filters)
    examples = build_examples(answers, fmt, system_prompt=system_prompt)

    passages = {p.text for rec in records for p in rec.passages}
    published = {number for text in passages for number in find_phone_numbers(text)}
    allow = frozenset(allow_phones) | published
    redactions: Counter[str] = Counter()
    lines: dict[str, list[str]] = {split: [] for split in SPLITS}
    seen: set[str] = set()
    for example in examples:
        found: Counter[str] = Counter()
        line = json.dumps(_redact_value(example.row, allow, found), ensure_ascii=False)
        if line not in seen:  # count only what is written
            seen.add(line)
            redactions.update(found)
            split = split_of(example.group, validation_fraction=validation_fraction, seed=seed)
            lines[split].append(line)

    stem = out.stem if out.suffix in {".jsonl", ".json"} else out.name
    directory = out.parent
    paths = {split: directory / f"{stem}.{split}.jsonl" for split in SPLITS}
    manifest_path = directory / f"{stem}.manifest.json"
    payloads = {split: "".join(f"{line}\n" for line in lines[split]).encode() for split in SPLITS}
    counts = {split: len(lines[split]) for split in SPLITS}
    times = [as_aware(v.created_at) for a in answers for v in a.votes]
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "format": fmt,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(),
        "counts": {**counts, "total": sum(counts.values())},
        "source": {"records": len(records), "answers": len(answers), "examples": len(examples)},
        "redactions": dict(sorted(redactions.items())),
        "allowed_phone_numbers": len(allow),
        "time_window": {
            "since": _jsonable(filters.since),
            "until": _jsonable(filters.until),
            "first_vote": min(times).isoformat() if times else None,
            "last_vote": max(times).isoformat() if times else None,
        },
        "filters": {key: _jsonable(value) for key, value in asdict(filters).items()},
        "split": {"validation_fraction": validation_fraction, "seed": seed, "unit": "conversation"},
        "files": {
            split: {
                "path": paths[split].name,
                "rows": counts[split],
                "bytes": len(payloads[split]),
                "sha256": hashlib.sha256(payloads[split]).hexdigest(),
            }
            for split in SPLITS
        },
    }
    temps: list[Path] = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        staged = {
            split: _write_temp(directory, paths[split].name, payloads[split], temps)
            for split in SPLITS
        }
        manifest_bytes = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
        staged_manifest = _write_temp(directory, manifest_path.name, manifest_bytes, temps)
        for split in SPLITS:
            os.replace(staged[split], paths[split])
        os.replace(staged_manifest, manifest_path)
    except OSError as exc:
        raise ExportError(f"could not write the export to {directory}: {exc}") from exc
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)
    return ExportResult(
        format=fmt,
        files={split: str(path) for split, path in paths.items()},
        manifest_path=str(manifest_path),
        counts=counts,
    )


def export_audit_details(result: ExportResult, filters: ExportFilters) -> dict[str, Any]:
    """What the audit log keeps of an export: format, filters, rows per split, files."""
    window = {
        name: value.isoformat() if isinstance(value, dt.datetime) else value
        for name, value in asdict(filters).items()
        if value is not None
    }
    return {
        "format": result.format,
        "filters": window,
        "counts": dict(result.counts),
        "manifest": result.manifest_path,
    }
