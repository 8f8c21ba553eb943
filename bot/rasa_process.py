"""Rasa as child processes of Teller: train the model when its inputs change, run the
Rasa server and the action server, stop both cleanly.

Rasa 3.6 needs Python 3.10, so it lives in its own virtualenv (`.venv-rasa`, made by
`make rasa-setup`) and Teller drives it through its command line:

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
import hashlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Final
from urllib.parse import unquote, urlsplit

import httpx
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

PROJECT_DIR: Final = Path(__file__).resolve().parent / "rasa"
REPO_ROOT: Final = Path(__file__).resolve().parent.parent
VENV_ENV: Final = "TELLER_RASA_VENV"
MODELS_DIR_ENV: Final = "TELLER_RASA_MODELS_DIR"
KEEP_MODELS: Final = 3
# Quiet, offline Rasa: no telemetry, no SQLAlchemy 2.0 banner, fewer TensorFlow logs.
QUIET_ENV: Final = {
    "RASA_TELEMETRY_ENABLED": "false",
    "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "PYTHONUNBUFFERED": "1",
}


class RasaSetupError(RuntimeError):
    """The Rasa virtualenv or project is missing or unusable."""


class RasaTrainingError(RuntimeError):
    """`rasa train` failed; the message ends with the tail of its log."""


class RasaStartError(RuntimeError):
    """A Rasa process exited or did not become ready in time."""


# -- locating things ------------------------------------------------------------------


def rasa_venv(venv: str | Path | None = None) -> Path:
    """The Rasa virtualenv: `venv`, else $TELLER_RASA_VENV, else `.venv-rasa` in the repo.

    Raises `RasaSetupError` telling the user to run `make rasa-setup` when it is missing.
    """
    candidates = (
        [Path(venv)]
        if venv is not None
        else [Path(os.environ[VENV_ENV])]
        if os.environ.get(VENV_ENV)
        else [REPO_ROOT / ".venv-rasa", Path.cwd() / ".venv-rasa"]
    )
    for candidate in candidates:
        if (candidate / "bin" / "rasa").is_file():
            return candidate.resolve()
    tried = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise RasaSetupError(
        f"no Rasa virtualenv found (looked at {tried}); run `make rasa-setup` to create "
        f".venv-rasa, or point {VENV_ENV} at one with rasa==3.6.21"
    )


def rasa_venv_python(venv: str | Path | None = None) -> Path:
    """The Python 3.10 interpreter of the Rasa virtualenv (see `rasa_venv`)."""
    return rasa_venv(venv) / "bin" / "python"


def installed_rasa_version(venv: Path) -> str:
    """Rasa's version in `venv`, read from its `version.py` (no import: TensorFlow is slow)."""
    for version_file in sorted(venv.glob("lib/python3*/site-packages/rasa/version.py")):
        match = re.search(r"__version__\s*=\s*['\"]([^'\"]+)['\"]", version_file.read_text())
        if match:
            return match.group(1)
    raise RasaSetupError(f"rasa is not installed in {venv}; run `make rasa-setup`")


def default_models_dir(data_dir: Path | None = None) -> Path:
    """$TELLER_RASA_MODELS_DIR, else `<data dir>/rasa/models` (data dir: $TELLER_DATA_DIR)."""
    if os.environ.get(MODELS_DIR_ENV):
        return Path(os.environ[MODELS_DIR_ENV]).resolve()
    base = data_dir or Path(os.environ.get("TELLER_DATA_DIR", REPO_ROOT / ".teller-data"))
    return (base / "rasa" / "models").resolve()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# -- training -------------------------------------------------------------------------


def model_inputs(project_dir: Path) -> list[Path]:
    """The files a Rasa model is trained from: config, domain, and the training data."""
    files = [project_dir / "config.yml"]
    domain = project_dir / "domain.yml"
    files += [domain] if domain.is_file() else sorted((project_dir / "domain").rglob("*.yml"))
    data = project_dir / "data"
    files += sorted(p for p in data.rglob("*") if p.suffix in {".yml", ".yaml"} and p.is_file())
    missing = [str(p) for p in files if not p.is_file()]
    if missing or len(files) < 3:
        raise RasaSetupError(f"the Rasa project at {project_dir} is incomplete: {missing}")
    return files


def model_hash(project_dir: Path, *, rasa_version: str) -> str:
    """SHA-256 of the Rasa version and of every model input (relative path and bytes)."""
    digest = hashlib.sha256(f"rasa {rasa_version}\n".encode())
    for path in model_inputs(project_dir):
        content = path.read_bytes()
        relative = path.relative_to(project_dir).as_posix()
        digest.update(f"{relative}\n{len(content)}\n".encode())
        digest.update(content)
    return digest.hexdigest()


