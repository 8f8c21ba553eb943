"""A real Rasa server given a model it cannot load fails at start-up with the reason,
instead of being waited for until the timeout (it stays up, answering 409)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bot.rasa_process import RasaStartError, free_port, rasa_server, wait_until_ready
from bot.rasa_setup import QUIET_ENV, rasa_venv


def test_a_model_rasa_cannot_load_fails_the_start_with_the_reason(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not a model")
    server = rasa_server(
        rasa_venv(),
        broken,
        port=free_port(),
        cwd=tmp_path,
        env={**os.environ, **QUIET_ENV},
        log_path=tmp_path / "rasa.log",
    )
    server.start()
    started = time.monotonic()
    try:
        with pytest.raises(RasaStartError, match=r"(?s)answers 409.*load"):
            wait_until_ready([server], timeout_s=280)
    finally:
        server.stop()
    assert time.monotonic() - started < 240  # Rasa's start-up, not the 280 s timeout
