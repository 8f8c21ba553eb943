"""`teller screenshots DIR`: PNG screenshots of the chat widget and the agent console.

Wire it into the main CLI with `register`::

    from bot import cli_web

    cli_web.register(app)

Without `--url`, a Teller with the demo bank is started on a throwaway data dir for the
duration; with `--url`, that running server is used and nothing is started (pass an
agent key with `--key` or TELLER_AGENT_KEY to show the console signed in).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def screenshots(
    out_dir: Annotated[Path, typer.Argument(help="Folder for the PNG files.")] = Path(
        "docs/screenshots"
    ),
    url: Annotated[
        str | None,
        typer.Option("--url", help="A running Teller with the demo bank; default: start one."),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option("--key", envvar="TELLER_AGENT_KEY", help="API key of scope agent (--url)."),
    ] = None,
) -> None:
    """Screenshot the widget (open, answering, feedback, 320 px) and the agent console."""
    from bot.screenshots import BrowserUnavailableError, ServerStartError, take_screenshots

    try:
        written = take_screenshots(out_dir, url, api_key=key)
    except (BrowserUnavailableError, ServerStartError) as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from exc
    for path in written:
        typer.echo(str(path))


def register(app: typer.Typer) -> None:
    """Add `screenshots` to the `teller` command."""
    app.command("screenshots")(screenshots)


__all__ = ["register", "screenshots"]
