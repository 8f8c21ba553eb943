"""API keys on the HTTP API: `require_scope(scope)` makes a route need a key with it,
`AdminDep` makes it an administrative write.

Keys come from `teller keys create --scope S` and are sent as `Authorization: Bearer
<key>` or `X-API-Key: <key>`. Scopes are exact: `export` (datasets), `agent` (agent
console, agent votes, the feedback review screen), `admin` (writes: documents, rate
sheets, reranker training, the audit log); a key has only the scopes it was created
with. A missing, unknown or revoked key is a 401; a valid key without the scope is a 403.

Administrative writes take an `admin` key (each operator their own, named and
revocable, so the audit log says who) or the shared `TELLER_ADMIN_TOKEN` (bootstrap and
break-glass). With no admin token set (development) they are open to callers who send
no credentials; credentials that are sent are always checked.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from bot.api.deps import RuntimeDep, SettingsDep
from bot.api.errors import ApiError, UnauthorizedError
from bot.runtime import Runtime
from db.api_keys import SCOPES, find_api_key
from db.audit import Actor


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


def authenticate(runtime: Runtime, key: str | None, scope: str) -> Principal:
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


def client_address(request: Request) -> str | None:
    """The caller's address as the server saw it (behind a proxy: the proxy's, unless
    uvicorn is told to trust its forwarded headers)."""
    return request.client.host if request.client else None


def key_actor(principal: Principal, request: Request) -> Actor:
    """The audit log's actor for a request made with an API key."""
    return Actor(f"key:{principal.key_id}", name=principal.name, client=client_address(request))


def require_admin(
    request: Request,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Actor:
    """Who makes this administrative write: the admin token, an `admin` key, or nobody
    in particular when no admin token is set and no credentials were sent."""
    client = client_address(request)
    key = presented_key(authorization, x_api_key)
    token = settings.admin_token.get_secret_value() if settings.admin_token else None
    if key is None:
        if token is None:
            return Actor("open", client=client)
        raise UnauthorizedError(
            "this endpoint needs an API key with the 'admin' scope (`teller keys create "
            "--scope admin`) or the admin token, as `Authorization: Bearer <key>`"
        )
    if token is not None and secrets.compare_digest(key.encode(), token.encode()):
        return Actor("admin-token", client=client)
    runtime: Runtime = request.app.state.runtime
    return key_actor(authenticate(runtime, key, "admin"), request)


AdminDep = Annotated[Actor, Depends(require_admin)]
