"""OpenAICompatibleGenerator against a real HTTP server on 127.0.0.1 (FastAPI + uvicorn).

The server implements ``POST /v1/chat/completions``; the model name picks its behaviour
(``ok``, ``flaky``: 500 then 200, ``busy``: 429 then 200, ``down``: always 503, ``bad``:
400, ``locked``: 401, ``slow``: answers after 1 s, ``stall``: stops mid-stream,
``broken``: an error event mid-stream, ``garbage``: not JSON). A suffix after ``-``
keeps each test's request counts apart.
"""

import asyncio
import json
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import SecretStr

from bot.generation.errors import GeneratorUnavailableError
from bot.generation.openai_compat import OpenAICompatibleGenerator
from bot.generation.types import GenerationRequest, Generator
from tests.generation.helpers import passage

ANSWER = "The penalty is 90 days of interest [1]."
PIECES = ["The", " penalty", " is", " 90 days", " of interest [1].", "\n"]


class FakeEndpoint:
    """Request log and behaviours of the fake chat completions server."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.bodies: dict[str, list[dict[str, Any]]] = {}
        self.headers: dict[str, list[dict[str, str]]] = {}
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self.completions)

    async def completions(self, request: Request) -> Response:
        body = await request.json()
        model = body["model"]
        self.calls[model] += 1
        self.bodies.setdefault(model, []).append(body)
        self.headers.setdefault(model, []).append(dict(request.headers))
        behaviour, calls = model.split("-")[0], self.calls[model]
        if behaviour == "flaky" and calls == 1:
            return JSONResponse({"error": "overloaded"}, status_code=500)
        if behaviour == "busy" and calls == 1:
            return JSONResponse({"error": "slow down"}, 429, headers={"Retry-After": "0"})
        if behaviour == "down":
            return JSONResponse({"error": "maintenance"}, status_code=503)
        if behaviour == "bad":
            return JSONResponse({"error": {"message": "unknown field 'foo'"}}, status_code=400)
        if behaviour == "locked":
            return JSONResponse({"error": "invalid api key"}, status_code=401)
        if behaviour == "slow":
            await asyncio.sleep(1.0)
        if behaviour == "garbage":
            return PlainTextResponse("<html>gateway</html>")
        if body.get("stream"):
            return StreamingResponse(self.events(behaviour), media_type="text/event-stream")
        return JSONResponse({"choices": [{"message": {"role": "assistant", "content": ANSWER}}]})

    async def events(self, behaviour: str) -> AsyncIterator[str]:
        yield ": keep-alive\n\n"
        yield f"data: {json.dumps({'choices': [{'delta': {'role': 'assistant'}}]})}\n\n"
        for index, piece in enumerate(PIECES):
            if index == 2 and behaviour == "stall":
                await asyncio.sleep(1.0)
            if index == 2 and behaviour == "broken":
                yield f"data: {json.dumps({'error': {'message': 'model crashed'}})}\n\n"
            yield f"data: {json.dumps({'choices': [{'delta': {'content': piece}}]})}\n\n"
        yield f"data: {json.dumps({'choices': [{'delta': {}, 'finish_reason': 'stop'}]})}\n\n"
        yield "data: [DONE]\n\n"


@pytest.fixture(scope="module")
def endpoint() -> FakeEndpoint:
    return FakeEndpoint()


@pytest.fixture(scope="module")
def base_url(endpoint: FakeEndpoint) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        endpoint.app, log_level="warning", lifespan="off", ws="none", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the fake endpoint did not start")
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def model(behaviour: str) -> str:
    return f"{behaviour}-{uuid.uuid4().hex[:8]}"


_open_clients: list[OpenAICompatibleGenerator] = []


def client(base_url: str, name: str, **kwargs: Any) -> OpenAICompatibleGenerator:
    kwargs.setdefault("backoff_s", 0.01)
    generator = OpenAICompatibleGenerator(base_url, name, **kwargs)
    _open_clients.append(generator)
    return generator


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    yield
    while _open_clients:
        _open_clients.pop().close()


def make_request() -> GenerationRequest:
    return GenerationRequest(
        "What is the CD penalty?", [passage(1, "The penalty is 90 days of interest.")]
    )


def test_generate_posts_the_chat_and_parses_the_answer(
    base_url: str, endpoint: FakeEndpoint
) -> None:
    name = model("ok")
    generator = client(base_url, name, api_key=SecretStr("s3cret"), max_tokens=64)
    generation = generator.generate(make_request())
    assert generation.text == ANSWER
    assert generation.cited == (1,)
    assert (generation.generator, generation.version) == ("openai", name)
    assert isinstance(generator, Generator)
    body = endpoint.bodies[name][0]
    assert body["model"] == name
    assert body["stream"] is False
    assert body["max_tokens"] == 64
    assert body["temperature"] == 0.0
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "The penalty is 90 days of interest." in body["messages"][1]["content"]
    assert endpoint.headers[name][0]["authorization"] == "Bearer s3cret"
    generator.close()
    assert generator.generate(make_request()).text == ANSWER  # a closed pool reopens


def test_base_url_may_end_with_v1(base_url: str, endpoint: FakeEndpoint) -> None:
    name = model("ok")
    generator = client(f"{base_url}/v1/", name)
    assert generator.url == f"{base_url}/v1/chat/completions"
    assert generator.generate(make_request()).text == ANSWER
    assert "authorization" not in endpoint.headers[name][0]


def test_stream_yields_the_deltas(base_url: str, endpoint: FakeEndpoint) -> None:
    name = model("ok")
    generator = client(base_url, name)
    deltas = list(generator.stream(make_request()))
    assert deltas == PIECES[:-1]  # the trailing newline is trimmed, as generate strips
    assert "".join(deltas) == generator.generate(make_request()).text
    assert endpoint.bodies[name][0]["stream"] is True
    assert endpoint.headers[name][0]["accept"] == "text/event-stream"


@pytest.mark.parametrize("behaviour", ["flaky", "busy"])
def test_500_and_429_are_retried(base_url: str, endpoint: FakeEndpoint, behaviour: str) -> None:
    name = model(behaviour)
    assert client(base_url, name).generate(make_request()).text == ANSWER
    assert endpoint.calls[name] == 2
    streamed = model(behaviour)
    assert "".join(client(base_url, streamed).stream(make_request())) == ANSWER
    assert endpoint.calls[streamed] == 2


def test_retries_give_up_with_the_url_and_status(base_url: str, endpoint: FakeEndpoint) -> None:
    name = model("down")
    with pytest.raises(GeneratorUnavailableError) as error:
        client(base_url, name, max_retries=2).generate(make_request())
    assert endpoint.calls[name] == 3
    message = str(error.value)
    assert f"{base_url}/v1/chat/completions" in message
    assert "HTTP 503" in message and "maintenance" in message and "3 attempts" in message


@pytest.mark.parametrize(("behaviour", "hint"), [("bad", "unknown field"), ("locked", "API_KEY")])
def test_4xx_is_not_retried(
    base_url: str, endpoint: FakeEndpoint, behaviour: str, hint: str
) -> None:
    name = model(behaviour)
    status = 400 if behaviour == "bad" else 401
    with pytest.raises(GeneratorUnavailableError, match=f"HTTP {status}.*{hint}") as error:
        client(base_url, name).generate(make_request())
    assert base_url in str(error.value)
    assert endpoint.calls[name] == 1
    with pytest.raises(GeneratorUnavailableError, match=f"HTTP {status}"):
        list(client(base_url, name).stream(make_request()))
    assert endpoint.calls[name] == 2


def test_timeouts_are_retried_then_reported(base_url: str, endpoint: FakeEndpoint) -> None:
    name = model("slow")
    with pytest.raises(GeneratorUnavailableError, match=r"did not answer within 0\.2 s") as error:
        client(base_url, name, timeout_s=0.2, max_retries=1).generate(make_request())
    assert "2 attempts" in str(error.value)
    deadline = time.monotonic() + 2
    while endpoint.calls[name] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert endpoint.calls[name] == 2


def test_a_stream_that_stalls_after_text_is_not_retried(
    base_url: str, endpoint: FakeEndpoint
) -> None:
    name = model("stall")
    stream = client(base_url, name, timeout_s=0.3).stream(make_request())
    assert next(stream) == "The"
    with pytest.raises(GeneratorUnavailableError, match="stopped streaming"):
        list(stream)
    assert endpoint.calls[name] == 1


def test_an_error_event_mid_stream_is_raised(base_url: str) -> None:
    with pytest.raises(GeneratorUnavailableError, match="model crashed"):
        list(client(base_url, model("broken")).stream(make_request()))


def test_a_body_that_is_not_json_is_reported(base_url: str) -> None:
    with pytest.raises(GeneratorUnavailableError, match=r"not JSON.*gateway"):
        client(base_url, model("garbage")).generate(make_request())


def test_an_unreachable_endpoint_is_reported() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once the socket is closed
    generator = client(f"http://127.0.0.1:{port}", "ok", max_retries=1)
    with pytest.raises(GeneratorUnavailableError, match=f"could not reach .*:{port}.*2 attempts"):
        generator.generate(make_request())


def test_arguments_are_checked() -> None:
    cases: list[tuple[tuple[str, str], dict[str, Any]]] = [
        (("ftp://x", "m"), {}),
        (("http://x", ""), {}),
        (("http://x", "m"), {"timeout_s": 0}),
        (("http://x", "m"), {"max_retries": -1}),
        (("http://x", "m"), {"max_tokens": 0}),
    ]
    for (url, name), kwargs in cases:
        with pytest.raises(ValueError):
            OpenAICompatibleGenerator(url, name, **kwargs)
