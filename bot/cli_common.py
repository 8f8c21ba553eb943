"""What every `teller` command module shares: reading the settings, failing clearly,
calling a running server's API (`--api URL`).

Failures print ``error: ...`` in red on stderr and exit with status 2 (the CLI's status
for "you can fix this"), so scripts and people see the same message.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from pydantic import ValidationError

from bot.settings import Settings

if TYPE_CHECKING:
    from bot.runtime import Runtime


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: <message>`` on stderr and exit with `code`."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def load_settings() -> Settings:
    """The settings from the environment; a bad value fails naming its variable."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = "TELLER_" + str(first["loc"][0]).upper() if first["loc"] else "settings"
        fail(f"invalid configuration ({field}): {first['msg']}")


@contextmanager
def opened_runtime(*, in_use_hint: str | None = None) -> Iterator[Runtime]:
    """The runtime of the environment's settings, closed afterwards; a database or index
    that cannot be opened fails with its message (plus `in_use_hint` when a running
    server holds the embedded index)."""
    from bot.runtime import build_runtime
    from db.errors import DatabaseError
    from retrieval.errors import IndexInUseError, RetrievalError

    try:
        runtime = build_runtime(load_settings())
    except IndexInUseError as exc:
        fail(f"{exc}; {in_use_hint}" if in_use_hint else str(exc))
    except (DatabaseError, RetrievalError) as exc:
        fail(str(exc))
    try:
        yield runtime
    finally:
        runtime.close()


def api_call(method: str, url: str, **kwargs: Any) -> Any:
    """Call a running Teller server and return its JSON body (a 207 counts as success).

    Sends ``Authorization: Bearer $TELLER_API_KEY`` (an operator's key with the `admin`
    scope: the audit log names it) or else ``$TELLER_ADMIN_TOKEN`` when one is set (the
    server's write and admin routes need one); an unreachable server or an error status
    fails with the server's own message.
    """
    import httpx

    # Read from the environment, not Settings: a client need not hold the server's
    # whole configuration (which refuses default secrets outside development).
    token = os.environ.get("TELLER_API_KEY") or os.environ.get("TELLER_ADMIN_TOKEN")
    if token:
        kwargs["headers"] = {**kwargs.get("headers", {}), "Authorization": f"Bearer {token}"}
    try:
        response = httpx.request(method, url, timeout=120, **kwargs)
    except httpx.HTTPError as exc:
        fail(f"could not reach {url}: {exc}")
    if response.status_code >= 400 and response.status_code != 207:
        try:
            message = response.json()["error"]["message"]
        except Exception:
            message = response.text[:500]
        fail(f"{response.status_code}: {message}")
    return response.json()
