"""Browser tests: Debian's Chromium, driven by Playwright, against a real `teller serve`.

One server per session (the demo bank in a temporary data dir, an agent key made with
`teller keys create --scope agent`); a fresh browser context per test. A missing
Chromium or Playwright fails the tests with the command that installs it: they are part
of the suite, not optional.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from bot.screenshots import (
    BrowserUnavailableError,
    DemoServer,
    ServerStartError,
    check_playwright,
    chromium_path,
    demo_server,
    launch_browser,
)

try:
    import playwright.sync_api  # noqa: F401
except ImportError as exc:  # an error, not a skip: these tests are part of the suite
    raise ImportError(
        "the browser tests need the Python package `playwright` (pip install playwright); "
        "Chromium itself comes from apt (`make browser-setup`)"
    ) from exc

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page


class HostSite:
    """Another website (another origin) that embeds the widget: pages are set by tests.

    A real server on loopback: Chromium lets a page load resources from loopback only when
    the page itself comes from a local address.
    """

    def __init__(self) -> None:
        pages: dict[str, str] = {}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.pages = pages
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HostSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def host_site() -> Iterator[HostSite]:
    with HostSite() as site:
        yield site


@pytest.fixture(scope="session")
def teller(tmp_path_factory: pytest.TempPathFactory, host_site: HostSite) -> Iterator[DemoServer]:
    """A running Teller with the demo bank; `host_site` may embed the widget (CORS)."""
    try:
        check_playwright()
        chromium_path()
    except BrowserUnavailableError as exc:
        pytest.fail(f"browser tests need Chromium and Playwright: {exc}", pytrace=False)
    with ExitStack() as stack:
        try:
            server = stack.enter_context(
                demo_server(
                    tmp_path_factory.mktemp("teller-browser"),
                    env={"TELLER_WIDGET_ORIGINS": json.dumps([host_site.origin])},
                )
            )
        except ServerStartError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield server


# Waits are upper bounds, not speed checks (latency lives in `teller bench`): an answer
# that takes a few seconds on a CI runner whose cores are busy must not fail a test of
# what the page shows. Playwright's own defaults (5 s for `expect`) did, under load.
WAIT_MS = 60_000


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    try:
        check_playwright()
        chromium_path()
    except BrowserUnavailableError as exc:
        pytest.fail(f"browser tests need Chromium and Playwright: {exc}", pytrace=False)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        chromium = launch_browser(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def context(browser: Browser, teller: DemoServer) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, reduced_motion="reduce")
    ctx.set_default_timeout(WAIT_MS)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A page that fails the test on any uncaught JavaScript error."""
    errors: list[Any] = []
    tab = context.new_page()
    tab.on("pageerror", lambda error: errors.append(error))
    yield tab
    assert not errors, f"JavaScript errors: {errors}"
