"""API keys on the HTTP API: `require_scope(scope)` makes a route need a key with it.

Keys come from `teller keys create --scope S` and are sent as `Authorization: Bearer
<key>` or `X-API-Key: <key>`. Scopes are exact: `export` (datasets), `agent` (agent
console, agent votes, the feedback review screen), `admin`; a key has only the scopes
it was created with. A missing, unknown or revoked key is a 401; a valid key without
the scope is a 403.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Header

from bot.api.deps import RuntimeDep
from bot.api.errors import ApiError, UnauthorizedError
from db.api_keys import SCOPES, find_api_key


class ForbiddenError(ApiError):
    """A valid API key that lacks the scope the endpoint needs."""

    status_code = 403


@dataclass(frozen=True, slots=True)
class Principal:
    """Who called: the API key's id, name and scopes."""

    key_id: str
    name: str
    scopes: frozenset[str]


def presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key from `X-API-Key`, or from `Authorization: Bearer <key>`; None when absent."""
    if x_api_key and x_api_key.strip():
        return x_api_key.strip()
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def authenticate(runtime: RuntimeDep, key: str | None, scope: str) -> Principal:
    """The principal behind `key` if it holds `scope`; raises 401 or 403 otherwise."""
    how = (
        f"send an API key with the {scope!r} scope as `Authorization: Bearer <key>` or "
        f"`X-API-Key: <key>` (create one with `teller keys create --scope {scope}`)"
    )
    if key is None:
        raise UnauthorizedError(f"this endpoint needs an API key: {how}")
    with runtime.sessions.begin() as session:
        row = find_api_key(session, key=key)
        found = None if row is None else Principal(row.id, row.name, frozenset(row.scopes))
    if found is None:
        raise UnauthorizedError(f"the API key is not valid or was revoked: {how}")
    if scope not in found.scopes:
        granted = ", ".join(sorted(found.scopes))
        raise ForbiddenError(
            f"the API key {found.key_id} has the scopes {granted}; this endpoint needs "
            f"{scope!r} (create one with `teller keys create --scope {scope}`)"
        )
    return found


def require_scope(scope: str) -> Callable[..., Principal]:
    """A FastAPI dependency that returns the caller's `Principal` if its key has `scope`."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; scopes are {', '.join(sorted(SCOPES))}")

    def dependency(
        runtime: RuntimeDep,
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> Principal:
        return authenticate(runtime, presented_key(authorization, x_api_key), scope)

    dependency.__name__ = f"require_{scope}_scope"
    return dependency
