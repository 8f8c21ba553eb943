"""The agent console in real Chromium against a real Teller with the demo bank."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.sync_api import BrowserContext, Page, expect

from bot.screenshots import DemoServer

EDITED = "You can freeze the card yourself in the app under Cards, then Freeze card."


def _feedback(teller: DemoServer, answer_id: str) -> list[dict[str, Any]]:
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


def test_sign_in_follow_a_call_edit_a_suggestion_and_reopen_it(
    page: Page, context: BrowserContext, teller: DemoServer
) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=teller.url)
    page.goto(f"{teller.url}/agent")

    page.get_by_label("API key").fill("not-a-key")
    page.get_by_label("Your agent ID").fill("a.rivera")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That key was not accepted.")
    page.get_by_label("API key").fill(teller.agent_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Signed in as a.rivera")).to_be_visible()

    # The agent pastes two lines at once: the "Agent:" one is theirs, the other the caller's.
    line = page.get_by_label("What was said")
    line.fill(
        "Agent: Thank you for calling Harbor Bank. How can I help?\n"
        "I lost my debit card yesterday, how do I freeze it?"
    )
    line.press("Enter")
    turns = page.locator("#turns .turn")
    expect(turns).to_have_count(2)
    expect(turns.nth(0)).to_have_class(re.compile(r"\bagent\b"))
    expect(turns.nth(1)).to_have_class(re.compile(r"\bcustomer\b"))

    cards = page.locator(".suggestion")
    expect(cards.first).to_contain_text("Freeze your card")
    expect(cards.first.locator(".confidence")).to_contain_text(re.compile(r"Confidence \d+%"))
    expect(cards.first.locator(".sources")).to_contain_text("Debit and credit card help")
    expect(page.locator(".rates table")).to_have_count(0)
    assert re.fullmatch(r"#call=[\w-]+", page.evaluate("location.hash"))

    # Copy: the clipboard gets the text without citation markers; recorded as helpful.
    cards.first.get_by_role("button", name="Copy").click()
    expect(cards.first.locator(".action-status")).to_have_text("Copied · recorded")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "Freeze your card" in copied and "[1]" not in copied
    first_id = cards.first.get_attribute("data-answer-id")
    assert first_id
    assert [v["rating"] for v in _feedback(teller, first_id)] == ["up"]

    # Edit it: the edited text is stored as the agent's correction.
    cards.first.get_by_role("button", name="Edit").click()
    editor = cards.first.get_by_label("Edit the answer before using it")
    expect(editor).to_be_focused()
    editor.fill(EDITED)
    cards.first.get_by_role("button", name="Save and copy").click()
    expect(cards.first.locator(".action-status")).to_have_text("Edited · recorded")
    assert page.evaluate("navigator.clipboard.readText()") == EDITED
    votes = _feedback(teller, first_id)
    assert len(votes) == 1  # one vote per rater and answer: the edit replaced the copy
    assert votes[0]["correction"] == EDITED
    assert votes[0]["rating"] == "down"

    # A rate question shows the current rates next to the suggestion.
    line.fill("And what's your 12 month CD rate?")
    line.press("Enter")
    rates = page.locator(".rates table")
    expect(rates).to_contain_text("12 months")
    expect(rates).to_contain_text("%")
    expect(page.locator(".suggestion").first).to_contain_text(
        re.compile(r"as of \d{4}-\d{2}-\d{2}")
    )

    # Reopen later: the transcript, suggestions and the agent's edit are all there.
    page.reload()
    expect(turns).to_have_count(3)
    page.get_by_role("button", name=re.compile(r"\d+ suggestions?")).first.click()
    expect(page.locator(".suggestion").first.locator(".suggestion-text")).to_have_text(EDITED)
    expect(page.locator(".suggestion").first.locator(".action-status")).to_have_text(
        "Edited · recorded"
    )
    expect(page.get_by_role("navigation", name="Calls").get_by_role("link").first).to_contain_text(
        "I lost my debit card"
    )

    # Knowledge-base search from the top bar.
    page.get_by_role("searchbox", name="Search the knowledge base").fill("wire transfer cut-off")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#search-list .passage").first).to_be_visible()
