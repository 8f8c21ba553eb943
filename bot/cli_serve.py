"""`teller serve`: the API, with Rasa and its action server started beside it.

Wire it into the main CLI with `register`::

    from bot import cli_serve

    cli_serve.register(app)

Unless `--no-rasa` is given or TELLER_RASA_URL points at a running Rasa, the Rasa model
is trained when its inputs changed (`bot.rasa_setup`) and Rasa is run as child processes
(`bot.rasa_process`) for as long as the API runs. Failures print `error: ...` on stderr
and exit with status 2.
"""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Annotated

import typer

from bot.cli_common import fail, load_settings
from bot.settings import Settings


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (TELLER_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (TELLER_PORT).")] = None,
    no_rasa: Annotated[
        bool, typer.Option("--no-rasa", help="Answer through the pipeline, without Rasa.")
    ] = False,
) -> None:
    """Start the API and Rasa (docs at /docs, probes at /healthz and /readyz).

    Unless `--no-rasa` is given or TELLER_RASA_URL points at a running Rasa, the Rasa
    model is trained if its inputs changed, and Rasa and its action server are started
    beside the API and stopped with it. Until Rasa is up, chat answers are marked
    degraded.
    """
    settings = load_settings()
    logging.getLogger().setLevel(logging.INFO)
    host = host or settings.host
    port = port or settings.port
    # uvicorn shuts down on SIGTERM (systemd, docker stop, Kubernetes), then raises the
    # signal again for the handler it found; the default one ended the process there,
    # before `finally`, and Rasa and its action server (own session) lived on, orphaned.
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        _serve(settings, host, port, no_rasa=no_rasa)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _serve(settings: Settings, host: str, port: int, *, no_rasa: bool) -> None:
    import secrets

    import uvicorn
    from pydantic import SecretStr

    from bot.app import create_app

    rasa = None
    if not no_rasa and settings.rasa_url is None:
        from bot import rasa_process as rp
        from bot import rasa_setup as rs

        token = (
            settings.actions_token.get_secret_value()
            if settings.actions_token
            else secrets.token_urlsafe(32)
        )
        settings.ensure_dirs()
        try:
            model = rs.train_if_changed(
                rs.PROJECT_DIR, rs.rasa_venv(), rs.default_models_dir(settings.data_dir)
            )
            api_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            rasa = rp.RasaProcesses(
                model,
                api_url=f"http://{api_host}:{port}",
                actions_token=token,
                database_url=settings.sqlalchemy_url,
                redis_url=settings.redis_url,
                log_dir=settings.data_dir / "logs",
            ).start(wait=False)
        except (rs.RasaSetupError, rs.RasaTrainingError, rp.RasaStartError) as exc:
            fail(f"{exc} (or start with --no-rasa)")
        settings = settings.model_copy(
            update={"rasa_url": rasa.url, "actions_token": SecretStr(token)}
        )
    try:
        uvicorn.run(create_app(settings), host=host, port=port)
    finally:
        if rasa is not None:
            rasa.stop()


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    """Leave through `finally` blocks, with the status a shell gives a signal's death."""
    raise SystemExit(128 + signum)


def register(app: typer.Typer) -> None:
    """Add `serve` to the `teller` command."""
    app.command()(serve)


__all__ = ["register", "serve"]
