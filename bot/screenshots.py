"""Screenshots of the chat widget and the agent console, for the README.

`take_screenshots(out_dir, base_url)` drives Chromium (Debian's `chromium`, through
Playwright) against a running Teller; without `base_url` it first starts one of its own
on a throwaway data dir with the demo bank loaded (`demo_server`), which is also what the
browser tests use. Nothing here is imported by the API: Playwright is needed only to
take screenshots and to run the browser tests.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

CHROMIUM_ENV = "TELLER_CHROMIUM"
DEFAULT_CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking")
INSTALL_HINT = (
    "install it with `apt-get install -y chromium` (or `make browser-setup`), "
    f"or point {CHROMIUM_ENV} at a Chromium binary"
)
DESKTOP = {"width": 1280, "height": 800}
NARROW = {"width": 320, "height": 640}


class BrowserUnavailableError(RuntimeError):
    """Playwright or the Chromium binary is missing; the message says how to install it."""


class ServerStartError(RuntimeError):
    """`teller serve` (or a setup command before it) failed; the message has its output."""


# -- the browser ----------------------------------------------------------------------------


def chromium_path() -> Path:
    """The Chromium binary to drive: $TELLER_CHROMIUM, else /usr/bin/chromium."""
    path = Path(os.environ.get(CHROMIUM_ENV) or DEFAULT_CHROMIUM)
    if not path.is_file() or not os.access(path, os.X_OK):
        raise BrowserUnavailableError(f"no Chromium at {path}: {INSTALL_HINT}")
    return path


def check_playwright() -> None:
    """Raise `BrowserUnavailableError` unless the `playwright` package is importable."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        raise BrowserUnavailableError(
            "the Python package `playwright` is not installed: "
            "`pip install playwright` (browsers are not downloaded; Debian's chromium is used)"
        ) from exc


def launch_browser(playwright: Playwright) -> Browser:
    """Headless Chromium from `chromium_path()`, with the flags these machines need."""
    return playwright.chromium.launch(
        executable_path=str(chromium_path()), args=list(LAUNCH_ARGS), headless=True
    )


# -- a Teller to point it at --------------------------------------------------------------


