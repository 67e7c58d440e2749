"""The demo page in headless Chromium, checked for what a person sees: rendered results, facets that
filter, the three-column compare view, paging, the fail-open flag once the sidecar is stopped, and
controls that start from the server's defaults.

Needs Debian's `chromium` and `chromium-driver` (apt) and selenium (the `dev` extra); skipped with
the install command when they are missing. Screenshots go to $SHOPRANK_SCREENSHOTS (a directory,
default: the test's temp dir).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from frontdoor.http import create_app
from frontdoor.search import SearchService
from frontdoor.server import BackgroundServer, start_in_background
from shoprank.settings import Settings
from sidecar.server import create_server
from tests.frontdoor.conftest import catalogue_rows, stack_settings

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "apt-get install -y chromium chromium-driver && pip install -c constraints.txt selenium==4.51.0"
# Headless, and nothing that reaches out to the network: these machines have none.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--window-size=1400,1000",
)
TITLES = {row["title"] for row in catalogue_rows()}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium driven over WebDriver, with a fresh profile."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(f"no Chromium at {CHROMIUM} / {CHROMEDRIVER}: {INSTALL}")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip(f"selenium is not installed: {INSTALL}")
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for a driver online
    profile = tempfile.mkdtemp(prefix="shoprank-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("SHOPRANK_SCREENSHOTS") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def stack(stack_dir: Path, service_for: Callable[..., SearchService]) -> Iterator[tuple[BackgroundServer, Any]]:
    """The front door on a free port, with its own tiny sidecar the test may stop."""
    sidecar, port, _ = create_server(stack_settings(stack_dir, listen="127.0.0.1:0"), background_load=False)
    service = service_for(f"127.0.0.1:{port}", sidecar_deadline_ms=2000)
    http = start_in_background(create_app(service))
    yield http, sidecar
    http.stop()
    sidecar.stop(0).wait()


class Page:
    """What a shopper sees and does on the demo page."""

    def __init__(self, driver: Any) -> None:
        from selenium.webdriver.common.by import By

        self.driver = driver
        self.by = By

    def _answered(self) -> int:
        return int(self.driver.execute_script("return Number(document.body.dataset.answered || 0)"))

    def act(self, action: Callable[[], None]) -> None:
        """Do something that searches, and wait until the page has shown the answer."""
        from selenium.webdriver.support.ui import WebDriverWait

        before = self._answered()
        action()
        WebDriverWait(self.driver, 30).until(lambda _d: self._answered() > before)

    def find(self, css: str) -> Any:
        return self.driver.find_element(self.by.CSS_SELECTOR, css)

    def all(self, css: str) -> list[Any]:
        return list(self.driver.find_elements(self.by.CSS_SELECTOR, css))

    def texts(self, css: str) -> list[str]:
        return [e.text for e in self.all(css)]

    def search(self, words: str) -> None:
        box = self.find("#q")
        box.clear()
        box.send_keys(words)
        self.act(lambda: self.find("#go").click())


def test_a_shopper_searches_filters_compares_and_sees_fail_open(
    browser: Any, stack: tuple[BackgroundServer, Any], screenshots: Path
) -> None:
    http, sidecar = stack
    browser.get(http.url + "/")
    page = Page(browser)

    page.search("coffee mug")
    titles = page.texts("#results li.card .title")
    assert len(titles) == 10
    assert all(any(t.startswith(known) for known in TITLES) for t in titles), titles
    assert "reranked by tiny-ce" in page.find("#status").text
    assert not page.all("#fail-open")
    legend = page.find("#latency").text
    for stage in ("embed", "first stage", "tokenize", "inference", "diversify", "total"):
        assert stage in legend, legend

    acme = page.find('#facets input[data-facet="brand"][data-value="Acme"]')
    page.act(acme.click)
    brands = page.texts("#results li.card .brand")
    assert brands
    assert set(brands) == {"Acme"}
    assert page.find('#facets input[data-facet="brand"][data-value="Acme"]').is_selected()

    page.act(lambda: page.find("#facets button.clear").click())
    page.act(lambda: page.find("#compare").click())
    columns = page.all("#compare-view .column")
    assert [c.get_attribute("data-column") for c in columns] == ["first_stage", "reranked", "diversified"]
    headings = page.texts("#compare-view .column h2")
    assert [h.split()[0] for h in headings] == ["First", "Reranked", "Diversified"]
    for column in columns:
        shown = column.find_elements(page.by.CSS_SELECTOR, "li.card .title")
        assert len(shown) == 10
        assert all(title.text for title in shown)
    latency = page.find("#latency").text
    assert "from the cached ranked window" in latency
    assert "inference" in latency, "a page from the cache still shows what ranking its window took"
    browser.save_screenshot(str(screenshots / "compare.png"))

    first_page = [c.get_attribute("data-id") for c in page.all('#compare-view [data-column="diversified"] li.card')]
    page.act(lambda: page.find("#next").click())
    assert page.find("#page-info").text.startswith("page 2 of")
    second_page = [c.get_attribute("data-id") for c in page.all('#compare-view [data-column="diversified"] li.card')]
    assert second_page
    assert not set(first_page) & set(second_page)

    sidecar.stop(0).wait()
    page.act(lambda: page.find("#compare").click())
    page.search("desk lamp")
    flag = page.find("#fail-open")
    assert flag.is_displayed()
    assert flag.text == "FAIL-OPEN"
    assert "first-stage order" in page.find("#status").text
    assert len(page.texts("#results li.card .title")) == 10
    browser.save_screenshot(str(screenshots / "fail-open.png"))


@pytest.mark.parametrize(
    "overrides",
    [{}, {"diversity_method": "mmr", "diversity_strength": 0.35, "diversity_attribute_weight": 0.2}],
    ids=["settings-defaults", "overridden"],
)
def test_the_controls_start_from_the_server_defaults(
    browser: Any, service_for: Callable[..., SearchService], closed_address: str, overrides: dict[str, Any]
) -> None:
    import json
    import urllib.request

    from selenium.webdriver.support.ui import WebDriverWait

    settings = Settings(**overrides)
    http = start_in_background(create_app(service_for(closed_address, **overrides)))
    try:
        with urllib.request.urlopen(http.url + "/api/defaults", timeout=10) as answer:
            defaults = json.load(answer)
        assert (defaults["diversity"], defaults["strength"], defaults["attribute_weight"]) == (
            settings.diversity_method,
            settings.diversity_strength,
            settings.diversity_attribute_weight,
        )
        browser.get(http.url + "/")
        page = Page(browser)
        WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.body.dataset.defaults"))
        assert browser.execute_script("return document.body.dataset.defaults") == "loaded"
        assert page.find("#diversity").get_attribute("value") == defaults["diversity"]
        assert float(page.find("#strength").get_attribute("value")) == pytest.approx(defaults["strength"])
        assert float(page.find("#attribute-weight").get_attribute("value")) == pytest.approx(
            defaults["attribute_weight"]
        )
        assert page.find("#mode").get_attribute("value") == defaults["mode"]
        assert page.find("#rerank").is_selected() is defaults["rerank"]
        assert page.find("#strength-value").text == f"{defaults['strength']:.2f}"

        # The first search asks for exactly those options.
        page.search("coffee mug")
        sent = browser.execute_script("return Object.fromEntries(new URLSearchParams(location.search))")
        assert sent["diversity"] == defaults["diversity"]
        assert float(sent["strength"]) == pytest.approx(defaults["strength"])
        assert float(sent["attribute_weight"]) == pytest.approx(defaults["attribute_weight"])
        assert sent["mode"] == defaults["mode"]
        assert int(sent["page_size"]) == defaults["page_size"]
    finally:
        http.stop()
