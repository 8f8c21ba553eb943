"""Children of a `ManagedProcess` end with their parent, even one killed with SIGKILL
(`bot/exec_with_parent.py`), but not when only the thread that started them ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from bot import exec_with_parent
from bot.rasa_process import ManagedProcess

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")

ROOT = Path(__file__).resolve().parents[1]


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def _wait_gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _process(tmp_path: Path, argv: list[str]) -> ManagedProcess:
    return ManagedProcess(
        "sleeper",
        argv,
        cwd=tmp_path,
        env=dict(os.environ),
        log_path=tmp_path / "child.log",
        ready_url="http://127.0.0.1:9/",
    )


def test_a_child_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    # A parent that starts `sleep` as Teller starts Rasa, prints its pid, then waits.
    parent_code = textwrap.dedent(
        f"""
        import os, sys, time
        from pathlib import Path
        from bot.rasa_process import ManagedProcess
        child = ManagedProcess("sleeper", ["sleep", "600"], cwd=Path({str(tmp_path)!r}),
            env=dict(os.environ), log_path=Path({str(tmp_path / "child.log")!r}),
            ready_url="http://127.0.0.1:9/")
        child.start()
        print(child.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    child = 0
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        # The wrapper has replaced itself with `sleep` (same pid) before the kill.
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child}/comm").read_text().strip() != "sleep":
            assert time.monotonic() < deadline, "the child never became `sleep`"
            time.sleep(0.05)
        parent.kill()
        parent.wait(timeout=10)
        assert _wait_gone(child), "the child outlived its SIGKILLed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
        if child and _alive(child):
            os.kill(child, signal.SIGKILL)


def test_a_child_started_from_another_thread_outlives_that_thread(tmp_path: Path) -> None:
    process = _process(tmp_path, ["sleep", "600"])
    starter = threading.Thread(target=process.start)
    starter.start()
    starter.join()
    try:
        assert process.pid is not None
        time.sleep(0.5)  # a death signal tied to the ended thread would have come by now
        assert process.running
    finally:
        process.stop(grace_s=5)
    assert not process.running


def test_stop_still_stops_a_wrapped_child(tmp_path: Path) -> None:
    process = _process(tmp_path, ["sleep", "600"])
    process.start()
    pid = process.pid
    assert pid is not None
    process.stop(grace_s=5)
    assert _wait_gone(pid)


def test_the_wrapper_runs_nothing_once_its_parent_is_gone(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    wrapper = Path(exec_with_parent.__file__)
    not_my_parent = str(os.getpid() + 1_000_000)
    result = subprocess.run(
        [sys.executable, "-I", str(wrapper), not_my_parent, "touch", str(marker)], check=False
    )
    assert result.returncode == exec_with_parent.EXIT_PARENT_GONE
    assert not marker.exists()

    ran = subprocess.run(
        [sys.executable, "-I", str(wrapper), str(os.getpid()), "touch", str(marker)], check=False
    )
    assert ran.returncode == 0 and marker.exists()


def test_the_wrapper_explains_its_usage() -> None:
    wrapper = Path(exec_with_parent.__file__)
    result = subprocess.run(
        [sys.executable, "-I", str(wrapper), "sleep"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2 and "usage: exec_with_parent.py PARENT_PID" in result.stderr
