"""The chat widget in real Chromium against a real Teller with the demo bank."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from playwright.sync_api import Locator, Page, Route, expect

from bot.screenshots import DemoServer
from tests.browser.conftest import HostSite

AS_OF = re.compile(r"as of \d{4}-\d{2}-\d{2}")
# The accessible name of the focused control inside the widget (aria-label, label, text).
ACTIVE = """() => {
  const a = document.querySelector("teller-widget").shadowRoot.activeElement;
  if (!a) return null;
  const label = a.labels && a.labels.length ? a.labels[0].textContent : "";
  return a.getAttribute("aria-label") || label || a.textContent.trim();
}"""


def _open(page: Page, url: str) -> Locator:
    page.goto(url)
    page.get_by_role("button", name="Open chat: Harbor Bank assistant").click()
    return page.get_by_role("textbox", name="Your message")


def _bots(page: Page) -> Locator:
    return page.locator("teller-widget .msg.bot:not(.greeting)")


def _ask(page: Page, question: str) -> Locator:
    """Send `question` and wait for its answer (with feedback buttons) to be final."""
    count = _bots(page).locator(".feedback").count()
    box = page.get_by_role("textbox", name="Your message")
    box.fill(question)
    box.press("Enter")
    _bots(page).locator(".feedback").nth(count).wait_for()
    return _bots(page).nth(count)


def _state(page: Page, teller: DemoServer) -> dict[str, Any]:
    raw = page.evaluate("key => localStorage.getItem(key)", f"teller-widget:{teller.url}")
    state: dict[str, Any] = json.loads(raw)
    return state


def _votes(teller: DemoServer, answer_id: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{teller.url}/v1/feedback",
        params={"answer_id": answer_id},
        headers={"Authorization": f"Bearer {teller.agent_key}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    items = (
        body if isinstance(body, list) else next(v for v in body.values() if isinstance(v, list))
    )
    return [v for v in items if v.get("answer_id") == answer_id]


def _press_until(page: Page, key: str, name: str, limit: int = 40) -> None:
    for _ in range(limit):
        if page.evaluate(ACTIVE) == name:
            return
        page.keyboard.press(key)
    raise AssertionError(f"{key} never reached {name!r}; focus is on {page.evaluate(ACTIVE)!r}")


def test_rate_answer_streams_with_source_thumbs_down_is_stored_and_reload_keeps_it(
    page: Page, teller: DemoServer
) -> None:
    box = _open(page, f"{teller.url}/")
    expect(box).to_be_focused()
    with page.expect_response(re.compile(r"/v1/chat$")) as chat:
        answer = _ask(page, "What's your 30 year fixed rate?")
    assert chat.value.request.headers["accept"] == "text/event-stream"
    assert chat.value.headers["content-type"].startswith("text/event-stream")
    events = re.findall(r"^event: (\w+)$", chat.value.text(), flags=re.MULTILINE)
    assert events.count("token") > 3 and events[-1] == "final"

    expect(answer.locator(".text")).to_contain_text(AS_OF)
    expect(answer.locator(".text")).to_contain_text("6.125%")
    expect(answer.locator(".sources")).to_contain_text("Harbor Bank rate sheet")

    answer.get_by_role("button", name="Not helpful").click()
    expect(answer.get_by_label("Wrong")).to_be_focused()
    answer.get_by_label("Out of date").check()
    answer.get_by_label("Comment (optional)").fill("My branch quoted another rate.")
    answer.get_by_role("button", name="Send feedback").click()
    expect(answer.locator(".vote-status")).to_have_text("Thanks for your feedback.")
    expect(answer.get_by_role("button", name="Not helpful")).to_have_attribute(
        "aria-pressed", "true"
    )

    state = _state(page, teller)
    answer_id = state["messages"][-1]["answer"]["answer_id"]
    votes = _votes(teller, answer_id)
    assert len(votes) == 1
    vote = votes[0]
    assert vote["rating"] == "down"
    assert vote["reasons"] == ["outdated"]
    assert vote["comment"] == "My branch quoted another rate."

    # A reload keeps the conversation: same messages on screen, same conversation id.
    conversation_id = state["conversationId"]
    page.reload()
    expect(page.get_by_role("textbox", name="Your message")).to_be_visible()
    expect(_bots(page).first.locator(".text")).to_contain_text("6.125%")
    expect(_bots(page).first.get_by_role("button", name="Not helpful")).to_have_attribute(
        "aria-pressed", "true"
    )
    follow_up = _ask(page, "and for 15 years?")
    expect(follow_up.locator(".text")).to_contain_text("15-year")
    assert _state(page, teller)["conversationId"] == conversation_id


def test_keyboard_only_quick_replies_feedback_focus_trap_and_escape(
    page: Page, teller: DemoServer
) -> None:
    page.goto(f"{teller.url}/")
    _press_until(page, "Tab", "Open chat: Harbor Bank assistant")
    page.keyboard.press("Enter")
    assert page.evaluate(ACTIVE) == "Your message"

    page.keyboard.type("What are your CD rates?")
    page.keyboard.press("Enter")
    answer = _bots(page).first
    expect(answer.get_by_role("group", name="Suggested replies")).to_be_visible()
    assert page.evaluate(ACTIVE) == "Your message"

    # Quick replies are buttons: reach one with Shift+Tab and press Enter.
    _press_until(page, "Shift+Tab", "12 months")
    page.keyboard.press("Enter")
    second = _bots(page).nth(1)
    second.locator(".feedback").wait_for()
    expect(second.locator(".text")).to_contain_text("12-month")
    expect(answer.get_by_role("group", name="Suggested replies")).to_have_count(0)

    # Thumbs-down with a reason, by keyboard only.
    page.get_by_role("textbox", name="Your message").focus()
    _press_until(page, "Shift+Tab", "Not helpful")
    page.keyboard.press("Enter")
    assert page.evaluate(ACTIVE) == "Wrong"
    page.keyboard.press("Space")
    _press_until(page, "Tab", "Send feedback")
    page.keyboard.press("Enter")
    expect(second.locator(".vote-status")).to_have_text("Thanks for your feedback.")
    assert page.evaluate(ACTIVE) == "Not helpful"

    # Focus stays inside the open panel: Tab from the last control wraps to the first.
    page.get_by_role("button", name="Send", exact=True).focus()
    page.keyboard.press("Tab")
    assert page.evaluate(ACTIVE) == "Start a new conversation"
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(ACTIVE) == "Send"

    page.keyboard.press("Escape")
    expect(page.locator("teller-widget #teller-panel")).to_be_hidden()
    assert page.evaluate(ACTIVE) == "Open chat: Harbor Bank assistant"
    launcher = page.get_by_role("button", name="Open chat: Harbor Bank assistant")
    expect(launcher).to_have_attribute("aria-expanded", "false")


def test_errors_offer_retry_and_no_message_is_dropped(page: Page, teller: DemoServer) -> None:
    _open(page, f"{teller.url}/")
    stream_error = (
        'event: token\ndata: {"text": "Freeze "}\n\n'
        'event: error\ndata: {"type": "GeneratorUnavailableError", '
        '"message": "the generator is unavailable", "status": 503}\n\n'
    )

    def failing_stream(route: Route) -> None:
        route.fulfill(status=200, content_type="text/event-stream", body=stream_error)

    page.route("**/v1/chat", failing_stream)
    box = page.get_by_role("textbox", name="Your message")
    box.fill("How do I freeze a lost card?")
    box.press("Enter")
    first = page.locator("teller-widget .msg.user").first
    expect(first.get_by_role("alert")).to_contain_text("Something went wrong on our side")
    expect(_bots(page)).to_have_count(0)  # the partial answer is not left on screen

    page.unroute("**/v1/chat")
    page.route("**/v1/chat", lambda route: route.abort("internetdisconnected"))
    first.get_by_role("button", name="Retry").click()
    expect(first.get_by_role("alert")).to_contain_text("try again")
    expect(first.get_by_role("button", name="Retry")).to_be_visible()

    # A new message while the first is unsent: both go out, in order, once the network is back.
    page.unroute("**/v1/chat")
    box.fill("What's your 30 year fixed rate?")
    box.press("Enter")
    _bots(page).nth(1).locator(".feedback").wait_for()
    items = page.locator("teller-widget .log > li:not(.greeting)")
    expect(items).to_have_count(4)
    expect(items.nth(0)).to_contain_text("freeze a lost card")
    expect(items.nth(1).locator(".text")).to_contain_text("Freeze your card")
    expect(items.nth(2)).to_contain_text("30 year fixed")
    expect(items.nth(3).locator(".text")).to_contain_text(AS_OF)
    expect(page.locator("teller-widget [role=alert]")).to_have_count(0)


def test_narrow_screen_and_talk_to_a_person(page: Page, teller: DemoServer) -> None:
    page.set_viewport_size({"width": 320, "height": 640})
    _open(page, f"{teller.url}/")
    panel = page.locator("teller-widget #teller-panel")
    box = panel.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 320
    assert page.evaluate("document.documentElement.scrollWidth") <= 320

    page.get_by_role("button", name="Talk to a person").click()
    reply = _bots(page).first
    reply.locator(".feedback").wait_for()
    expect(reply.locator(".handoff-card")).to_contain_text(re.compile(r"Reference HO-\w{8}"))
    expect(page.locator("teller-widget .handoff-ref")).to_contain_text(
        re.compile(r"Your reference: HO-\w{8}")
    )
    for control in ("Talk to a person", "Send", "Close chat"):
        target = page.get_by_role("button", name=control, exact=True).bounding_box()
        assert target is not None and target["x"] >= 0 and target["x"] + target["width"] <= 320


HOSTILE_PAGE = """<!doctype html><html><head><title>Another bank</title><style>
* {{ color: rgb(255, 0, 0) !important; font-size: 40px !important; }}
button {{ background: rgb(0, 255, 0) !important; display: none !important; }}
p {{ margin: 50px !important; }}
</style></head><body>
<p id="own">The host page's own text.</p>
<script src="{teller}/widget.js" data-teller-url="{teller}" data-title="Other Bank help"
  data-color="#ffd400" data-position="left" defer></script>
