"""Rasa as child processes of Teller: run the Rasa server and the action server for a
model trained by `bot.rasa_setup`, stop both cleanly.

    model = train_if_changed(PROJECT_DIR, rasa_venv(), models_dir)   # cached by hash
    with RasaProcesses(model, api_url=..., actions_token=..., database_url=...) as rasa:
        RasaClient(rasa.url, timeout_s=30).send("conversation-1", "hi")

Rasa reads its endpoints from the environment (`bot/rasa/endpoints.yml`); `RasaProcesses`
sets every variable: the action server's URL, the tracker store (Teller's database
unless told otherwise) and the lock store (in memory, or Redis when `redis_url` is set).

Command line: `python -m bot.rasa_process train [--models DIR] [--force]` trains if
needed and prints the model's path.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

from bot.rasa_setup import (
    PROJECT_DIR,
    QUIET_ENV,
    RasaSetupError,
    RasaTrainingError,
    default_models_dir,
    lock_store_env,
    log_tail,
    rasa_venv,
    tracker_store_url,
    train_if_changed,
)

log = logging.getLogger(__name__)


_EXEC_WITH_PARENT = Path(__file__).with_name("exec_with_parent.py")


class RasaStartError(RuntimeError):
    """A Rasa process exited or did not become ready in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# -- processes ------------------------------------------------------------------------


class ManagedProcess:
    """One child process in its own session (Ctrl-C reaches the parent only), its output
    in a log file, ready when `ready_url` answers 200, stopped with SIGTERM then SIGKILL.

    On Linux, started from the main thread, the child is also sent SIGTERM when this
    process dies without stopping it (SIGKILL, see `bot/exec_with_parent.py`). From
    another thread that is left off: the kernel ties the signal to the thread that
    started the child, so it would fire when that thread ends.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        log_path: Path,
        ready_url: str,
        failed_statuses: frozenset[int] = frozenset(),
    ):
        self.name = name
        self.argv = list(argv)
        self.cwd = cwd
        self.env = dict(env)
        self.log_path = log_path
        self.ready_url = ready_url
        self.failed_statuses = failed_statuses
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        log.info("starting %s: %s", self.name, " ".join(self.argv))
        argv = self.argv
        if sys.platform == "linux" and threading.current_thread() is threading.main_thread():
            argv = [sys.executable, "-I", str(_EXEC_WITH_PARENT), str(os.getpid()), *argv]
        self._process = subprocess.Popen(
            argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def is_ready(self) -> bool:
        """True once the process answers 200 on `ready_url`; raises if it has exited or
        answers one of `failed_statuses` (up, but it will never be ready)."""
        if self._process is None:
            raise RasaStartError(f"{self.name} was not started")
        code = self._process.poll()
        if code is not None:
            raise RasaStartError(
                f"{self.name} exited with status {code} during start-up; "
                f"{self.log_path}:\n{log_tail(self.log_path)}"
            )
        try:
            status = httpx.get(self.ready_url, timeout=2.0).status_code
        except httpx.HTTPError:
            return False
        if status in self.failed_statuses:
            raise RasaStartError(
                f"{self.name} started but answers {status} on {self.ready_url.split('?')[0]}; "
                f"{self.log_path}:\n{log_tail(self.log_path)}"
            )
        return status == 200

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM to the process group, SIGKILL after `grace_s`; closes the log."""
        process, self._process = self._process, None
        try:
            if process is not None and process.poll() is None:
                _signal_group(process, signal.SIGTERM)
                try:
                    process.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    log.warning("%s did not stop in %.0f s; killing it", self.name, grace_s)
                    _signal_group(process, signal.SIGKILL)
                    process.wait(timeout=grace_s)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # its own session: group id == pid
        os.killpg(process.pid, sig)


def wait_until_ready(processes: Sequence[ManagedProcess], timeout_s: float) -> None:
    """Poll until every process is ready; `RasaStartError` on exit or timeout."""
    deadline = time.monotonic() + timeout_s
    pending = list(processes)
    while pending:
        pending = [p for p in pending if not p.is_ready()]
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(p.name for p in pending)
            tails = "\n".join(f"{p.log_path}:\n{log_tail(p.log_path, 15)}" for p in pending)
            raise RasaStartError(f"{names} not ready after {timeout_s:.0f} s\n{tails}")
        time.sleep(0.5)


def rasa_server(
    venv: Path,
    model: Path,
    *,
    port: int,
    cwd: Path,
    env: Mapping[str, str],
    log_path: Path,
    host: str = "127.0.0.1",
    endpoints: Path | None = None,
    credentials: Path | None = None,
    auth_token: str | None = None,
    cors: str | None = None,
) -> ManagedProcess:
    """`rasa run --enable-api` for `model` (not started); ready when `/status` answers."""
    argv = [
        str(venv / "bin" / "rasa"), "run", "--enable-api",
        "--interface", host, "--port", str(port), "--model", str(model),
    ]  # fmt: skip
    if endpoints is not None:
        argv += ["--endpoints", str(endpoints)]
    if credentials is not None:
        argv += ["--credentials", str(credentials)]
    if auth_token:
        argv += ["--auth-token", auth_token]
    if cors:
        argv += ["--cors", cors]
    token = f"?token={auth_token}" if auth_token else ""
    return ManagedProcess(
        "Rasa server",
        argv,
        cwd=cwd,
        env=env,
        log_path=log_path,
        ready_url=f"http://{host}:{port}/status{token}",
        # Rasa loads the model before it listens; a server that listens and answers
        # 409 ("No agent loaded") failed to load it and stays up without one.
        failed_statuses=frozenset({409}),
    )