def train_if_changed(
    project_dir: Path, venv: Path, models_dir: Path, *, force: bool = False
) -> Path:
    """The model for the project as it is now, trained only when no model has its hash.

    Models are named by the first 16 hex digits of `model_hash`; training writes a
    temporary name that is renamed when complete, so an interrupted run never leaves
    a model that looks finished. The three newest models are kept. Raises
    `RasaTrainingError` with the tail of `<models_dir>/train.log` when training fails.
    """
    project_dir = project_dir.resolve()
    models_dir = models_dir.resolve()
    key = model_hash(project_dir, rasa_version=installed_rasa_version(venv))[:16]
    model = models_dir / f"{key}.tar.gz"
    if model.is_file() and not force:
        log.info("Rasa model %s is up to date", model.name)
        return model
    models_dir.mkdir(parents=True, exist_ok=True)
    partial = f"partial-{key}-{os.getpid()}"
    log_path = models_dir / "train.log"
    argv = [
        str(venv / "bin" / "rasa"), "train",
        "--config", "config.yml", "--domain", "domain.yml", "--data", "data",
        "--out", str(models_dir), "--fixed-model-name", partial,
    ]  # fmt: skip
    env = {**os.environ, **QUIET_ENV, "RASA_CACHE_DIRECTORY": str(models_dir / ".cache")}
    log.info("training the Rasa model %s (a few minutes)", model.name)
    started = time.monotonic()
    with log_path.open("w") as out:
        result = subprocess.run(
            argv, cwd=project_dir, env=env, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    produced = models_dir / f"{partial}.tar.gz"
    if result.returncode != 0 or not produced.is_file():
        produced.unlink(missing_ok=True)
        raise RasaTrainingError(
            f"`rasa train` failed (exit {result.returncode}); {log_path}:\n{_tail(log_path)}"
        )
    os.replace(produced, model)
    log.info("trained %s in %.0f s", model.name, time.monotonic() - started)
    _prune(models_dir, keep=KEEP_MODELS)
    return model


def _prune(models_dir: Path, *, keep: int) -> None:
    models = sorted(
        (p for p in models_dir.glob("*.tar.gz") if re.fullmatch(r"[0-9a-f]{16}\.tar\.gz", p.name)),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in models[keep:]:
        old.unlink(missing_ok=True)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    # Progress bars redraw with carriage returns; keep their last state only.
    cleaned = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
    return "\n".join(cleaned[-lines:])


# -- environment ----------------------------------------------------------------------


def tracker_store_url(database_url: str) -> str:
    """Teller's SQLAlchemy URL as Rasa's tracker store URL (Rasa's venv has psycopg2).

    >>> tracker_store_url("postgresql+psycopg://teller:pw@db:5432/teller")
    'postgresql://teller:pw@db:5432/teller'
    """
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return url.set(drivername="sqlite").render_as_string(hide_password=False)
    if backend == "postgresql":
        return url.set(drivername="postgresql").render_as_string(hide_password=False)
    raise RasaSetupError(
        f"Rasa's tracker store supports SQLite and PostgreSQL here, not {backend!r}"
    )


def lock_store_env(redis_url: str | None) -> dict[str, str]:
    """The lock store variables of endpoints.yml: in memory, or Redis at `redis_url`.

    `redis_url` is redis://[:password@]host[:port][/db] (db defaults to 1, Rasa's).
    """
    if not redis_url:
        return {
            "TELLER_RASA_LOCK_STORE": "in_memory",
            "TELLER_RASA_REDIS_HOST": "",
            "TELLER_RASA_REDIS_PORT": "",
            "TELLER_RASA_REDIS_PASSWORD": "",
            "TELLER_RASA_REDIS_DB": "",
        }
    parts = urlsplit(redis_url)
    if parts.scheme != "redis" or not parts.hostname:
        raise RasaSetupError(
            f"TELLER_REDIS_URL must look like redis://[:password@]host[:port][/db], "
            f"got scheme {parts.scheme!r}"
        )
    db = parts.path.strip("/") or "1"
    if not db.isdigit():
        raise RasaSetupError(f"the Redis database in TELLER_REDIS_URL must be a number, got {db!r}")
    return {
        "TELLER_RASA_LOCK_STORE": "redis",
        "TELLER_RASA_REDIS_HOST": parts.hostname,
        "TELLER_RASA_REDIS_PORT": str(parts.port or 6379),
        "TELLER_RASA_REDIS_PASSWORD": unquote(parts.password or ""),
        "TELLER_RASA_REDIS_DB": db,
    }


# -- processes ------------------------------------------------------------------------


class ManagedProcess:
    """One child process in its own session (Ctrl-C reaches the parent only), its output
    in a log file, ready when `ready_url` answers 200, stopped with SIGTERM then SIGKILL."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        log_path: Path,
        ready_url: str,
    ):
        self.name = name
        self.argv = list(argv)
        self.cwd = cwd
        self.env = dict(env)
        self.log_path = log_path
        self.ready_url = ready_url
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
        self._process = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def is_ready(self) -> bool:
        """True once the process answers 200 on `ready_url`; raises if it has exited."""
        if self._process is None:
            raise RasaStartError(f"{self.name} was not started")
        code = self._process.poll()
        if code is not None:
            raise RasaStartError(
                f"{self.name} exited with status {code} during start-up; "
                f"{self.log_path}:\n{_tail(self.log_path)}"
            )
        try:
            return httpx.get(self.ready_url, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

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
            tails = "\n".join(f"{p.log_path}:\n{_tail(p.log_path, 15)}" for p in pending)
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