</body></html>"""


def test_widget_embedded_on_another_origin_is_isolated_and_answers(
    page: Page, teller: DemoServer, host_site: HostSite
) -> None:
    host_site.pages["/bank.html"] = HOSTILE_PAGE.format(teller=teller.url)
    page.goto(f"{host_site.origin}/bank.html")
    launcher = page.get_by_role("button", name="Open chat: Other Bank help")
    expect(launcher).to_be_visible()  # the page's `button { display: none }` cannot reach it
    style = launcher.evaluate(
        "el => { const s = getComputedStyle(el); return [s.color, s.fontSize, s.backgroundColor]; }"
    )
    assert style[1] != "40px" and style[0] != "rgb(255, 0, 0)"
    # A light brand colour gets dark text, to keep 4.5:1 contrast.
    assert style == ["rgb(17, 17, 17)", style[1], "rgb(255, 212, 0)"]
    left = launcher.bounding_box()
    assert left is not None and left["x"] < 100  # data-position="left"

    launcher.click()
    answer = _ask(page, "How do I freeze a lost card?")
    expect(answer.locator(".text")).to_contain_text("Freeze your card")
    # ...and nothing of the widget leaks onto the host page.
    own = page.locator("#own").evaluate("el => getComputedStyle(el).marginTop")
    assert own == "50px"
    assert page.evaluate("document.querySelectorAll('.panel, .launcher').length") == 0
