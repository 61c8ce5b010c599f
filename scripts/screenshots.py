"""The README's screenshots, taken from the real app on the bundled models in headless Chromium.

    python scripts/screenshots.py [--out assets/screenshots]

Starts ``python app.py`` on a free loopback port, answers each tab's own first example the way a
visitor would (click its button), and saves one PNG per feature at 1280 px wide. The server is
stopped at the end. Needs Playwright and Debian's ``chromium`` (as the browser tests do).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("BERTDEMO_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "assets" / "screenshots")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    port = _port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen([sys.executable, "app.py"], cwd=str(ROOT), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(240):
            try:
                if httpx.get(url + "config", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(120_000)
            page.goto(url, wait_until="load")
            page.locator("#chat-input textarea").wait_for()

            def shot(name: str) -> None:
                from PIL import Image

                page.wait_for_timeout(500)
                path = args.out / f"{name}.png"
                page.screenshot(path=str(path), full_page=False)
                Image.open(path).convert("RGB").quantize(256).save(path, optimize=True)  # a third of the bytes
                print(path)

            def send(text: str, expect: str) -> None:
                page.locator("#chat-input textarea").fill(text)
                page.locator("#chat-input textarea").press("Enter")
                page.locator("#chat-bot").filter(has_text=re.compile(expect)).wait_for()

            send("Paris is the [MASK] of France.", r"capital|Top")
            send("I went to the bakery this morning. || They had run out of fresh bread.", r"follow")
            send("I loved this movie, the acting was wonderful.", r"Sentiment")
            shot("chat")
            for tab, button, result, name in (("Fill mask", "#fm-run", "#fm-filled", "fill_mask"),
                                              ("Next sentence", "#ns-run", "#ns-note", "next_sentence"),
                                              ("Sentiment", "#st-explain", "#st-highlight", "sentiment")):
                page.get_by_role("tab", name=tab).click()
                page.locator(button).click()
                page.wait_for_function("(sel) => { const el = document.querySelector(sel);"
                                       " return el && (el.innerText.trim() || (el.querySelector('textarea') || {}).value); }",
                                       arg=result)
                shot(name)
            page.get_by_role("tab", name="Bias audit").click()
            limit = page.locator("#au-limit input[type=number]")
            limit.fill("50")
            limit.press("Enter")
            page.locator("#au-run").click()
            page.locator("#au-summary").filter(has_text=re.compile("Verdict")).wait_for()
            shot("bias_audit")
            browser.close()
    finally:
        server.terminate()
        server.wait(15)


if __name__ == "__main__":
    main()
