"""Conversations through Rasa, with the answer pipeline as the fallback.

`/v1/chat` -> `DialogueService` -> Rasa's REST channel. Rasa understands the message
and either answers from its domain (greeting, a clarifying question, a handoff) or
runs `action_answer`, which calls Teller's internal API; that answer comes back as the
custom payload `{"teller": <AnswerResult>}` and is already stored. When Rasa cannot be
reached, the pipeline answers directly and the result says `degraded: true`.

The internal API's domain functions live here too: `term_choices` (does a rate
question need a term?) and `record_handoff` (store a handoff with its reference).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

import httpx
from sqlalchemy.orm import Session, sessionmaker

from bot.answers.pipeline import AnswerPipeline, ConversationIdError, EmptyMessageError
from bot.answers.rewrite import rewrite_followup
from bot.answers.types import AnswerKind, AnswerResult, Citation, StreamEvent
from bot.rates import answer_rate_question, detect_rate_question
from db import conversations as convo_repo
from db import rates as rates_repo
from retrieval.parsing import printable

log = logging.getLogger(__name__)

_CONVERSATION_ID: Final = re.compile(r"^[A-Za-z0-9_-]{8,36}$")
_BARE_TERM: Final = re.compile(r"^\d+ (years?|months?)$")
# The kind of a turn Rasa answered from its own domain (greeting, clarifying question,
# bot challenge...): such turns are not stored answers. TODO(lead): "dialogue" once
# AnswerKind has it; "clarification" meanwhile.
DIALOGUE_KIND: Final[AnswerKind] = "dialogue"


class RasaError(Exception):
    """Rasa answered something Teller cannot use (an error status, not JSON)."""


class RasaUnavailableError(RasaError):
    """Rasa could not be reached: connection refused, timeout, or a 5xx answer."""


class RasaClient:
    """Rasa's HTTP API: the REST channel, `/model/parse` and `/status`.

    `token` is Rasa's `--auth-token` (sent as `?token=`); the REST channel does not
    need it. The client is thread-safe; `close()` it when done.
    """

    def __init__(
        self,
        base_url: str,
        timeout_s: float = 60.0,
        *,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.base_url = base_url.rstrip("/")
        self._params = {"token": token} if token else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s, transport=transport)

    def send(
        self, sender_id: str, message: str, *, metadata: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Send one user message; returns Rasa's bot messages (text, buttons, custom)."""
        body: dict[str, Any] = {"sender": sender_id, "message": message}
        if metadata:
            body["metadata"] = dict(metadata)
        result = self._request("POST", "/webhooks/rest/webhook", json=body)
        if not isinstance(result, list):
            raise RasaError(f"Rasa's REST channel answered {type(result).__name__}, not a list")
        return [m for m in result if isinstance(m, dict)]

    def parse(self, text: str) -> dict[str, Any]:
        """Intent and entities of `text` (`/model/parse`; Rasa needs `--enable-api`)."""
        result = self._request("POST", "/model/parse", json={"text": text}, params=self._params)
        if not isinstance(result, dict):
            raise RasaError("Rasa's /model/parse did not answer an object")
        return result

    def status(self) -> dict[str, Any]:
        """The loaded model (`/status`; Rasa needs `--enable-api`)."""
        result = self._request("GET", "/status", params=self._params)
        if not isinstance(result, dict):
            raise RasaError("Rasa's /status did not answer an object")
        return result

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RasaClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:  # connection refused, timeouts, protocol errors
            raise RasaUnavailableError(f"Rasa at {self.base_url} is unreachable: {exc}") from exc
        if response.status_code >= 500:
            raise RasaUnavailableError(
                f"Rasa at {self.base_url} answered {response.status_code} on {path}"
            )
        if response.status_code >= 400:
            raise RasaError(
                f"Rasa answered {response.status_code} on {path}: {response.text[:300]}"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise RasaError(f"Rasa answered non-JSON on {path}") from exc


class DialogueService:
    """Answers chat messages through Rasa, or through the pipeline when Rasa is down.

    With `rasa=None` (Teller run without Rasa) the pipeline answers and nothing is
    marked degraded; with a client that fails, the pipeline answers and the result
    has `degraded=True`, and the failure is logged.
    """

    def __init__(self, rasa: RasaClient | None, pipeline: AnswerPipeline):
        self.rasa = rasa
        self.pipeline = pipeline

    def answer(
        self, message: str, *, conversation_id: str | None = None, channel: str = "api"
    ) -> AnswerResult:
        """One turn of the conversation `conversation_id` (a new one when None)."""
        message = printable(message)
        if self.rasa is None:
            return self.pipeline.answer(message, conversation_id=conversation_id, channel=channel)
        conversation_id = _conversation_id(message, conversation_id)
        result = self._through_rasa(self.rasa, message, conversation_id, channel)
        if result is None:
            return self.pipeline.answer(
                message, conversation_id=conversation_id, channel=channel, degraded=True
            )
        return result

    def stream(
        self, message: str, *, conversation_id: str | None = None, channel: str = "api"
    ) -> Iterator[StreamEvent]:
        """`token` events then one `final`, like `AnswerPipeline.stream`.

        Through Rasa the answer arrives whole and is split into word tokens; without
        Rasa the pipeline streams as it generates (its final event marked degraded
        when Rasa failed).
        """
        message = printable(message)
        if self.rasa is None:
            yield from self.pipeline.stream(
                message, conversation_id=conversation_id, channel=channel
            )
            return
        conversation_id = _conversation_id(message, conversation_id)
        result = self._through_rasa(self.rasa, message, conversation_id, channel)
        if result is None:
            yield from self.pipeline.stream(
                message, conversation_id=conversation_id, channel=channel, degraded=True
            )
            return
        for piece in re.findall(r"\S+\s*", result.text):
            yield StreamEvent("token", {"text": piece})
        yield StreamEvent("final", result.as_dict())

    @staticmethod
    def _through_rasa(
        rasa: RasaClient, message: str, conversation_id: str, channel: str
    ) -> AnswerResult | None:
        """Rasa's answer, or None (logged) when the pipeline must answer instead."""
        try:
            messages = rasa.send(conversation_id, message, metadata={"channel": channel})
        except RasaError as exc:
            log.warning("Rasa failed (%s); answering without it (degraded)", exc)
            return None
        result = result_from_messages(messages, conversation_id=conversation_id)
        if result is None:
            log.warning(
                "Rasa gave no usable answer (%d messages; the actions may not reach Teller's "
                "internal API); answering without it (degraded)",
                len(messages),
            )
        return result


def _conversation_id(message: str, conversation_id: str | None) -> str:
    """The conversation id Rasa and the pipeline share (Rasa's sender id)."""
    if not message.strip():
        raise EmptyMessageError("the message is empty; type a question")
    if conversation_id is None:
        return str(uuid.uuid4())
    if not _CONVERSATION_ID.match(conversation_id):
        raise ConversationIdError(
            "conversation_id must be 8-36 letters, digits, '-' or '_'; omit it to start one"
        )
    return conversation_id


def result_from_messages(
    messages: Sequence[Mapping[str, Any]], *, conversation_id: str
) -> AnswerResult | None:
    """The `AnswerResult` for Rasa's bot messages, or None when Rasa did not answer.

    A `{"teller": ...}` payload is Teller's stored answer (the last one counts; the
    texts of all messages are joined). Text alone is a turn from Rasa's domain: not
    stored, kind `DIALOGUE_KIND`, buttons as choices. No message at all, or a
    `{"teller_error": ...}` payload (the actions could not reach Teller), gives None.
    """
    payloads = [m["custom"] for m in messages if isinstance(m.get("custom"), dict)]
    if not messages or any("teller_error" in p for p in payloads):
        return None
    texts = [str(m["text"]) for m in messages if m.get("text")]
    buttons = [b for m in messages for b in m.get("buttons") or [] if isinstance(b, dict)]
    answers = [p["teller"] for p in payloads if isinstance(p.get("teller"), dict)]
    if answers:
        result = answer_from_dict(answers[-1])
        return replace(result, text="\n\n".join(texts) or result.text)
    if not texts:
        return None
    return AnswerResult(
        conversation_id=conversation_id,
        answer_id=str(uuid.uuid4()),
        text="\n\n".join(texts),
        citations=[],
        confidence=1.0,
        handoff_suggested=False,
        degraded=False,
        kind=DIALOGUE_KIND,
        choices=[str(b.get("title") or b.get("payload")) for b in buttons],
    )


def answer_from_dict(data: Mapping[str, Any]) -> AnswerResult:
    """An `AnswerResult` from its `as_dict()` form (as the internal API returns it)."""
    return AnswerResult(
        conversation_id=str(data["conversation_id"]),
        answer_id=str(data["answer_id"]),
        text=str(data["text"]),
        citations=[
            Citation(**{**c, "section": tuple(c.get("section") or ())})
            for c in data.get("citations") or []
        ],
        confidence=float(data["confidence"]),
        handoff_suggested=bool(data["handoff_suggested"]),
        degraded=bool(data.get("degraded", False)),
        kind=data["kind"],
        choices=[str(c) for c in data.get("choices") or []],
        handoff_reference=data.get("handoff_reference"),
    )


# -- the internal API's domain functions ----------------------------------------------


def term_choices(
    sessions: sessionmaker[Session],
    message: str,
    *,
    conversation_id: str | None = None,
    today: dt.date | None = None,
) -> list[str]:
    """The terms to offer for a rate question ("15 years", "30 years"), or [] when the
    question is not a rate question or its answer does not depend on a term choice.

    The question is first made self-contained with the conversation's previous
    questions, exactly as the answer pipeline will do when it answers.
    """
    with sessions() as session:
        previous: list[str] = []
        if conversation_id and _CONVERSATION_ID.match(conversation_id):
            previous = [
                m.text
                for m in convo_repo.recent_messages(
                    session, conversation_id=conversation_id, limit=10
                )
                if m.role == "user"
            ]
        query = detect_rate_question(rewrite_followup(message, previous))
        if query is None:
            return []
        on = today or dt.date.today()
        answer = answer_rate_question(query, rates_repo.current_rates(session, on=on), today=on)
    if answer.kind != "options":
        return []
    choices = list(answer.choices)
    months = [c.term_months for c in choices]
    # A term question offers bare terms ("15 years") of one product, each once; a
    # choice between products ("30-year fixed mortgage") is the pipeline's to ask.
    if len(choices) < 2 or len(set(months)) != len(months):
        return []
    if not all(_BARE_TERM.match(c.label) for c in choices):
        return []
    return [c.label for c in choices]


def record_handoff(
    sessions: sessionmaker[Session],
    *,
    conversation_id: str,
    channel: str,
    message: str,
    reason: str,
    text: str,
) -> AnswerResult:
    """Store a handoff to a person as an answer of kind "abstain" and return it.

    The reference is "HO-" and the first 8 hex digits of the stored answer's id, the
    same form as the pipeline's handoff references; an agent finds the conversation
    through the answer (`GET /v1/answers/{answer_id}` lists its conversation). `text`
    may contain "{reference}". The conversation is created if it does not exist yet.
    """
    answer_id = str(uuid.uuid4())
    reference = f"HO-{answer_id[:8].upper()}"
    rendered = text.replace("{reference}", reference)
    with sessions.begin() as session:
        convo_repo.ensure_conversation(session, conversation_id=conversation_id, channel=channel)
        convo_repo.add_message(session, conversation_id=conversation_id, role="user", text=message)
        convo_repo.save_answer(
            session,
            answer_id=answer_id,
            conversation_id=conversation_id,
            question=message,
            text=rendered,
            kind="abstain",
            channel=channel,
            generator="handoff",
            generator_version="1",
            handoff_suggested=True,
            abstained=True,
            trace={"route": "handoff", "reason": reason, "handoff_reference": reference},
        )
        convo_repo.add_message(
            session,
            conversation_id=conversation_id,
            role="assistant",
            text=rendered,
            answer_id=answer_id,
        )
    log.info("handoff %s for conversation %s: %s", reference, conversation_id, reason)
    return AnswerResult(
        conversation_id=conversation_id,
        answer_id=answer_id,
        text=rendered,
        citations=[],
        confidence=0.0,
        handoff_suggested=True,
        degraded=False,
        kind="abstain",
        choices=[],
        handoff_reference=reference,
    )