@dataclass(frozen=True)
class DemoServer:
    """A `teller serve` process on the demo bank, with an API key of scope `agent`."""

    url: str
    agent_key: str
    data_dir: Path
    env: Mapping[str, str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def teller_command() -> list[str]:
    """The `teller` entry point of this interpreter's environment."""
    script = Path(sys.executable).parent / "teller"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from bot.cli import main; main()"]


def _run(args: list[str], env: Mapping[str, str], what: str) -> str:
    done = subprocess.run(
        [*teller_command(), *args], env=dict(env), capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise ServerStartError(f"{what} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


_KEY_LINE = re.compile(r"^\s*(?:key|api key|api_key)?\s*[:=]?\s*(\S{20,})\s*$", re.IGNORECASE)


def parse_key(output: str) -> str:
    """The API key printed by `teller keys create`: the last line that is one long token."""
    for line in reversed(output.strip().splitlines()):
        match = _KEY_LINE.match(line)
        if match:
            return match.group(1)
    raise ServerStartError(f"no API key in the output of `teller keys create`:\n{output}")


@contextmanager
def demo_server(
    data_dir: Path,
    *,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    ready_timeout_s: float = 180.0,
) -> Iterator[DemoServer]:
    """Load the demo bank into `data_dir`, create an agent key, run `teller serve`.

    The process gets SQLite in `data_dir` (TELLER_DATABASE_URL is dropped) and is stopped
    with SIGINT when the block ends.
    """
    port = port or free_port()
    full_env = {
        **os.environ,
        "TELLER_DATA_DIR": str(data_dir),
        "TELLER_ENVIRONMENT": "test",
        **(env or {}),
    }
    full_env.pop("TELLER_DATABASE_URL", None)
    _run(["demo", "load"], full_env, "teller demo load")
    key = parse_key(_run(["keys", "create", "--scope", "agent"], full_env, "teller keys create"))
    log_path = data_dir / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*teller_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(process, url, log_path, ready_timeout_s)
        yield DemoServer(url=url, agent_key=key, data_dir=data_dir, env=full_env)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(f"teller serve exited early:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise ServerStartError(f"teller serve was not ready in {timeout_s:.0f} s:\n{log.read_text()}")


# -- the screenshots ----------------------------------------------------------------------


def take_screenshots(
    out_dir: Path, base_url: str | None = None, *, api_key: str | None = None
) -> list[Path]:
    """Write PNG screenshots of the widget and the agent console into `out_dir`.

    With `base_url`, use that running Teller (which must have the demo bank loaded) and
    start nothing; the agent console is shown signed in only when `api_key` (scope
    `agent`) is given. Without `base_url`, start a demo server for the duration.
    Returns the files written.
    """
    check_playwright()
    chromium_path()
    out_dir.mkdir(parents=True, exist_ok=True)
    if base_url is not None:
        return _shoot(out_dir, base_url.rstrip("/"), api_key)
    with (
        tempfile.TemporaryDirectory(prefix="teller-screenshots-") as tmp,
        demo_server(Path(tmp)) as server,
    ):
        return _shoot(out_dir, server.url, server.agent_key)


def _shoot(out_dir: Path, base_url: str, api_key: str | None) -> list[Path]:
    from playwright.sync_api import sync_playwright

    written: list[Path] = []

    def save(page: Page, name: str, *, full_page: bool = False) -> None:
        path = out_dir / name
        page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        written.append(path)

    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        try:
            page = browser.new_page(viewport=DESKTOP, reduced_motion="reduce")  # type: ignore[arg-type]
            page.goto(f"{base_url}/")
            page.get_by_role("button", name="Open chat").click()
            page.get_by_role("textbox", name="Your message").wait_for()
            save(page, "widget-open.png")

            _ask(page, "What's your 30 year fixed rate?")
            save(page, "widget-answer.png")

            _ask(page, "How do I freeze a lost card?")
            last = page.locator("teller-widget .msg.bot").last
            last.get_by_role("button", name="Not helpful").click()
            last.get_by_label("Out of date").check()
            last.get_by_label("Comment (optional)").fill(
                "The app menu is called Card controls now."
            )
            save(page, "widget-feedback.png")
            page.close()

            narrow = browser.new_page(viewport=NARROW, reduced_motion="reduce")  # type: ignore[arg-type]
            narrow.goto(f"{base_url}/")
            narrow.get_by_role("button", name="Open chat").click()
            _ask(narrow, "What are your CD rates?")
            save(narrow, "widget-320px.png")
            narrow.close()

            written += _agent(browser, base_url, api_key, out_dir)
        finally:
            browser.close()
    return written


def _ask(page: Page, question: str) -> None:
    bots = page.locator("teller-widget .msg.bot .feedback")
    before = bots.count()
    box = page.get_by_role("textbox", name="Your message")
    box.fill(question)
    box.press("Enter")
    bots.nth(before).wait_for(timeout=60_000)


def _agent(browser: Browser, base_url: str, api_key: str | None, out_dir: Path) -> list[Path]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, reduced_motion="reduce")
    page = context.new_page()
    page.goto(f"{base_url}/agent")
    if api_key is None:
        page.get_by_label("API key").wait_for()
        path = out_dir / "agent-signin.png"
        page.screenshot(path=str(path), animations="disabled")
        context.close()
        return [path]
    page.get_by_label("API key").fill(api_key)
    page.get_by_label("Your agent ID").fill("a.rivera")
    page.get_by_role("button", name="Sign in").click()
    line = page.get_by_label("What was said")
    line.fill(
        "Agent: Thank you for calling Harbor Bank, this is Ana. How can I help?\n"
        "Caller: Hi, I think I lost my debit card yesterday. Can I freeze it?"
    )
    line.press("Enter")
    page.locator(".suggestion").first.wait_for(timeout=60_000)
    page.locator("#turns .turn[data-status='pending']").first.wait_for(state="detached")
    written = [out_dir / "agent-console.png"]
    page.screenshot(path=str(written[0]), animations="disabled")

    line.fill("And what's your 12 month CD rate at the moment?")
    line.press("Enter")
    page.locator(".rates table").wait_for(timeout=60_000)
    card = page.locator(".suggestion").first
    card.get_by_role("button", name="Edit").click()
    card.get_by_role("textbox").fill(
        "Our 12-month CD pays 3.90% (APY 3.97%), as of 2026-10-15. Want me to open one for you?"
    )
    written.append(out_dir / "agent-edit.png")
    page.screenshot(path=str(written[-1]), animations="disabled")
    context.close()
    return written


__all__ = [
    "BrowserUnavailableError",
    "DemoServer",
    "ServerStartError",
    "chromium_path",
    "demo_server",
    "launch_browser",
    "take_screenshots",
]
