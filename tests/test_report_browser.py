"""The audit's report.html, built from a hostile user CSV, opened in headless Chromium (file:// URL).

The CSV carries ``<script>`` and ``<img onerror>`` payloads in its text and group values. The test
proves the payloads did not run (no ``window.__pwned``, no dialog), that they show up as escaped
text, that the page holds no script or foreign image element, and that it made no request other
than file:// (and inline data: images). Screenshot: ``artifacts/screenshots/report_hostile.png``
(gitignored; override the folder with ``BERTDEMO_SCREENSHOTS``). Skipped only without Chromium.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("BERTDEMO_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]
SHOTS = Path(os.environ.get("BERTDEMO_SCREENSHOTS", Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"))

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=2;alert(2)">'
IMG_TEXT = "<img src=x onerror=window.__pwned=3;alert(3)>"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"Chromium not installed at {CHROMIUM} (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def hostile_report(tiny_mlm_dir: Path, tiny_clf_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bertdemo.cli import main

    folder = tmp_path_factory.mktemp("hostile_report")
    data = folder / "hostile.csv"
    rows = [("i loved this movie " + SCRIPT, "positive", IMG), ("a terrible film " + IMG_TEXT, "negative", SCRIPT),
            ("a great film", "positive", IMG), ("sad day", "negative", SCRIPT)] * 3
    with data.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label", "group"])
        w.writerows(rows)
    out = folder / "report"
    env = {"BERTDEMO_MLM_MODEL": str(tiny_mlm_dir), "BERTDEMO_SENTIMENT_MODEL": str(tiny_clf_dir)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        rc = main(["audit", "--checks", "user_data", "--data", str(data), "--group-col", "group", "--label-col", "label",
                   "--out", str(out), "--no-progress"])
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert rc in (0, 1, 3)  # pass, fail or inconclusive: the report is written either way
    return out / "report.html"


def test_report_html_payload_does_not_run(hostile_report: Path) -> None:
    raw = hostile_report.read_text(encoding="utf-8")
    assert SCRIPT not in raw and IMG not in raw and IMG_TEXT not in raw
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in raw

    sync_api = pytest.importorskip("playwright.sync_api")
    SHOTS.mkdir(parents=True, exist_ok=True)
    requests: list[str] = []
    dialogs: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.on("request", lambda req: requests.append(req.url))

            def on_dialog(dialog: Any) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", on_dialog)
            page.goto(hostile_report.as_uri(), wait_until="load")
            page.wait_for_timeout(500)  # give any (wrongly) injected handler time to fire

            assert page.evaluate("typeof window.__pwned") == "undefined"
            assert dialogs == []
            assert page.evaluate("document.querySelectorAll('script').length") == 0
            foreign = page.evaluate("Array.from(document.images).map(i => i.getAttribute('src'))"
                                    ".filter(s => !(s || '').startsWith('data:'))")
            assert foreign == [], foreign
            assert page.evaluate("document.querySelectorAll('[onerror], [onload], [onclick]').length") == 0
            body = page.inner_text("body")
            assert SCRIPT in body, "the script payload should be shown as text"
            assert "onerror=" in body and "<img src=x" in body, "the img payload should be shown as text"
            page.locator("text=window.__pwned=1").first.scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / "report_hostile.png"), full_page=True)
        finally:
            browser.close()
    outside = [u for u in requests if not u.startswith(("file://", "data:"))]
    assert outside == [], outside
    assert requests and requests[0].startswith("file://")
