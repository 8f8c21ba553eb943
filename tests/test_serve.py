"""`teller serve` as a real process: probes, API ingest, and the single-owner index."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = _free_port()
    env = {
        **os.environ,
        "TELLER_DATA_DIR": str(tmp_path / "data"),
        "TELLER_ENVIRONMENT": "test",
        "TELLER_ADMIN_TOKEN": "serve-test-admin-token",  # the CLI's --api calls send it
    }
    env.pop("TELLER_DATABASE_URL", None)
    teller = str(Path(sys.executable).parent / "teller")
    proc = subprocess.Popen(
        [teller, "serve", "--no-rasa", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                output = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"teller serve exited early:\n{output}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        else:
            pytest.fail("teller serve did not become ready in 120 s")
        yield url, env
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            if proc.stdout:
                proc.stdout.close()


def test_served_api_and_cli_through_it(server: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    url, env = server
    teller = str(Path(sys.executable).parent / "teller")
    doc = tmp_path / "cd.md"
    doc.write_text("# CDs\n\nThe early withdrawal penalty is 90 days of interest.")

    # A second process cannot open the index the server owns, and says what to do.
    local = subprocess.run([teller, "ingest", str(doc)], env=env, capture_output=True, text=True)
    assert local.returncode == 2
    assert "--api" in local.stderr

    remote = subprocess.run(
        [teller, "ingest", "--api", url, str(doc)], env=env, capture_output=True, text=True
    )
    assert remote.returncode == 0, remote.stderr
    assert "created" in remote.stdout
    anonymous = httpx.post(f"{url}/v1/documents", files=[("files", ("x.md", b"# X\n\ny"))])
    assert anonymous.status_code == 401  # so the CLI did send the admin token
    hits = httpx.post(f"{url}/v1/search", json={"query": "early withdrawal penalty"}).json()["hits"]
    assert hits[0]["doc_id"] == "cd"


def test_the_reranker_trains_inside_a_running_server(
    server: tuple[str, dict[str, str]],
) -> None:
    url, env = server
    teller = str(Path(sys.executable).parent / "teller")

    local = subprocess.run([teller, "rerank", "train"], env=env, capture_output=True, text=True)
    assert local.returncode == 2
    assert "teller rerank train --api" in local.stderr

    remote = subprocess.run(
        [teller, "rerank", "train", "--api", url], env=env, capture_output=True, text=True
    )
    assert remote.returncode == 0, remote.stderr
    report = json.loads(remote.stdout)
    assert report["version"] is None and "fewer than 20 votes" in report["reason"]

    wrong = {**env, "TELLER_ADMIN_TOKEN": "not-the-token"}
    refused = subprocess.run(
        [teller, "rerank", "train", "--api", url], env=wrong, capture_output=True, text=True
    )
    assert refused.returncode == 2 and "401" in refused.stderr
