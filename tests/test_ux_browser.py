"""Fixes a newcomer's first tour found, in a real browser (Playwright + Debian's Chromium), at 1400 px and on
a phone (390 px): every error clears its whole result area (however often it happens), the Attention tab's
error state, the Bias audit table, the chat's two-sentence table on a phone, the export file names, and the
MCP address the About tab gives.

Screenshots go to ``artifacts/screenshots/ux_*.png`` (override with ``BERTDEMO_SCREENSHOTS``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from test_browser import SHOTS, box, free_port, open_page, open_tab, wait_text  # shared, not copied
from test_browser import browser as browser  # the module's Chromium (a fixture)
from test_browser import pytestmark as browser_marks

pytestmark = browser_marks
DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def app_url(settings: Any, other_mlm_dir: Path, other_clf_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app with a second model (so the Compare models tab is there), served on the port its settings name."""
    from bertdemo.service import ModelService
    from bertdemo.ui import build_app, launch_kwargs

    s = settings.replace(output_dir=str(tmp_path_factory.mktemp("ux_browser")), port=free_port(), mcp=True,
                         compare_mlm_model=str(other_mlm_dir), compare_sentiment_model=str(other_clf_dir))
    service = ModelService(s)
    demo = build_app(s, service=service)
    demo.launch(prevent_thread_lock=True, quiet=True, **launch_kwargs(s))
    yield f"http://127.0.0.1:{s.port}/"
    demo.close()
    service.close()


@pytest.fixture()
def page(browser: Any, app_url: str) -> Iterator[Any]:
    yield from open_page(browser, app_url, DESKTOP)


@pytest.fixture(params=["desktop", "phone"])
def view(request: pytest.FixtureRequest, browser: Any, app_url: str) -> Iterator[tuple[Any, str]]:
    """The app at 1400x1000 and on a phone (390x844), with the name of the view (for screenshots)."""
    extra = {"is_mobile": True, "has_touch": True} if request.param == "phone" else {}
    for pg in open_page(browser, app_url, DESKTOP if request.param == "desktop" else PHONE, **extra):
        yield pg, request.param


def shot(pg: Any, name: str, full_page: bool = True) -> None:
    pg.wait_for_timeout(300)  # let transitions settle
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"ux_{name}.png"), full_page=full_page)


def label_text(pg: Any, elem_id: str) -> str:
    return pg.locator(f"#{elem_id}").inner_text()


def set_text(pg: Any, elem_id: str, value: str) -> None:
    box(pg, elem_id).fill(value)


def good_then_error(pg: Any, run: str, fill: dict[str, tuple[str, str]], shown: str, note: str,
                    cleared: list[str]) -> None:
    """Three times: a good answer (``shown`` gets a %), then an error (``note`` says so and every element of
    ``cleared`` is empty of results). The second error used to leave the previous answer's chart beside it."""
    for _ in range(3):
        for elem_id, (good, _bad) in fill.items():
            set_text(pg, elem_id, good)
        pg.locator(f"#{run}").click()
        pg.wait_for_function("([id]) => document.querySelector(`#${id}`).innerText.includes('%')", arg=[shown])
        pg.wait_for_function("([id]) => !document.querySelector(`#${id}`).innerText.includes('Error')", arg=[note])
        for elem_id, (_good, bad) in fill.items():
            set_text(pg, elem_id, bad)
        pg.locator(f"#{run}").click()
        wait_text(pg, note, r"Error")
        pg.wait_for_timeout(400)  # anything that would come after the error's own update
        for elem_id in cleared:
            el = pg.locator(f"#{elem_id}")
            left = el.inner_text() + "".join(i.input_value() for i in el.locator("textarea, input[type=text]").all())
            assert "%" not in left, f"#{elem_id} still shows an old result beside the error: {left!r}"


def test_fill_mask_errors_clear_the_chart_every_time(page: Any) -> None:
    open_tab(page, "Fill mask")
    good_then_error(page, "fm-run", {"fm-text": ("paris is the [MASK] of france.", "no mask here")}, "fm-label-0",
                    "fm-note", ["fm-label-0"])
    assert box(page, "fm-filled").input_value() == ""
    shot(page, "fill_error")
    good_then_error(page, "cmp-run", {"cmp-a": ("the man worked as a [MASK].", "no mask here")}, "cmp-label-a",
                    "cmp-note", ["cmp-label-a", "cmp-label-b"])
    assert box(page, "cmp-filled-a").input_value() == "" and box(page, "cmp-filled-b").input_value() == ""