class RasaProcesses:
    """The Rasa server and the action server for a trained model, as a context manager.

    Both run from the Rasa virtualenv in `project_dir`, bound to `host`. The action
    server calls Teller's internal API at `api_url` with `actions_token`. The tracker
    store is `tracker_url`, or `database_url` converted for Rasa (Teller's own database
    by default); the lock store is Redis when `redis_url` is set, else in memory.
    Leaving the block (or `stop()`) sends SIGTERM to both, then SIGKILL after `grace_s`.
    Logs go to `<log_dir>/rasa.log` and `<log_dir>/rasa-actions.log`.
    """

    def __init__(
        self,
        model: Path,
        *,
        api_url: str,
        actions_token: str,
        database_url: str | None = None,
        tracker_url: str | None = None,
        redis_url: str | None = None,
        project_dir: Path = PROJECT_DIR,
        venv: Path | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        actions_port: int | None = None,
        auth_token: str | None = None,
        cors: str | None = None,
        log_dir: Path | None = None,
        startup_timeout_s: float = 240.0,
        grace_s: float = 10.0,
    ):
        if not actions_token:
            raise ValueError("actions_token must not be empty")
        if tracker_url is None and database_url is None:
            raise ValueError("give database_url (Teller's database) or tracker_url")
        self.model = model.resolve()
        if not self.model.is_file():
            raise RasaSetupError(f"no Rasa model at {self.model}; train one with `make rasa-train`")
        self.venv = rasa_venv(venv)
        self.project_dir = project_dir.resolve()
        self.host = host
        self.port = port or free_port(host)
        self.actions_port = actions_port or free_port(host)
        self.auth_token = auth_token
        self.startup_timeout_s = startup_timeout_s
        self.grace_s = grace_s
        log_dir = (log_dir or default_models_dir().parent / "logs").resolve()
        tracker = tracker_url or tracker_store_url(database_url or "")
        env = {
            **os.environ,
            **QUIET_ENV,
            "TELLER_API_URL": api_url.rstrip("/"),
            "TELLER_ACTIONS_TOKEN": actions_token,
            "TELLER_ACTIONS_URL": f"http://{host}:{self.actions_port}/webhook",
            "TELLER_RASA_TRACKER_URL": tracker,
            **lock_store_env(redis_url),
        }
        self.server = rasa_server(
            self.venv,
            self.model,
            port=self.port,
            cwd=self.project_dir,
            env=env,
            log_path=log_dir / "rasa.log",
            host=host,
            endpoints=self.project_dir / "endpoints.yml",
            credentials=self.project_dir / "credentials.yml",
            auth_token=auth_token,
            cors=cors,
        )
        actions_argv = [
            str(self.venv / "bin" / "rasa"), "run", "actions", "--actions", "actions",
            "--port", str(self.actions_port),
        ]  # fmt: skip
        self.actions = ManagedProcess(
            "Rasa action server",
            actions_argv,
            cwd=self.project_dir,
            # `rasa run actions` imports the `actions` package from the project folder,
            # and binds 0.0.0.0 unless SANIC_HOST says otherwise.
            env={**env, "PYTHONPATH": str(self.project_dir), "SANIC_HOST": host},
            log_path=log_dir / "rasa-actions.log",
            ready_url=f"http://{host}:{self.actions_port}/health",
        )

    @property
    def url(self) -> str:
        """The Rasa server's base URL (REST channel at /webhooks/rest/webhook)."""
        return f"http://{self.host}:{self.port}"

    @property
    def actions_url(self) -> str:
        return f"http://{self.host}:{self.actions_port}"

    def start(self, *, wait: bool = True) -> RasaProcesses:
        """Start both processes; with `wait`, return once both answer (see `wait_ready`).

        `wait=False` lets the caller start the API meanwhile (Rasa takes 20-60 s to
        load; `/v1/chat` answers degraded until it is up) and call `wait_ready` later.
        """
        try:
            self.actions.start()
            self.server.start()
        except BaseException:
            self.stop()
            raise
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        """Block until both processes answer; stops both and raises `RasaStartError` if
        one exits or `startup_timeout_s` passes."""
        try:
            wait_until_ready([self.actions, self.server], self.startup_timeout_s)
        except BaseException:
            self.stop()
            raise
        log.info("Rasa ready at %s (actions at %s)", self.url, self.actions_url)

    def stop(self) -> None:
        """Stop the Rasa server, then the action server."""
        try:
            self.server.stop(self.grace_s)
        finally:
            self.actions.stop(self.grace_s)

    def __enter__(self) -> RasaProcesses:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- command line ---------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.rasa_process")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train the Rasa model if its inputs changed")
    train.add_argument("--project", type=Path, default=PROJECT_DIR)
    train.add_argument("--models", type=Path, default=None, help="default: <data dir>/rasa/models")
    train.add_argument("--venv", type=Path, default=None, help="default: .venv-rasa")
    train.add_argument("--force", action="store_true", help="train even if a model is current")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        model = train_if_changed(
            args.project,
            rasa_venv(args.venv),
            args.models or default_models_dir(),
            force=args.force,
        )
    except (RasaSetupError, RasaTrainingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(model)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
