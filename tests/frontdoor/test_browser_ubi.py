"""The demo page reports UBI events as a shop front-end would: impressions of what it shows, a click
on a title, an add-to-cart, all under the query id its search answer carried."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from frontdoor.server import BackgroundServer
from shoprank.ubi_log import EVENTS, QUERIES, UbiLog, ubi_dir
from tests.frontdoor.test_browser import Page, browser, stack  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


def _stored(stack_dir: Path, table: str, query_id: str, count: int) -> list[dict[str, Any]]:
    """The records of one query id once `count` of them are written (the writer is asynchronous)."""
    deadline = time.monotonic() + 30
    while True:
        found = [r for r in UbiLog(ubi_dir(stack_dir), table).read() if r.get("query_id") == query_id]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _sent(driver: Any) -> int:
    return int(driver.execute_script("return Number(document.body.dataset.eventsSent || 0)"))


def test_the_demo_page_sends_impressions_clicks_and_carts(
    browser: Any,  # noqa: F811
    stack: tuple[BackgroundServer, Any],  # noqa: F811
    stack_dir: Path,
) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    http, _ = stack
    browser.get(http.url + "/")
    page = Page(browser)
    page.search("coffee mug")
    WebDriverWait(browser, 30).until(lambda d: _sent(d) == 10)
    query_id = browser.execute_script("return ubi.queryId")
    client_id = browser.execute_script("return ubi.client")
    page.find("#results li.card:nth-child(3) .title").click()
    WebDriverWait(browser, 30).until(lambda d: _sent(d) == 11)
    page.find("#results li.card:nth-child(3) .cart").click()
    WebDriverWait(browser, 30).until(lambda d: _sent(d) == 12)

    (record,) = _stored(stack_dir, QUERIES, query_id, 1)
    assert record["client_id"] == client_id
    shown = [card.get_attribute("data-id") for card in page.all("#results li.card")]
    assert record["query_response_hit_ids"] == shown
    events = _stored(stack_dir, EVENTS, query_id, 12)
    impressions = sorted(
        (e["event_attributes"]["position"]["ordinal"], e["event_attributes"]["object"]["object_id"])
        for e in events
        if e["action_name"] == "impression"
    )
    assert impressions == list(enumerate(shown))
    acted = {
        (e["action_name"], e["event_attributes"]["object"]["object_id"], e["event_attributes"]["position"]["ordinal"])
        for e in events
        if e["action_name"] != "impression"
    }
    assert acted == {("click", shown[2], 2), ("add_to_cart", shown[2], 2)}
    assert {e["client_id"] for e in events} == {client_id}
    assert all(e["user_query"] == "coffee mug" for e in events)
