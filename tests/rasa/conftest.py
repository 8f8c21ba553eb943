"""The real Rasa front end for end-to-end tests: a trained model, the Rasa server and the
action server (`RasaProcesses`), and a real Teller API on a free port for the actions
to call, with the demo knowledge base and a rate sheet current today.

Without `.venv-rasa` the Rasa tests fail (never skip) and say to run `make rasa-setup`.
The trained model is cached by its inputs' hash in `<repo>/.teller-data/rasa/models`
(or $TELLER_RASA_MODELS_DIR), so only the first run after a change trains (minutes).
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from bot.api.routes import internal
from bot.app import create_app
from bot.dialogue import DialogueService, RasaClient
from bot.nlu_encoder import ensure_encoder
from bot.rasa_process import RasaProcesses, free_port
from bot.rasa_setup import (
    PROJECT_DIR,
    REPO_ROOT,
    RasaSetupError,
    default_models_dir,
    rasa_venv,
    train_if_changed,
)
from bot.rates import load_rate_sheet
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings

DEMO_KNOWLEDGE = REPO_ROOT / "bot" / "demo" / "knowledge"


class ActionsSettings(Settings):
    """Settings with the actions token (until `Settings` has `actions_token` itself)."""

    actions_token: SecretStr | None = None


def rate_sheet(today: dt.date) -> bytes:
    """A rate sheet in force from a month before `today`, shaped like the demo sheet."""
    start = (today - dt.timedelta(days=30)).isoformat()
    rows = [
        f"30-year fixed mortgage,30 years,,6.125,6.291,,{start},,Test rate sheet",
        f"15-year fixed mortgage,15 years,,5.500,5.702,,{start},,Test rate sheet",
        f"7/6 ARM mortgage,30 years,,5.875,6.634,,{start},,Test rate sheet",
        f'High-yield savings,,"under $10,000",3.92,,4.00,{start},,Test rate sheet',
        f'High-yield savings,,"$10,000 and above",4.16,,4.25,{start},,Test rate sheet',
        f"Certificate of deposit,6 months,,4.10,,4.18,{start},,Test rate sheet",
        f"Certificate of deposit,12 months,,3.90,,3.97,{start},,Test rate sheet",
        f"Certificate of deposit,24 months,,3.60,,3.66,{start},,Test rate sheet",
    ]
    header = (
        "product,term,tier,rate_percent,apr_percent,apy_percent,"
        "effective_from,effective_until,source"
    )
    return ("\n".join([header, *rows]) + "\n").encode()


@pytest.fixture(scope="session")
def nlu_encoder() -> Path:
    """The NLU's sentence encoder exported to ONNX, where `rasa_model` finds it
    (exported now only if no export has its key)."""
    return ensure_encoder(default_models_dir(REPO_ROOT / ".teller-data") / "encoder")


@pytest.fixture(scope="session")
def rasa_model() -> Path:
    """The trained model of bot/rasa (trained now only if no model has its hash)."""
    try:
        venv = rasa_venv()
    except RasaSetupError as exc:
        pytest.fail(f"{exc}\nThe Rasa tests need it: run `make rasa-setup`.", pytrace=False)
    return train_if_changed(PROJECT_DIR, venv, default_models_dir(REPO_ROOT / ".teller-data"))


@dataclass
class TellerServer:
    """A Teller API served by uvicorn in a thread, and the runtime behind it."""

    url: str
    runtime: Runtime
    settings: ActionsSettings
    token: str


def _app(settings: Settings, runtime: Runtime) -> FastAPI:
    app = create_app(settings, runtime=runtime)
    if not any(getattr(r, "path", "").startswith("/v1/internal") for r in app.routes):
        app.include_router(internal.router)  # until bot/app.py includes it
    return app


@pytest.fixture(scope="module")
def teller_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TellerServer]:
    """Teller's API with the demo knowledge base and `rate_sheet(today)`, on a free port."""
    token = secrets.token_urlsafe(24)
    settings = ActionsSettings(
        environment="test",
        data_dir=tmp_path_factory.mktemp("teller") / "data",
        database_url=None,
        actions_token=SecretStr(token),
    )
    runtime = build_runtime(settings)
    try:
        files = sorted(p for p in DEMO_KNOWLEDGE.iterdir() if p.is_file())
        outcomes = runtime.knowledge.ingest_files((p.name, p.read_bytes(), None) for p in files)
        assert all(o.status == "created" for o in outcomes), outcomes
        with runtime.sessions.begin() as session:
            load_rate_sheet(session, filename="rates.csv", data=rate_sheet(dt.date.today()))
        port = free_port()
        config = uvicorn.Config(
            _app(settings, runtime),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            ws="none",
            lifespan="on",
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="teller-api", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the test Teller API did not start", pytrace=False)
            time.sleep(0.05)
        try:
            yield TellerServer(f"http://127.0.0.1:{port}", runtime, settings, token)
        finally:
            server.should_exit = True
            thread.join(timeout=30)
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def rasa(rasa_model: Path, teller_api: TellerServer) -> Iterator[RasaProcesses]:
    """Rasa and its action server, tracker store in the test API's SQLite database."""
    processes = RasaProcesses(
        rasa_model,
        api_url=teller_api.url,
        actions_token=teller_api.token,
        database_url=teller_api.settings.sqlalchemy_url,
        log_dir=teller_api.settings.data_dir / "logs",
    )
    with processes:
        yield processes


@pytest.fixture(scope="module")
def dialogue(rasa: RasaProcesses, teller_api: TellerServer) -> Iterator[DialogueService]:
    client = RasaClient(rasa.url, timeout_s=120)
    try:
        yield DialogueService(client, teller_api.runtime.answers)
    finally:
        client.close()
