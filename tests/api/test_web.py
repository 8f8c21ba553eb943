"""The web front ends' files: content types, caching, security headers, CORS for the widget.

These tests need no runtime: the web router serves files only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.api.errors import install_error_handlers
from bot.api.routes import web

WEB = Path(web.__file__).resolve().parents[2] / "web"


def _app(origins: list[str] | None = None) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(web.router)

    @app.post("/v1/chat")
    def chat() -> dict[str, str]:
        return {"text": "hi"}

    @app.post("/v1/answers/{answer_id}/feedback")
    def feedback(answer_id: str) -> dict[str, str]:
        return {"answer_id": answer_id}

    @app.post("/v1/assist")
    def assist() -> dict[str, str]:
        return {"secret": "agent only"}

    web.install_cors(app, origins or [])
    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(_app())


def test_pages_are_html_with_security_headers_and_revalidated(client: TestClient) -> None:
    for path, marker in [("/", "Harbor Bank"), ("/agent", "agent console")]:
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert marker in response.text
        again = client.get(path, headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304 and again.content == b""


def test_demo_page_is_clearly_fictional_and_embeds_the_widget_with_one_tag(
    client: TestClient,
) -> None:
    page = client.get("/").text
    assert "fictional" in page
    tags = re.findall(r"<script\b[^>]*>", page)
    assert len(tags) == 1 and 'src="/widget.js"' in tags[0] and "data-teller-url" in tags[0]


def test_widget_script_is_cached_briefly_and_loadable_from_other_origins(
    client: TestClient,
) -> None:
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"].startswith("public, max-age=300")
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"
    # The stylesheet reference is resolved to a fingerprinted URL.
    match = re.search(r'"(/static/widget\.css\?v=([0-9a-f]{12}))"', response.text)
    assert match, "widget.js must name its stylesheet through {{asset:widget.css}}"
    css = client.get(match.group(1))
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert css.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert ":host" in css.text


def test_pages_reference_fingerprinted_assets_that_are_served_immutable(
    client: TestClient,
) -> None:
    page = client.get("/agent").text
    urls = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert {u.split("?")[0] for u in urls} >= {"/static/agent.js", "/static/agent.css"}
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    stale = client.get("/static/agent.js?v=000000000000")
    assert stale.status_code == 200 and stale.headers["cache-control"] == "no-cache"
    assert client.get("/static/agent.js").headers["content-type"].startswith("text/javascript")


def test_unknown_files_and_pages_through_static_are_404(client: TestClient) -> None:
    assert client.get("/static/nope.js").status_code == 404
    assert client.get("/static/index.html").status_code == 404
    assert client.get("/static/..%2Fapp.py").status_code == 404
    body = client.get("/static/nope.js").json()
    assert body["error"]["type"] == "DocumentNotFoundError"


def test_front_ends_never_inject_html_from_data() -> None:
    for name in ("widget.js", "agent.js"):
        source = (WEB / name).read_text()
        assert "innerHTML" not in source and "insertAdjacentHTML" not in source, name
        assert "eval(" not in source, name


def test_load_assets_resolves_references_and_rejects_missing_ones(tmp_path: Path) -> None:
    (tmp_path / "a.css").write_text("p{}")
    (tmp_path / "b.js").write_text('load("{{asset:a.css}}")')
    (tmp_path / "c.html").write_text('<script src="{{asset:b.js}}"></script>')
    assets = web.load_assets(tmp_path)
    assert assets["b.js"].body.decode() == f'load("{assets["a.css"].url}")'
    assert assets["c.html"].body.decode() == f'<script src="{assets["b.js"].url}"></script>'
    assert assets["a.css"].url.startswith("/static/a.css?v=")

    (tmp_path / "d.js").write_text("{{asset:missing.css}}")
    with pytest.raises(ValueError, match="missing"):
        web.load_assets(tmp_path)
    (tmp_path / "d.js").write_text("{{asset:e.js}}")
    (tmp_path / "e.js").write_text("{{asset:d.js}}")
    with pytest.raises(ValueError, match="cycle"):
        web.load_assets(tmp_path)


def test_no_cors_by_default() -> None:
    client = TestClient(_app())
    preflight = client.options(
        "/v1/chat",
        headers={
            "Origin": "https://bank.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers
    response = client.post("/v1/chat", headers={"Origin": "https://bank.example"})
    assert "access-control-allow-origin" not in response.headers


def test_cors_allows_listed_origins_on_the_widget_endpoints_only() -> None:
    client = TestClient(_app(["https://bank.example/"]))
    preflight_headers = {
        "Origin": "https://bank.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    for path in ("/v1/chat", "/v1/answers/abc/feedback"):
        preflight = client.options(path, headers=preflight_headers)
        assert preflight.status_code == 200, path
        assert preflight.headers["access-control-allow-origin"] == "https://bank.example"
        assert "POST" in preflight.headers["access-control-allow-methods"]
        simple = client.post(path, headers={"Origin": "https://bank.example"})
        assert simple.headers["access-control-allow-origin"] == "https://bank.example"

    other = client.options(
        "/v1/chat", headers={**preflight_headers, "Origin": "https://evil.example"}
    )
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers

    # Agent endpoints stay same-origin whatever the allow-list says.
    agent = client.options("/v1/assist", headers=preflight_headers)
    assert "access-control-allow-origin" not in agent.headers
    response = client.post("/v1/assist", headers={"Origin": "https://bank.example"})
    assert "access-control-allow-origin" not in response.headers


def test_text_assets_are_gzipped_for_clients_that_accept_it(client: TestClient) -> None:
    plain = client.get("/widget.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    zipped = client.get("/widget.js", headers={"Accept-Encoding": "gzip, br"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "Accept-Encoding"
    assert zipped.content == plain.content  # httpx decodes it
    assert zipped.headers["etag"] != plain.headers["etag"]
    again = client.get(
        "/widget.js",
        headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["etag"]},
    )
    assert again.status_code == 304
