"""The app in a real browser: Playwright driving Debian's Chromium uses every tab once and reads the DOM.

Screenshots go to ``artifacts/screenshots/`` (gitignored; override with ``BERTDEMO_SCREENSHOTS``).
Skipped only when the Chromium binary is missing.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

CHROMIUM = os.environ.get("BERTDEMO_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]
SHOTS = Path(os.environ.get("BERTDEMO_SCREENSHOTS", Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"))
TIMEOUT = 60_000  # ms; the shared 2-core machine can be slow

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"Chromium not installed at {CHROMIUM} (apt-get install chromium)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from bertdemo.service import ModelService
    from bertdemo.ui import build_app, launch_kwargs

    app_settings = settings.replace(output_dir=str(tmp_path_factory.mktemp("browser_out")))
    demo = build_app(app_settings, service=ModelService(app_settings))
    kwargs = launch_kwargs(app_settings)
    kwargs.update(server_name="127.0.0.1", server_port=free_port())
    demo.launch(prevent_thread_lock=True, quiet=True, **kwargs)
    yield f"http://127.0.0.1:{kwargs['server_port']}/"
    demo.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(browser: Any, app_url: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT)
    pg.outside_requests = []  # type: ignore[attr-defined]
    host = urlparse(app_url).netloc

    def on_request(req: Any) -> None:
        netloc = urlparse(req.url).netloc
        if req.url.startswith(("http://", "https://", "ws://", "wss://")) and netloc != host:
            pg.outside_requests.append(req.url)  # type: ignore[attr-defined]

    pg.on("request", on_request)
    pg.goto(app_url, wait_until="load")
    pg.locator("#chat-input textarea").wait_for()
    yield pg
    context.close()


def box(page: Any, elem_id: str) -> Any:
    return page.locator(f"#{elem_id} textarea, #{elem_id} input[type=text]").first


def open_tab(page: Any, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def wait_text(page: Any, elem_id: str, pattern: str) -> str:
    loc = page.locator(f"#{elem_id}")
    loc.filter(has_text=re.compile(pattern, re.IGNORECASE)).wait_for()
    return loc.inner_text()


def wait_value(page: Any, elem_id: str, pattern: str) -> str:
    page.wait_for_function(
        """([id, pat]) => { const el = document.querySelector(`#${id} textarea, #${id} input[type=text]`);
                             return el && new RegExp(pat, 'i').test(el.value); }""",
        arg=[elem_id, pattern])
    return box(page, elem_id).input_value()


def shot(page: Any, name: str) -> None:
    page.wait_for_timeout(300)  # let transitions settle
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_chat_tab(page: Any) -> None:
    box(page, "chat-input").fill("paris is the [MASK] of france.")
    box(page, "chat-input").press("Enter")
    text = wait_text(page, "chat-bot", r"capital")
    assert "training" in text  # the caveat
    box(page, "chat-input").fill("i loved this movie")
    page.locator("#chat-send").click()
    wait_text(page, "chat-bot", r"Sentiment:")
    box(page, "chat-input").fill("<img src=x onerror=\"window.__xss=1\"> <script>window.__xss=2</script> he was sad")
    box(page, "chat-input").press("Enter")
    wait_text(page, "chat-bot", r"swapping")
    assert page.evaluate("window.__xss") is None
    assert page.locator("#chat-bot img[src='x']").count() == 0
    shot(page, "1_chat")


def test_fill_mask_tab(page: Any) -> None:
    open_tab(page, "Fill mask")
    box(page, "fm-text").fill("rome is the capital of [MASK].")
    page.locator("#fm-run").click()
    filled = wait_value(page, "fm-filled", r"^rome is the capital of \w+")
    assert "[MASK]" not in filled
    assert page.locator("#fm-label-0").inner_text().strip()
    assert not page.locator("#fm-label-1").is_visible()
    box(page, "fm-text").fill("[MASK] is the capital of [MASK].")
    page.locator("#fm-run").click()
    wait_value(page, "fm-filled", r"^\w+ is the capital of \w+")
    page.locator("#fm-label-1").wait_for(state="visible")
    page.locator("#cmp-run").click()
    note = wait_text(page, "cmp-note", r"top answer")
    assert note
    assert wait_value(page, "cmp-filled-b", r"^the woman")
    shot(page, "2_fill_mask")


def test_next_sentence_tab(page: Any) -> None:
    open_tab(page, "Next sentence")
    box(page, "ns-a").fill("paris is the capital of france.")
    box(page, "ns-b").fill("the sky is blue today.")
    page.locator("#ns-run").click()
    wait_text(page, "ns-note", r"P\(B follows A\)")
    assert "%" in page.locator("#ns-label").inner_text()
    box(page, "rk-cands").fill("of france.\nthe sky is blue today.\nrome")
    page.locator("#rk-run").click()
    wait_text(page, "rk-table", r"the sky is blue today")
    shot(page, "3_next_sentence")


def test_sentiment_tab(page: Any, tmp_path: Path) -> None:
    open_tab(page, "Sentiment")
    box(page, "st-text").fill("i loved this movie")
    page.locator("#st-explain").click()
    wait_text(page, "st-highlight", r"loved")
    assert "positive" in page.locator("#st-label").inner_text().lower()
    box(page, "cf-text").fill("He is a good doctor.")
    page.locator("#cf-run").click()
    assert wait_value(page, "cf-swapped", r"She is a good doctor") == "She is a good doctor."
    wait_text(page, "cf-note", r"label")
    # Batch CSV: upload, score, see the preview and a download link.
    page.get_by_text("Batch: score a CSV file").click()
    src = tmp_path / "reviews.csv"
    src.write_text("text\ni loved this movie\na terrible film\n", encoding="utf-8")
    page.locator("#csv-file input[type=file]").set_input_files(str(src))
    page.locator("#csv-file").filter(has_text=re.compile(r"reviews\s*\.csv")).wait_for()  # gradio splits name and extension
    page.locator("#csv-run").click()
    wait_text(page, "csv-table", r"terrible")
    wait_text(page, "csv-download", r"sentiment_scores")
    assert page.locator("#csv-download a[download], #csv-download a[href]").count() >= 1
    shot(page, "4_sentiment")


def test_bias_audit_tab(page: Any) -> None:
    open_tab(page, "Bias audit")
    empty = wait_text(page, "au-table", r"outcome")  # named columns before any run, not "1 2 3"
    assert "95% interval" in empty
    page.get_by_text("What the numbers mean").click()
    assert "four-fifths rule" in wait_text(page, "au-glossary", r"DPD")
    limit = page.locator("#au-limit input[type=number]")
    limit.fill("10")
    limit.press("Enter")
    page.locator("#au-run").click()
    summary = wait_text(page, "au-summary", r"Verdict")
    assert re.search(r"PASS|FAIL|INCONCLUSIVE", summary)
    wait_text(page, "au-files", r"report")
    assert page.locator("#au-files a[href]").count() >= 3
    wait_text(page, "au-table", r"classifier")
    shot(page, "5_bias_audit")


def test_bias_audit_tab_audits_an_uploaded_csv_without_ticking(page: Any, tmp_path: Path) -> None:
    open_tab(page, "Bias audit")
    page.locator("#au-checks input[type=checkbox]").first.wait_for()
    boxes = page.locator("#au-checks input[type=checkbox]")
    for i in range(boxes.count()):
        if boxes.nth(i).is_checked():
            boxes.nth(i).uncheck()
    assert not any(boxes.nth(i).is_checked() for i in range(boxes.count()))
    page.get_by_text("Your own data (optional)").click()
    src = tmp_path / "groups.csv"
    rows = "".join(f"{t},{g}\n" for t, g in [("i loved this movie", "f"), ("a terrible film", "m"),
                                              ("a great film", "m"), ("a sad day", "f")] * 3)
    src.write_text("text,gender\n" + rows, encoding="utf-8")
    page.locator("#au-file input[type=file]").set_input_files(str(src))
    page.locator("#au-file").filter(has_text="groups.csv").wait_for()
    page.locator("#au-run").click()
    summary = wait_text(page, "au-summary", r"was added because you uploaded a file")  # (the earlier test's verdict is there)
    assert "user_data" in summary and "crows_pairs" not in summary
    assert "sample of" not in summary  # the file was used whole
    table = wait_text(page, "au-table", r"user_data")
    assert "gender" in table


def test_chat_audit_runs_in_the_audit_queue_only_when_asked(page: Any, app_url: str) -> None:
    """``/audit`` in the chat: the answer comes at once, the audit follows as its own event (the audits'
    concurrency group); any other message never queues that event."""
    import json
    import urllib.request

    with urllib.request.urlopen(app_url + "config", timeout=30) as resp:
        deps = json.loads(resp.read())["dependencies"]
    audit_fn = next(d["id"] for d in deps if d.get("api_name") == "chat_audit")
    joined: list[int] = []
    failed: list[str] = []

    def on_request(req: Any) -> None:
        if req.url.split("?")[0].endswith("/queue/join") and req.post_data:
            joined.append(json.loads(req.post_data).get("fn_index"))

    def on_response(resp: Any) -> None:
        if resp.status >= 500:
            failed.append(f"{resp.status} {resp.url}")

    page.on("request", on_request)
    page.on("response", on_response)
    try:
        open_tab(page, "Chat")
        page.locator("#chat-clear").click()
        box(page, "chat-input").fill("a great film")
        box(page, "chat-input").press("Enter")
        wait_text(page, "chat-bot", r"Sentiment:")
        page.wait_for_timeout(1000)
        assert joined and audit_fn not in joined, joined
        assert page.locator(".toast-body").count() == 0
        assert not failed, failed  # a plain message makes no failing request (no error-raising gate step)
        box(page, "chat-input").fill("/audit")
        box(page, "chat-input").press("Enter")
        wait_text(page, "chat-bot", r"Verdict")
        assert joined.count(audit_fn) == 1, joined
        assert "Quick audit queued" not in page.locator("#chat-bot").inner_text()
        shot(page, "1b_chat_audit")
        assert not failed, failed
    finally:
        page.remove_listener("request", on_request)
        page.remove_listener("response", on_response)


def test_framing_allowed_for_the_app_itself_only(page: Any, app_url: str) -> None:
    """The CSP frame-ancestors header: the app's own origin (and the Hub, on a Space) may frame it; a page
    of another origin gets a blocked frame, and the app itself still renders with the header."""
    other = page.context.new_page()
    try:
        other.set_content(f'<iframe id="f" src="{app_url}" width="800" height="600"></iframe>')
        other.wait_for_timeout(3000)
        framed = [f for f in other.frames if f != other.main_frame]
        assert framed and not framed[0].url.startswith(app_url), framed[0].url if framed else None
        other.goto(app_url, wait_until="load")
        other.evaluate("""(u) => { const f = document.createElement('iframe'); f.id = 'self-frame'; f.src = u;
                                   f.width = 800; f.height = 600; document.body.appendChild(f); }""", app_url)
        inner = other.frame_locator("#self-frame")
        inner.locator("#chat-input textarea").wait_for()
    finally:
        other.close()


def test_about_tab(page: Any) -> None:
    open_tab(page, "About")
    text = wait_text(page, "about-md", r"Loaded models")
    assert "not stored or logged" in text
    assert "fill mask + next sentence" in text and "sentiment" in text
    shot(page, "6_about")


def test_sentiment_outputs_change_together(page: Any) -> None:
    """Classify, change the text, Explain: the note follows the new label (no stale note); Classify clears the colours."""
    open_tab(page, "Sentiment")
    box(page, "st-text").fill("i loved this movie")
    page.locator("#st-run").click()
    wait_text(page, "st-note", r"positive")
    box(page, "st-text").fill("i hated this movie")
    page.locator("#st-explain").click()
    wait_text(page, "st-highlight", r"hated")
    wait_text(page, "st-note", r"negative")
    assert "positive" not in page.locator("#st-note").inner_text().lower()
    assert "negative" in page.locator("#st-label").inner_text().lower()
    box(page, "st-text").fill("i loved this movie")
    page.locator("#st-run").click()
    wait_text(page, "st-note", r"positive")
    page.wait_for_function("() => !document.querySelector('#st-highlight').innerText.includes('hated')")
    # the methods have human names and a one-line description
    assert page.locator("#st-method input").first.input_value() == "Integrated gradients"
    assert "blank text" in page.locator("#st-method-help").inner_text()
    assert "sarcasm" in page.locator("#st-caveat").inner_text()


def test_errors_replace_their_result_area(page: Any) -> None:
    open_tab(page, "Fill mask")
    box(page, "fm-text").fill("paris is the [MASK] of france.")
    page.locator("#fm-run").click()
    wait_value(page, "fm-filled", r"capital")
    wait_text(page, "fm-note", r"capital .*%")  # exact figures in the one number format
    box(page, "fm-text").fill("no mask here")
    page.locator("#fm-run").click()
    note = wait_text(page, "fm-note", r"Error")
    assert "Text with [MASK]" in note and "[MASK]" in note  # the field as labelled on the page
    page.wait_for_function("() => document.querySelector('#fm-filled textarea, #fm-filled input').value === ''")
    assert "capital" not in page.locator("#fm-label-0").inner_text()
    assert page.locator(".toast-body").count() == 0  # shown in place, not as a toast that piles up
    # the next good answer replaces the error
    box(page, "fm-text").fill("paris is the [MASK] of france.")
    page.locator("#fm-run").click()
    wait_value(page, "fm-filled", r"capital")
    page.wait_for_function("() => !document.querySelector('#fm-note').innerText.includes('Error')")
    # the counterfactual: an error replaces the old table and note
    open_tab(page, "Sentiment")
    box(page, "cf-text").fill("He is a good doctor.")
    page.locator("#cf-run").click()
    wait_text(page, "cf-note", r"label")
    box(page, "cf-text").fill("the sky is blue")
    page.locator("#cf-run").click()
    wait_text(page, "cf-note", r"Error.*group word")
    assert "doctor" not in page.locator("#cf-table").inner_text()
    assert wait_value(page, "cf-swapped", r"^$") == ""
    shot(page, "7_errors_in_place")


def test_next_sentence_caveat_and_percent(page: Any) -> None:
    open_tab(page, "Next sentence")
    assert "topical fit, not truth" in page.locator("#ns-caveat").inner_text()
    box(page, "rk-cands").fill("of france.\nthe sky is blue today.")
    page.locator("#rk-run").click()
    text = wait_text(page, "rk-table", r"the sky is blue today")
    assert re.search(r"\d\s%|<0\.1\s%", text) and not re.search(r"0\.\d{4}", text)


def test_csv_round_trip_keeps_columns_and_skips_empty(page: Any, tmp_path: Path) -> None:
    import csv
    import io

    open_tab(page, "Sentiment")
    acc = page.get_by_text("Batch: score a CSV file")
    if not page.locator("#csv-run").is_visible():
        acc.click()
    clear = page.locator("#csv-file button[aria-label='Clear']")
    if clear.count():  # the file of an earlier test is still there
        clear.first.click()
    src = tmp_path / "joined.csv"
    src.write_text("id,text,source\n1,i loved this movie,web\n2,,shop\n3,a terrible film,app\n", encoding="utf-8")
    page.locator("#csv-file input[type=file]").set_input_files(str(src))
    page.locator("#csv-file").filter(has_text=re.compile(r"joined\s*\.csv")).wait_for()
    page.locator("#csv-run").click()
    note = wait_text(page, "csv-note", r"Skipped 1 row")
    assert "line 3" in note and "Scored 2 rows" in note
    wait_text(page, "csv-table", r"skipped")
    href = page.locator("#csv-download a[href]").first.get_attribute("href")
    body = page.request.get(href if href.startswith("http") else page.url.rstrip("/") + href).text()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["id"] for r in rows] == ["1", "2", "3"] and [r["source"] for r in rows] == ["web", "shop", "app"]
    assert rows[0]["label"] == "positive" and rows[1]["label"] == "" and rows[2]["label"] == "negative"


def open_page(browser: Any, url: str, viewport: dict[str, int], **extra: Any) -> Iterator[Any]:
    """The app at ``url`` in a new browser context (``viewport``, plus ``new_context``'s ``extra``), once its
    chat input shows; the context is closed afterwards."""
    context = browser.new_context(viewport=viewport, **extra)
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT)
    pg.goto(url, wait_until="load")
    pg.locator("#chat-input textarea").wait_for()
    yield pg
    context.close()


@pytest.fixture(scope="module")
def phone(browser: Any, app_url: str) -> Iterator[Any]:
    yield from open_page(browser, app_url, {"width": 390, "height": 844}, is_mobile=True, has_touch=True)


def test_every_tab_reachable_on_a_phone(phone: Any) -> None:
    """At 390x844 every tab name is on screen (no "..." overflow menu) and opens its tab."""
    phone.wait_for_timeout(500)  # let the tab bar measure itself
    names = ["Chat", "Fill mask", "Next sentence", "Sentiment", "Bias audit", "About"]
    for name in names:
        tab = phone.get_by_role("tab", name=name)
        assert tab.is_visible(), name
        tbox = tab.bounding_box()
        assert tbox and tbox["x"] >= 0 and tbox["x"] + tbox["width"] <= 390, (name, tbox)
    more = phone.get_by_label("More tabs")
    assert more.count() == 0 or not more.is_visible()
    for name, elem in zip(names, ["chat-input", "fm-text", "ns-a", "st-text", "au-run", "about-md"], strict=True):
        phone.get_by_role("tab", name=name).tap()
        phone.locator(f"#{elem}").wait_for(state="visible")
    phone.screenshot(path=str(SHOTS / "8_phone_about.png"))


def test_api_page_link(page: Any) -> None:
    assert page.get_by_text(re.compile(r"Use via API", re.IGNORECASE)).count() >= 1


def test_no_outside_requests(page: Any) -> None:
    assert page.outside_requests == []  # type: ignore[attr-defined]