def test_next_sentence_and_sentiment_errors_clear_every_time(page: Any) -> None:
    open_tab(page, "Next sentence")
    good_then_error(page, "ns-run", {"ns-a": ("i went to the bakery.", "")}, "ns-label", "ns-note", ["ns-label"])
    open_tab(page, "Sentiment")
    good_then_error(page, "st-run", {"st-text": ("i loved this movie.", "")}, "st-label", "st-note",
                    ["st-label", "st-highlight"])
    good_then_error(page, "st-explain", {"st-text": ("i loved this movie.", "")}, "st-label", "st-note",
                    ["st-label", "st-highlight"])


def test_compare_models_errors_clear_every_time(page: Any) -> None:
    open_tab(page, "Compare models")
    good_then_error(page, "mc-run", {"mc-text": ("paris is the [MASK] of france.", "no mask here")}, "mc-result",
                    "mc-result", ["mc-result"])


def error_badges(pg: Any) -> list[str]:
    """Ids of the components showing gradio's red "Error" status badge."""
    return pg.evaluate("""() => [...document.querySelectorAll('.error')].filter(e => e.offsetParent !== null &&
        e.innerText.trim() === 'Error').map(e => (e.closest('[id]') || {}).id || '?')""")


def shown_names(pg: Any, elem_id: str) -> list[tuple[str, bool]]:
    """The file names a download box shows, each with whether it fits (nothing cut off)."""
    return pg.evaluate(r"""([id]) => [...document.querySelectorAll(`#${id} td.filename, #${id} .file-name`)]
        .map(e => [e.textContent.replace(/\s/g, ""),
                   [e, ...e.querySelectorAll('*')].every(x => x.scrollWidth <= x.clientWidth + 1)])""", [elem_id])


def test_attention_export_names_and_error_state(view: tuple[Any, str]) -> None:
    pg, viewport = view
    open_tab(pg, "Attention")
    pg.locator("#at-grid img").first.wait_for()
    pg.locator("#at-export").click()
    pg.locator("#at-html-file a[href]").first.wait_for()
    pg.locator("#at-png-file a[href]").first.wait_for()
    names = shown_names(pg, "at-html-file") + shown_names(pg, "at-png-file")
    shot(pg, f"attention_export_{viewport}")
    assert [n for n, _ in names] == ["attention.html", "attention.png"], names
    assert all(fits for _, fits in names), names
    box(pg, "at-text").fill(" ".join(["word"] * 80))
    pg.locator("#at-run").click()
    wait_text(pg, "at-note", r"Error")
    pg.wait_for_timeout(500)
    shot(pg, f"attention_error_{viewport}")
    assert error_badges(pg) == []
    assert pg.locator("#at-html-file a[href], #at-png-file a[href]").count() == 0  # the last text's downloads gone
    assert not pg.locator("#at-layer").is_visible() and not pg.locator("#at-token").is_visible()
    # a good text brings the controls back
    box(pg, "at-text").fill("the cat sat on the mat.")
    pg.locator("#at-run").click()
    pg.locator("#at-grid img").first.wait_for()
    pg.locator("#at-layer").wait_for(state="visible")
    assert "Error" not in pg.locator("#at-note").inner_text() and error_badges(pg) == []


def cut_off(pg: Any, elem_id: str, may_scroll: bool) -> list[str]:
    """The visible boxes inside ``elem_id`` whose content is wider than they are and that hide the rest (or,
    unless ``may_scroll``, that make a person scroll sideways to find it), with their text."""
    return pg.evaluate("""([id, mayScroll]) => [...document.querySelectorAll(`#${id} *`)].filter(e => {
        const o = getComputedStyle(e).overflowX;
        return e.checkVisibility({visibilityProperty: true}) && e.scrollWidth > e.clientWidth + 1 &&
               o !== 'visible' && !(mayScroll && ['auto', 'scroll'].includes(o));
    }).map(e => `${e.tagName}.${e.className}: ${e.innerText.slice(0, 80)}`)""", [elem_id, may_scroll])


