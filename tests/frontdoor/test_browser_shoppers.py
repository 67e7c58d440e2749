"""The demo page's shopper switch: shoppers A and B side by side see one query; what A puts in the cart
personalises A's next search and not B's."""

from __future__ import annotations

from typing import Any

import pytest

from frontdoor.server import BackgroundServer
from tests.frontdoor.test_browser import Page, browser, stack  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


def _column(page: Page, shopper: str) -> Any:
    return page.find(f'#compare-view [data-column="shopper-{shopper}"]')


def test_shopper_a_carts_a_product_and_only_a_is_personalised(
    browser: Any,  # noqa: F811
    stack: tuple[BackgroundServer, Any],  # noqa: F811
) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    http, _ = stack
    browser.get(http.url + "/")
    page = Page(browser)
    page.find("#shoppers").click()  # no query yet: nothing to search
    page.search("Zenith lamp")
    for shopper in ("a", "b"):
        assert _column(page, shopper).get_attribute("data-personalised") == "false"
    assert len(page.all('#compare-view [data-column="shopper-a"] li.card')) == 10
    sent = int(browser.execute_script("return Number(document.body.dataset.eventsSent || 0)"))
    page.find('#compare-view [data-column="shopper-a"] li.card:nth-child(2) .cart').click()
    WebDriverWait(browser, 30).until(
        lambda d: int(d.execute_script("return Number(document.body.dataset.eventsSent || 0)")) > sent
    )
    WebDriverWait(browser, 30).until(lambda _d: _searched_personalised(page))
    assert _column(page, "b").get_attribute("data-personalised") == "false"
    assert "personalised on 1 interactions" in _column(page, "a").text


def _searched_personalised(page: Page) -> bool:
    """Search again (the capture writes asynchronously) until shopper A's column is personalised."""
    page.act(lambda: page.find("#go").click())
    return bool(_column(page, "a").get_attribute("data-personalised") == "true")
