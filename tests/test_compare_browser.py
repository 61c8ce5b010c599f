"""The Compare models tab in a real browser (Playwright + Debian's Chromium): present with two models
configured, answering with both side by side (at 1400 and 390 px wide, where a table wider than the screen
scrolls in its own box instead of being cut), and absent otherwise, with the About tab saying how to turn it on.

Screenshots go to ``artifacts/screenshots/`` (override with ``BERTDEMO_SCREENSHOTS``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_browser import SHOTS, TIMEOUT, box, free_port, wait_text  # shared, not copied
from test_browser import browser as browser  # the module's Chromium (a fixture)
from test_browser import pytestmark as browser_marks

pytestmark = browser_marks
DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module", params=["two-models", "one-model"])
def app(request: pytest.FixtureRequest, settings: Any, other_mlm_dir: Path, other_clf_dir: Path,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The app with a second masked LM and classifier configured, or with none."""
    from bertdemo.service import ModelService
    from bertdemo.ui import build_app, launch_kwargs

    s = settings.replace(output_dir=str(tmp_path_factory.mktemp("cmp_browser")))
    if request.param == "two-models":
        s = s.replace(compare_mlm_model=str(other_mlm_dir), compare_sentiment_model=str(other_clf_dir))
    service = ModelService(s)
    demo = build_app(s, service=service)
    kwargs = launch_kwargs(s)
    kwargs.update(server_name="127.0.0.1", server_port=free_port())
    demo.launch(prevent_thread_lock=True, quiet=True, **kwargs)
    yield request.param, f"http://127.0.0.1:{kwargs['server_port']}/"
    demo.close()
    service.close()


def open_page(browser: Any, url: str, viewport: dict[str, int]) -> Any:
    page = browser.new_context(viewport=viewport).new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(url, wait_until="load")
    page.locator("#chat-input textarea").wait_for()
    return page


def compare_and_shoot(page: Any, name: str) -> str:
    page.get_by_role("tab", name="Compare models").click()
    page.locator("#mc-run").click()
    text = wait_text(page, "mc-result", r"\d ms")
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    return text


def test_compare_tab_shows_both_models_or_is_absent(browser: Any, app: tuple[str, str], settings: Any) -> None:
    mode, url = app
    page = open_page(browser, url, DESKTOP)
    try:
        tab = page.get_by_role("tab", name="Compare models")
        if mode == "one-model":
            assert tab.count() == 0 and page.locator("#mc-run").count() == 0
            page.get_by_role("tab", name="About").click()
            about = wait_text(page, "about-md", "BERTDEMO_COMPARE_MLM_MODEL")
            assert "BERTDEMO_COMPARE_SENTIMENT_MODEL" in about
            page.screenshot(path=str(SHOTS / "compare-absent-1400.png"), full_page=True)
            return
        text = compare_and_shoot(page, "compare-1400")
        mlm = Path(settings.mlm_model).name
        assert mlm in text and "other-mlm" in text and "parameters" in text and "size" in text
        # another task: the model choices follow the task's kind
        page.locator("#mc-task").get_by_text("sentiment").click()
        page.wait_for_function("() => document.querySelector('#mc-model-b input').value === 'other-clf'")
        box(page, "mc-text").fill("i hated this movie")
        page.locator("#mc-run").click()
        text = wait_text(page, "mc-result", "other-clf")
        assert Path(settings.sentiment_model).name in text and "probabilities" in text
    finally:
        page.context.close()
    check_phone(browser, url)


def check_phone(browser: Any, url: str) -> None:
    """At 390 px the page does not scroll sideways; a table wider than the screen scrolls in its own box."""
    page = open_page(browser, url, PHONE)
    try:
        compare_and_shoot(page, "compare-390")
        sizes = page.evaluate("""() => { const t = document.querySelector('#mc-result table');
            return {page: document.documentElement.scrollWidth, view: window.innerWidth,
                    overflow: getComputedStyle(t).overflowX, right: t.getBoundingClientRect().right}; }""")
        assert sizes["page"] <= sizes["view"], sizes
        assert sizes["overflow"] == "auto" and sizes["right"] <= sizes["view"] + 1, sizes
    finally:
        page.context.close()