def test_bias_audit_table_whole_and_inconclusive_says_what_to_do(view: tuple[Any, str]) -> None:
    pg, viewport = view
    open_tab(pg, "Bias audit")
    limit = pg.locator("#au-limit input[type=number]")
    limit.fill("5")
    limit.press("Enter")
    pg.locator("#au-run").click()
    summary = wait_text(pg, "au-summary", r"Verdict")
    wait_text(pg, "au-table", r"straddles|too few|inconclusive")
    pg.wait_for_timeout(500)
    shot(pg, f"audit_{viewport}")
    assert cut_off(pg, "au-table", may_scroll=viewport == "phone") == []
    narrowest = pg.evaluate("""() => Math.min(...[...document.querySelectorAll('#au-table td')]
        .filter(td => td.checkVisibility() && td.innerText.trim()).map(td => td.getBoundingClientRect().width))""")
    assert narrowest >= 60, narrowest  # no column squeezed to a letter per line
    if "INCONCLUSIVE**" in summary or "Verdict: INCONCLUSIVE" in summary:
        assert "raise the sample size" in summary.lower(), summary


def placeholder_fits(pg: Any, elem_id: str) -> bool:
    """Whether the box's placeholder shows whole: the lines it wraps to (in the box's font and inner width)
    all fit in the box's height."""
    return pg.evaluate("""([id]) => { const t = document.querySelector(`#${id} textarea, #${id} input`);
        const cs = getComputedStyle(t); const ctx = document.createElement('canvas').getContext('2d');
        ctx.font = cs.font; const inner = t.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
        const needs = Math.ceil(ctx.measureText(t.placeholder).width / inner - 0.02);
        const shows = Math.floor((t.clientHeight - parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom)) /
                                 parseFloat(cs.lineHeight) + 0.05);
        return needs <= (t.tagName === 'TEXTAREA' ? shows : 1); }""", [elem_id])


def test_chat_two_sentence_table_and_placeholder(view: tuple[Any, str]) -> None:
    pg, viewport = view
    box(pg, "chat-input").fill("The [MASK] was tired. || The [MASK] went to sleep.")
    box(pg, "chat-input").press("Enter")
    wait_text(pg, "chat-bot", r"Sentence B")
    pg.wait_for_timeout(500)
    shot(pg, f"chat_pair_{viewport}", full_page=False)
    assert cut_off(pg, "chat-bot", may_scroll=True) == []  # a table wider than the bubble scrolls in it
    clipped = pg.evaluate("""() => [...document.querySelectorAll('#chat-bot table')].filter(t => {
        const r = t.getBoundingClientRect(); const bot = document.querySelector('#chat-bot').getBoundingClientRect();
        const o = getComputedStyle(t).overflowX;
        return r.right > bot.right + 1 && !(['auto', 'scroll'].includes(o) && t.scrollWidth > t.clientWidth); }).length""")
    assert clipped == 0
    sentence_b = pg.evaluate("""() => { const th = [...document.querySelectorAll('#chat-bot th')]
        .find(h => h.innerText.includes('Sentence B')); const box = th.closest('table').getBoundingClientRect();
        return th.getBoundingClientRect().right <= box.right + 1; }""")
    assert sentence_b  # the Sentence B column shows without scrolling
    assert placeholder_fits(pg, "chat-input")  # the box emptied after sending


def test_about_explain_and_compare_as_shown(view: tuple[Any, str]) -> None:
    """About gives this app's own MCP address; Explain never lists most words as disagreements; Compare models
    says how its times were taken."""
    pg, viewport = view
    open_tab(pg, "About")
    about = wait_text(pg, "about-md", r"gradio_api/mcp")
    assert f"http://{urlparse(pg.url).netloc}/gradio_api/mcp/" in about and ":7860/" not in about
    pg.locator("#about-md code", has_text="mcpServers").scroll_into_view_if_needed()
    shot(pg, f"about_mcp_{viewport}", full_page=False)
    open_tab(pg, "Sentiment")
    box(pg, "st-text").fill("He is a good doctor.")
    pg.locator("#st-explain").click()
    note = wait_text(pg, "st-note", r"%")
    listed = note.split("methods disagree on ", 1)[1].split(":", 1)[0].split(", ") if "methods disagree on" in note else []
    assert len(listed) <= 2, note  # a few words at most (of the 5 strongest), else it says "unreliable"
    shot(pg, f"explain_{viewport}", full_page=False)
    open_tab(pg, "Compare models")
    pg.locator("#mc-run").click()
    result = wait_text(pg, "mc-result", r"ms")
    assert "median of 3 after an untimed warm-up" in result and "noisy" in result
    shot(pg, f"compare_{viewport}")
