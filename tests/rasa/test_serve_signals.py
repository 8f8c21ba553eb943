"""`teller serve` with Rasa, as a real process: stopping it the way service managers do
(SIGTERM: systemd, `docker stop`, Kubernetes) stops Rasa and its action server too, and
so does killing it outright (SIGKILL: `kill -9`, the OOM killer)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bot.rasa_setup import MODELS_DIR_ENV

PROC = Path("/proc")


def _children(pid: int) -> set[int]:
    """Live processes whose parent is `pid` (Linux /proc)."""
    found = set()
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("PPid", "").strip() == str(pid) and not fields["State"].startswith("Z"):
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (PROC / str(pid) / "status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in state


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(not PROC.is_dir(), reason="reads the process table from /proc (Linux)")
@pytest.mark.parametrize(
    ("sig", "status"),
    [
        (signal.SIGTERM, 128 + signal.SIGTERM),  # exits through its cleanup, as a shell shows
        (signal.SIGKILL, -signal.SIGKILL),  # no cleanup: the kernel tells the children
    ],
    ids=["SIGTERM", "SIGKILL"],
)
def test_a_signal_to_teller_serve_stops_rasa_and_the_action_server(
    rasa_model: Path, tmp_path: Path, sig: signal.Signals, status: int
) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "TELLER_DATA_DIR": str(tmp_path / "data"),
        "TELLER_ENVIRONMENT": "test",
        MODELS_DIR_ENV: str(rasa_model.parent),  # the trained model: nothing to train
    }
    env.pop("TELLER_DATABASE_URL", None)
    env.pop("TELLER_RASA_URL", None)
    teller = str(Path(sys.executable).parent / "teller")
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [teller, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    rasa: set[int] = set()
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            rasa = _children(proc.pid)
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code
            except httpx.HTTPError:
                ready = None
            if ready == 200 and len(rasa) == 2:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"teller serve with Rasa did not start:\n{_tail(tmp_path)}")

        proc.send_signal(sig)
        exited = proc.wait(timeout=90)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(pid) for pid in rasa):
            time.sleep(0.25)
        assert not [pid for pid in rasa if _alive(pid)], f"orphaned:\n{_tail(tmp_path)}"
        assert exited == status, _tail(tmp_path)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in rasa:
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)
        log.close()


def _tail(tmp_path: Path) -> str:
    return (tmp_path / "serve.log").read_text(errors="replace")[-3000:]
