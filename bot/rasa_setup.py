"""Rasa's setup: where it is installed, the model trained when its inputs change, and
the environment its processes read.

Rasa 3.6 needs Python 3.10, so it lives in its own virtualenv (`.venv-rasa`, made by
`make rasa-setup`) and Teller drives it through its command line. A model is named by
the hash of the Rasa version, of its inputs (config, domain, training data, Teller's
own NLU components) and of the NLU's sentence encoder (`bot.nlu_encoder`, exported to
`<models dir>/encoder` before the first training), so it is trained only when one of
them changes:

    model = train_if_changed(PROJECT_DIR, rasa_venv(), default_models_dir())   # cached

`tracker_store_url` and `lock_store_env` turn Teller's settings into the variables of
`bot/rasa/endpoints.yml`. Running the model is `bot.rasa_process`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlsplit

from sqlalchemy.engine import make_url

from bot.nlu_encoder import ENCODER_ENV, ensure_encoder, export_key, source_model_dir

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


def default_encoder_dir() -> Path:
    """Where `train_if_changed` keeps the NLU's sentence encoder: `<models dir>/encoder`."""
    return default_models_dir() / "encoder"


# -- training -------------------------------------------------------------------------


def model_inputs(project_dir: Path) -> list[Path]:
    """The files a Rasa model is trained from: config, domain, the training data, and
    the code of Teller's own NLU components (`teller_nlu/`)."""
    files = [project_dir / "config.yml"]
    domain = project_dir / "domain.yml"
    files += [domain] if domain.is_file() else sorted((project_dir / "domain").rglob("*.yml"))
    data = project_dir / "data"
    files += sorted(p for p in data.rglob("*") if p.suffix in {".yml", ".yaml"} and p.is_file())
    files += sorted((project_dir / "teller_nlu").glob("*.py"))
    missing = [str(p) for p in files if not p.is_file()]
    if missing or len(files) < 3:
        raise RasaSetupError(f"the Rasa project at {project_dir} is incomplete: {missing}")
    return files


def model_hash(project_dir: Path, *, rasa_version: str, encoder_key: str = "") -> str:
    """SHA-256 of the Rasa version, the sentence encoder's export key (`export_key`) and
    every model input (relative path and bytes)."""
    digest = hashlib.sha256(f"rasa {rasa_version}\nencoder {encoder_key}\n".encode())
    for path in model_inputs(project_dir):
        content = path.read_bytes()
        relative = path.relative_to(project_dir).as_posix()
        digest.update(f"{relative}\n{len(content)}\n".encode())
        digest.update(content)
    return digest.hexdigest()


def nlu_env(project_dir: Path, encoder: Path) -> dict[str, str]:
    """What `rasa train` needs besides `QUIET_ENV`: the exported sentence encoder, and
    the project folder on PYTHONPATH so Rasa imports `teller_nlu` from any folder."""
    path = os.pathsep.join(p for p in (str(project_dir), os.environ.get("PYTHONPATH")) if p)
    return {ENCODER_ENV: str(encoder), "PYTHONPATH": path}


def train_if_changed(
    project_dir: Path,
    venv: Path,
    models_dir: Path,
    *,
    encoder_dir: Path | None = None,
    force: bool = False,
) -> Path:
    """The model for the project as it is now, trained only when no model has its hash.

    Models are named by the first 16 hex digits of `model_hash`; training writes a
    temporary name that is renamed when complete, so an interrupted run never leaves
    a model that looks finished. The three newest models are kept. Before training,
    the sentence encoder is exported to `encoder_dir` (`<models_dir>/encoder`) unless
    it is there already. Raises `RasaTrainingError` with the tail of
    `<models_dir>/train.log` when training fails.
    """
    project_dir = project_dir.resolve()
    models_dir = models_dir.resolve()
    source = source_model_dir()
    key = model_hash(
        project_dir, rasa_version=installed_rasa_version(venv), encoder_key=export_key(source)
    )[:16]
    model = models_dir / f"{key}.tar.gz"
    if model.is_file() and not force:
        log.info("Rasa model %s is up to date", model.name)
        return model
    models_dir.mkdir(parents=True, exist_ok=True)
    encoder = ensure_encoder((encoder_dir or models_dir / "encoder").resolve(), source)
    partial = f"partial-{key}-{os.getpid()}"
    log_path = models_dir / "train.log"
    argv = [
        str(venv / "bin" / "rasa"), "train",
        "--config", "config.yml", "--domain", "domain.yml", "--data", "data",
        "--out", str(models_dir), "--fixed-model-name", partial,
    ]  # fmt: skip
    env = {
        **os.environ,
        **QUIET_ENV,
        **nlu_env(project_dir, encoder),
        "RASA_CACHE_DIRECTORY": str(models_dir / ".cache"),
    }
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
            f"`rasa train` failed (exit {result.returncode}); {log_path}:\n{log_tail(log_path)}"
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


def log_tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a log file ("" when unreadable), for error messages."""
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
