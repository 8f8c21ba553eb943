"""The web front ends: the demo bank page (`/`), the chat widget and the agent console.

Files come from `bot/web/` and are read once. HTML and JavaScript may name another
asset as `{{asset:NAME}}`; that becomes `/static/NAME?v=<hash>`, a URL that changes
whenever the file does, so it is served as immutable. Unversioned URLs (`/widget.js`,
which host pages embed, and the pages themselves) are revalidated with an ETag.

`install_cors` lets the widget, embedded on another site, call the chat and feedback
endpoints; nothing else of the API is opened to other origins.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from retrieval.errors import DocumentNotFoundError

WEB_DIR = Path(__file__).resolve().parents[2] / "web"

# Paths the widget calls from a host page's origin.
WIDGET_API_PATHS = re.compile(r"^/v1/(chat|answers/[^/]+/feedback)$")

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
_ASSET_REF = re.compile(r"\{\{asset:([A-Za-z0-9_.-]+)\}\}")
_IMMUTABLE = "public, max-age=31536000, immutable"
_REVALIDATE = "no-cache"
# The widget script is embedded by URL on other sites: cache briefly, refresh quietly.
_WIDGET = "public, max-age=300, stale-while-revalidate=86400"
_PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class Asset:
    """One file of `bot/web`, ready to serve (text files also gzipped, once)."""

    name: str
    body: bytes
    content_type: str
    version: str  # first 12 hex digits of the body's SHA-256
    gzipped: bytes | None = None

    @property
    def etag(self) -> str:
        return f'"{self.version}"'

    @property
    def url(self) -> str:
        return f"/static/{self.name}?v={self.version}"


def _content_type(path: Path) -> str:
    return (
        _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    )


def _asset(name: str, body: bytes, content_type: str) -> Asset:
    compressible = content_type.startswith("text/") or content_type == "image/svg+xml"
    gzipped = gzip.compress(body, mtime=0) if compressible and len(body) > 1024 else None
    return Asset(name, body, content_type, hashlib.sha256(body).hexdigest()[:12], gzipped)


def load_assets(directory: Path = WEB_DIR) -> dict[str, Asset]:
    """Read every file of `directory`, resolving `{{asset:NAME}}` references.

    Files that refer to no asset are loaded first; then files that refer only to loaded
    ones, and so on. A reference to a missing file, or a cycle, raises `ValueError`.
    """
    raw = {
        p.name: p.read_bytes()
        for p in sorted(directory.iterdir())
        if p.is_file() and p.name[0] != "."
    }
    assets: dict[str, Asset] = {}
    pending = dict(raw)
    while pending:
        progressed = False
        for name, body in list(pending.items()):
            text = body.decode("utf-8") if Path(name).suffix in {".html", ".js", ".css"} else None
            refs = set(_ASSET_REF.findall(text)) if text is not None else set()
            if missing := refs - raw.keys():
                raise ValueError(f"{name} refers to missing assets: {', '.join(sorted(missing))}")
            if not refs <= assets.keys():
                continue
            if text is not None and refs:
                body = _ASSET_REF.sub(lambda m: assets[m.group(1)].url, text).encode("utf-8")
            assets[name] = _asset(name, body, _content_type(Path(name)))
            del pending[name]
            progressed = True
        if not progressed:
            raise ValueError(f"asset references form a cycle: {', '.join(sorted(pending))}")
    return assets


@cache
def _assets() -> dict[str, Asset]:
    return load_assets()


def _get(name: str) -> Asset:
    asset = _assets().get(name)
    if asset is None:
        raise DocumentNotFoundError(f"no such file: {name}")
    return asset


def _serve(request: Request, asset: Asset, cache_control: str, *, page: bool = False) -> Response:
    headers = {
        "Cache-Control": cache_control,
        "ETag": asset.etag,
        "X-Content-Type-Options": "nosniff",
    }
    if page:
        headers["Content-Security-Policy"] = _PAGE_CSP
        headers["Referrer-Policy"] = "same-origin"
        headers["X-Frame-Options"] = "DENY"
    else:
        # Host pages on other origins load the widget's script and stylesheet.
        headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    body = asset.body
    if asset.gzipped is not None:
        headers["Vary"] = "Accept-Encoding"
        if "gzip" in request.headers.get("accept-encoding", "").lower():
            body = asset.gzipped
            headers["Content-Encoding"] = "gzip"
            headers["ETag"] = f'"{asset.version}-gz"'
    if headers["ETag"] in {
        tag.strip() for tag in request.headers.get("if-none-match", "").split(",")
    }:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=asset.content_type, headers=headers)


@router.get("/")
def demo_page(request: Request) -> Response:
    """The demo page of Harbor Bank, a fictional bank, with the chat widget on it."""
    return _serve(request, _get("index.html"), _REVALIDATE, page=True)


@router.get("/agent")
def agent_console(request: Request) -> Response:
    """The agent-assist console (signs in with an API key of scope `agent`)."""
    return _serve(request, _get("agent.html"), _REVALIDATE, page=True)


@router.get("/widget.js")
def widget_script(request: Request) -> Response:
    """The embeddable chat widget."""
    return _serve(request, _get("widget.js"), _WIDGET)


@router.get("/static/{name}")
def static_file(name: str, request: Request, v: str | None = None) -> Response:
    """A stylesheet, script or image of the web front ends."""
    asset = _get(name)
    if asset.content_type.startswith("text/html"):
        raise DocumentNotFoundError(f"no such file: {name}")
    return _serve(request, asset, _IMMUTABLE if v == asset.version else _REVALIDATE)


class WidgetCORSMiddleware(CORSMiddleware):
    """Starlette's CORS handling, applied only to the paths the widget calls."""

    def __init__(
        self, app: ASGIApp, *, paths: re.Pattern[str], allow_origins: Collection[str]
    ) -> None:
        super().__init__(
            app,
            allow_origins=allow_origins,
            allow_methods=("POST",),
            allow_headers=("Content-Type", "Accept"),
            allow_credentials=False,  # the widget sends no cookies
            max_age=3600,
        )
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.paths.match(scope["path"]):
            await super().__call__(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def install_cors(app: FastAPI, origins: Collection[str]) -> None:
    """Let pages on `origins` call the widget's endpoints; no origins: same origin only.

    Origins are scheme://host[:port]; `"*"` allows any. Only `POST /v1/chat` and
    `POST /v1/answers/{id}/feedback` are opened; the agent and admin endpoints never are.
    """
    allowed = [origin.strip().rstrip("/") for origin in origins if origin.strip()]
    if allowed:
        app.add_middleware(WidgetCORSMiddleware, paths=WIDGET_API_PATHS, allow_origins=allowed)


__all__ = ["WIDGET_API_PATHS", "Asset", "install_cors", "load_assets", "router"]
