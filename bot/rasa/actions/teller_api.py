"""The action server's client for Teller's internal API (standard library only).

The API process holds the embedding model, the index and the database; the actions
only call it over HTTP, with the shared secret in `X-Teller-Actions-Token`:

- POST /v1/internal/answer        {message, conversation_id, channel} -> AnswerResult
- POST /v1/internal/handoff       {conversation_id, channel, message, reason, text}
                                  -> AnswerResult with a handoff_reference
- POST /v1/internal/term-choices  {message, conversation_id} -> {"choices": [...]}

Configured by TELLER_API_URL (e.g. http://127.0.0.1:8000) and TELLER_ACTIONS_TOKEN.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

TOKEN_HEADER: Final = "X-Teller-Actions-Token"
CHANNELS: Final = frozenset({"web", "agent", "api", "cli"})
_CONVERSATION_ID: Final = re.compile(r"^[A-Za-z0-9_-]{8,36}$")


class TellerApiError(Exception):
    """Teller's API could not be reached or refused the call."""


def conversation_id_for(sender_id: str) -> str:
    """Teller's conversation id for a Rasa sender id.

    Teller's `/v1/chat` uses its conversation id as the sender id, so that is kept.
    Other channels' ids (a Slack user, "default" from `rasa shell`) become a stable
    "rasa-" + 31 hex digits of their SHA-256.
    """
    if _CONVERSATION_ID.match(sender_id):
        return sender_id
    return "rasa-" + hashlib.sha256(sender_id.encode()).hexdigest()[:31]


def channel_for(metadata: Mapping[str, Any] | None) -> str:
    """The Teller channel named in the message metadata (set by `/v1/chat`), else "api"."""
    channel = (metadata or {}).get("channel")
    return channel if isinstance(channel, str) and channel in CHANNELS else "api"


@dataclass(frozen=True)
class TellerApi:
    """Calls Teller's internal endpoints; every method raises `TellerApiError` on failure."""

    base_url: str
    token: str
    timeout_s: float = 120.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> TellerApi:
        url = environ.get("TELLER_API_URL", "").rstrip("/")
        token = environ.get("TELLER_ACTIONS_TOKEN", "")
        if not url or not token:
            raise TellerApiError(
                "set TELLER_API_URL and TELLER_ACTIONS_TOKEN for the action server"
            )
        return cls(url, token)

    async def answer(self, message: str, *, conversation_id: str, channel: str) -> dict[str, Any]:
        """Teller's answer (an AnswerResult as a dict), stored by the API."""
        body = {"message": message, "conversation_id": conversation_id, "channel": channel}
        return await self._post("/v1/internal/answer", body)

    async def handoff(
        self, *, conversation_id: str, channel: str, message: str, reason: str, text: str
    ) -> dict[str, Any]:
        """Record a handoff; `text` may hold "{reference}". Returns the stored AnswerResult."""
        body = {
            "conversation_id": conversation_id,
            "channel": channel,
            "message": message,
            "reason": reason,
            "text": text,
        }
        return await self._post("/v1/internal/handoff", body)

    async def term_choices(self, message: str, *, conversation_id: str) -> list[str]:
        """The terms the rate sheet offers for a rate question, when the term is the choice."""
        body = {"message": message, "conversation_id": conversation_id}
        result = await self._post("/v1/internal/term-choices", body)
        return [str(choice) for choice in result.get("choices", [])]

    async def _post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        # urllib blocks: run it in a thread so the action server keeps serving.
        return await asyncio.to_thread(self._post_blocking, path, body)

    def _post_blocking(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", TOKEN_HEADER: self.token},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = json.loads(response.read().decode())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise TellerApiError(f"{path} answered {exc.code}: {detail}") from exc
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            raise TellerApiError(f"{path} failed: {exc}") from exc
        if not isinstance(payload, dict):
            raise TellerApiError(f"{path} answered {type(payload).__name__}, not an object")
        return payload
