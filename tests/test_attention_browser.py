"""The Attention tab in a real browser (Playwright + Debian's Chromium), on the bundled model and on a
bert-base-shaped random model: the grid and the large view render, clicks pick a head and a token, and the
exported HTML opens offline with no request at all beyond its own file.

Screenshots go to ``artifacts/screenshots/`` (override with ``BERTDEMO_SCREENSHOTS``).
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

import pytest
from test_browser import CHROMIUM, LAUNCH_ARGS, SHOTS, TIMEOUT, free_port  # shared, not copied
from test_browser import pytestmark as browser_marks

pytestmark = browser_marks


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module", params=["bundled", "bert-base"])
def app(request: pytest.FixtureRequest, settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The app on the bundled masked LM, or on a bert-base-shaped random one (12 layers x 12 heads)."""
    from bertdemo.config import DEFAULT_MLM_MODEL
    from bertdemo.service import ModelService
    from bertdemo.ui import build_app, launch_kwargs

    mlm = DEFAULT_MLM_MODEL
    if request.param == "bert-base":
        from benchmarks.modelfactory import make_checkpoint

        mlm = str(make_checkpoint(tmp_path_factory.mktemp("bert_base_browser"), "pretraining", "bert-base",
                                  tokenizer_dir=DEFAULT_MLM_MODEL, seed=0))
    app_settings = settings.replace(mlm_model=mlm, output_dir=str(tmp_path_factory.mktemp("attn_browser_out")))
    service = ModelService(app_settings)
    demo = build_app(app_settings, service=service)
    kwargs = launch_kwargs(app_settings)
    kwargs.update(server_name="127.0.0.1", server_port=free_port())
    demo.launch(prevent_thread_lock=True, quiet=True, **kwargs)
    yield f"http://127.0.0.1:{kwargs['server_port']}/", request.param
    demo.close()
    service.close()


@pytest.fixture()
def page(browser: Any, app: tuple[str, str]) -> Iterator[Any]:
    url = app[0]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT)
    outside: list[str] = []
    host = urlparse(url).netloc
    pg.on("request", lambda req: outside.append(req.url) if req.url.startswith(("http", "ws")) and
          urlparse(req.url).netloc != host else None)
    pg.goto(url, wait_until="load")
    pg.get_by_role("tab", name="Attention").click()
    pg.locator("#at-grid img").first.wait_for()
    yield pg
    assert outside == []
    context.close()


def shape(pg: Any) -> tuple[int, int]:
    layers = int(pg.locator("#at-grid tbody tr").count())
    heads = int(pg.locator("#at-grid thead th").count()) - 2  # "L\H" and "avg"
    return layers, heads


def test_grid_large_view_and_clicks(page: Any, app: tuple[str, str]) -> None:
    layers, heads = shape(page)
    assert (layers, heads) == ((12, 12) if app[1] == "bert-base" else (6, 12))
    assert page.locator("#at-grid img").count() == layers * (heads + 1)
    assert page.evaluate("() => [...document.querySelectorAll('#at-grid img')].every(i => i.complete && i.naturalWidth > 0)")
    tokens = page.locator("#at-token input").input_value()
    assert tokens == "2: cat"
    n = page.locator("#at-large svg g rect").count()
    assert n == round(n ** 0.5) ** 2 and n >= 100  # an n x n heatmap
    # A click on a square of the grid shows that head large, and moves the layer slider and the head menu.
    page.locator(f'#at-grid img[data-layer="{layers}"][data-head="2"]').click()
    page.locator("#at-large h4").filter(has_text=f"Layer {layers}, head 2").wait_for()
    assert page.locator("#at-layer input[type=number]").input_value() == str(layers)
    assert page.locator("#at-head input").input_value() == "head 2"
    # A click on a token label shows where it attends.
    page.locator('#at-large text[data-token="4"]').first.click()
    page.locator("#at-where").filter(has_text="(token 4)").wait_for()
    assert re.match(r"^4: ", page.locator("#at-token input").input_value())
    # A new text: the grid and the token menu follow it.
    page.locator("#at-text textarea, #at-text input").first.fill("Paris is the capital of France.")
    page.locator("#at-pair textarea, #at-pair input").first.fill("")
    page.locator("#at-run").click()
    page.locator("#at-grid .attn-legend").filter(has_text="9 x 9 matrix").wait_for()
    assert page.locator("#at-large svg g rect").count() == 81
    if app[1] == "bundled":
        page.locator('#at-grid img[data-layer="1"][data-head="3"]').click()
        page.locator("#at-large h4").filter(has_text="Layer 1, head 3").wait_for()
        page.wait_for_timeout(300)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "attention.png"))


def test_a_refused_text_replaces_the_pictures_in_place(page: Any, app: tuple[str, str]) -> None:
    """A text over the token cap: its message in the note, the old heatmaps gone, no toast."""
    page.locator("#at-text textarea, #at-text input").first.fill("word " * 120)
    page.locator("#at-run").click()
    page.locator("#at-note").filter(has_text="tokens long").wait_for()
    assert "Text and second sentence:" in page.locator("#at-note").inner_text()  # the page's labels, not field names
    assert page.locator("#at-grid img").count() == 0 and page.locator("#at-large svg").count() == 0
    assert page.locator(".toast-body").count() == 0


def test_export_opens_offline_with_no_requests(page: Any, browser: Any, app: tuple[str, str], tmp_path: Path) -> None:
    layers, heads = shape(page)
    page.locator('#at-grid img[data-layer="1"][data-head="1"]').click()
    page.locator("#at-large h4").filter(has_text="Layer 1, head 1").wait_for()
    page.locator("#at-export").click()
    link = page.locator("#at-html-file a[href]").first
    link.wait_for()
    page.locator("#at-png-file a[href]").first.wait_for()
    href = urljoin(app[0], link.get_attribute("href"))
    saved = tmp_path / "attention.html"
    with urllib.request.urlopen(href, timeout=30) as resp:  # the app under test, on loopback
        saved.write_bytes(resp.read())
    assert b"<script" not in saved.read_bytes()

    context = browser.new_context(offline=True, viewport={"width": 1300, "height": 900})
    pg = context.new_page()
    requests: list[str] = []
    console: list[str] = []
    pg.on("request", lambda req: requests.append(req.url))
    pg.on("console", lambda msg: console.append(msg.text) if msg.type == "error" else None)
    pg.goto(saved.as_uri(), wait_until="load")
    assert pg.locator(".attn-grid img").count() == layers * (heads + 1)
    assert pg.evaluate("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    assert pg.locator("svg.attn-heatmap").count() == 2  # the chosen head and the layer's head average
    assert "Attention weights are not explanations" in pg.inner_text("body")
    assert [u for u in requests if not u.startswith("data:")] in ([], [saved.as_uri()])  # nothing but the file itself
    assert console == []
    context.close()
