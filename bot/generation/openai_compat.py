"""An OpenAI-compatible chat completions endpoint as a `Generator`.

vLLM, TGI, Ollama, llama.cpp's server and hosted APIs all serve
``POST /v1/chat/completions``; this client needs nothing else from them. Errors become
`GeneratorUnavailableError` here, at the boundary, with the URL and HTTP status in the
message, so the answer pipeline can fall back to the extractive composer.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
from pydantic import SecretStr

from bot.generation.errors import GeneratorUnavailableError
from bot.generation.prompt import DEFAULT_SYSTEM_PROMPT, build_messages
from bot.generation.types import Generation, GenerationRequest, parse_citations, trim_deltas

T = TypeVar("T")

_SNIPPET_CHARS = 300


class _Transient(Exception):
    """A failure worth retrying: connect error, timeout, HTTP 429 or 5xx."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class OpenAICompatibleGenerator:
    """`Generator` that calls ``{base_url}/v1/chat/completions`` with httpx.

    `base_url` may end in ``/v1`` or not (``http://vllm:8000`` and
    ``http://vllm:8000/v1`` are the same). Each request has `timeout_s` for connecting
    and for every read. Connect errors, timeouts, HTTP 429 and 5xx are retried up to
    `max_retries` times, waiting ``backoff_s * 2 ** attempt`` (or the server's
    ``Retry-After``), at most `max_backoff_s`; other 4xx answers are not retried. A
    stream is retried only until the server accepts it: once text has been yielded, a
    failure raises instead of repeating the answer.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: SecretStr | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 2,
        max_tokens: int = 512,
        temperature: float = 0.0,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
    ) -> None:
        base = base_url.rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        if not model:
            raise ValueError("model must name the model the endpoint serves")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if max_retries < 0:
            raise ValueError("max_retries must not be negative")
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if temperature < 0 or backoff_s < 0 or max_backoff_s < 0:
            raise ValueError("temperature and backoff times must not be negative")
        self._url = (
            f"{base}/chat/completions" if base.endswith("/v1") else f"{base}/v1/chat/completions"
        )
        self._model = model
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._max_tokens = max_tokens
        self._temperature = temperature
        self._system_prompt = system_prompt
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return "openai"

    @property
    def version(self) -> str:
        return self._model

    @property
    def url(self) -> str:
        """The chat completions URL requests go to."""
        return self._url

    def load(self) -> None:
        """Create the HTTP client (connection pool). Contacts nothing."""
        self._http()

    def close(self) -> None:
        """Close the connection pool; a later call opens a new one."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def generate(self, request: GenerationRequest) -> Generation:
        """Ask for the whole answer in one response."""
        payload = self._with_retries(lambda: self._post(self._body(request, stream=False)))
        try:
            content = payload["choices"][0]["message"].get("content") or ""
            if not isinstance(content, str):
                raise TypeError(type(content).__name__)
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise GeneratorUnavailableError(
                f"{self._url} returned no choices[0].message.content: "
                f"{json.dumps(payload)[:_SNIPPET_CHARS]}"
            ) from exc
        text = content.strip()
        return Generation(
            text=text,
            cited=parse_citations(text, request.max_citation),
            generator=self.name,
            version=self.version,
        )

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Ask for a server-sent event stream and yield its ``delta.content`` pieces."""
        body = self._body(request, stream=True)
        response = self._with_retries(lambda: self._open(body))
        try:
            yield from trim_deltas(self._events(response))
        finally:
            response.close()

    # --- HTTP ---------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                headers = {"Content-Type": "application/json"}
                if self._api_key is not None:
                    headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
                self._client = httpx.Client(timeout=httpx.Timeout(self._timeout_s), headers=headers)
            return self._client

    def _body(self, request: GenerationRequest, *, stream: bool) -> dict[str, Any]:
        return {
            "model": self._model,
            "messages": build_messages(request, system_prompt=self._system_prompt),
            "max_tokens": self._max_tokens,
            "temperature": self._temperature,
            "stream": stream,
        }

    def _with_retries(self, attempt: Callable[[], T]) -> T:
        for number in range(self._max_retries + 1):
            try:
                return attempt()
            except _Transient as exc:
                if number == self._max_retries:
                    raise GeneratorUnavailableError(
                        f"{exc} (after {number + 1} attempt{'s' if number else ''})"
                    ) from exc.__cause__
                wait = self._backoff_s * 2**number
                if exc.retry_after_s is not None:
                    wait = exc.retry_after_s
                time.sleep(min(wait, self._max_backoff_s))
        raise AssertionError("unreachable")  # pragma: no cover

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self._send(body)
        try:
            self._check_status(response)
            raw = self._read(response)
        finally:
            response.close()
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise GeneratorUnavailableError(
                f"{self._url} returned a body that is not JSON: {raw[:_SNIPPET_CHARS]!r}"
            ) from exc
        if not isinstance(data, dict):
            raise GeneratorUnavailableError(f"{self._url} returned JSON that is not an object")
        return data

    def _open(self, body: dict[str, Any]) -> httpx.Response:
        response = self._send(body)
        try:
            self._check_status(response)
        except BaseException:
            response.close()
            raise
        return response

    def _send(self, body: dict[str, Any]) -> httpx.Response:
        client = self._http()
        headers = {"Accept": "text/event-stream"} if body["stream"] else {}
        request = client.build_request("POST", self._url, json=body, headers=headers)
        return self._guarded(lambda: client.send(request, stream=True))

    def _read(self, response: httpx.Response) -> bytes:
        return self._guarded(response.read)

    def _guarded(self, call: Callable[[], T]) -> T:
        """Run an httpx call, turning its errors into `_Transient` or ours."""
        try:
            return call()
        except httpx.TimeoutException as exc:
            raise self._timeout(exc) from exc
        except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
            raise _Transient(f"could not reach {self._url}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise GeneratorUnavailableError(f"request to {self._url} failed: {exc}") from exc

    def _timeout(self, exc: httpx.TimeoutException) -> _Transient:
        kind = type(exc).__name__
        return _Transient(f"{self._url} did not answer within {self._timeout_s} s ({kind})")

    def _check_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        snippet = self._read(response).decode("utf-8", "replace")[:_SNIPPET_CHARS]
        if status == 429 or status >= 500:
            raise _Transient(
                f"{self._url} answered HTTP {status}: {snippet}", _retry_after(response)
            )
        hint = {
            401: "; check TELLER_GENERATOR_API_KEY",
            403: "; check TELLER_GENERATOR_API_KEY",
            404: "; check TELLER_GENERATOR_URL and TELLER_GENERATOR_MODEL",
        }.get(status, "")
        raise GeneratorUnavailableError(
            f"{self._url} rejected the request with HTTP {status}: {snippet}{hint}"
        )

    def _events(self, response: httpx.Response) -> Iterator[str]:
        """``delta.content`` of each ``data:`` line, until ``data: [DONE]``."""
        try:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue  # comments, event names, keep-alives, blank separators
                data = line[len("data:") :].strip()
                if data == "[DONE]":
                    return
                content = self._delta(data)
                if content:
                    yield content
        except httpx.TimeoutException as exc:
            raise GeneratorUnavailableError(
                f"{self._url} stopped streaming for more than {self._timeout_s} s"
            ) from exc
        except httpx.HTTPError as exc:
            raise GeneratorUnavailableError(f"stream from {self._url} broke: {exc}") from exc

    def _delta(self, data: str) -> str | None:
        try:
            event = json.loads(data)
        except ValueError as exc:
            raise GeneratorUnavailableError(
                f"{self._url} sent a stream event that is not JSON: {data[:_SNIPPET_CHARS]}"
            ) from exc
        if not isinstance(event, dict):
            return None
        if event.get("error"):
            raise GeneratorUnavailableError(
                f"{self._url} reported an error mid-stream: {str(event['error'])[:_SNIPPET_CHARS]}"
            )
        choices = event.get("choices") or [{}]
        delta = choices[0].get("delta") if isinstance(choices[0], dict) else None
        content = delta.get("content") if isinstance(delta, dict) else None
        return content if isinstance(content, str) else None


def _retry_after(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds, when it is a number (dates are ignored)."""
    try:
        value = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return max(value, 0.0)
