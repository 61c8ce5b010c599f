"""Files that really expire (issue 17), tried on the real app: what :mod:`bertdemo.ui.files` promises.

- a page's upload, result and gradio's cached copies are gone (on disk and by URL) once the page is closed;
- an API caller's files (no heartbeat, so no unload) and uploads never used are gone after ``file_ttl_s``;
- at start-up, the folders of app processes that no longer run (SIGKILL) are removed;
- two sessions holding the same cached file (gradio names copies by content): closing one keeps it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
import pytest
from gradio_client import Client, handle_file
from test_app_api import free_port
from test_browser import CHROMIUM, LAUNCH_ARGS, TIMEOUT

from bertdemo.ui.files import RUN_PREFIX, FileKeeper

ROOT = Path(__file__).resolve().parent.parent


def wait_until(check: Any, seconds: float, what: str) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"not within {seconds:.0f} s: {what}")


def file_path(url: str) -> Path:
    """The server path inside a gradio file URL (``.../gradio_api/file=<path>``)."""
    return Path(unquote(urlparse(url).path.split("file=", 1)[1]))


def test_shared_cached_file_kept_until_its_last_session_ends(tmp_path: Path) -> None:
    keeper = FileKeeper(ttl_s=3600, output_dir=str(tmp_path / "out"))
    shared = keeper.cache / "deadbeef-shared" / "same.csv"
    shared.parent.mkdir(parents=True)
    shared.write_text("text\nsame content\n")
    payload = {"path": str(shared), "meta": {"_type": "gradio.FileData"}}
    keeper.record("session-a", [payload])
    keeper.record("session-b", [[payload]])
    (keeper.session_root("session-a") / "r1").mkdir(parents=True)
    keeper.end_session("session-a")
    assert shared.exists() and not keeper.session_root("session-a").exists()
    keeper.end_session("session-b")
    assert not shared.exists() and not shared.parent.exists()


def test_sweep_deletes_old_files_and_keeps_gradios_own(tmp_path: Path) -> None:
    keeper = FileKeeper(ttl_s=60, output_dir=str(tmp_path / "out"))
    old, kept, new = (keeper.cache / f"sweep-{n}" / "f.csv" for n in ("old", "kept", "new"))
    for p in (old, kept, new):
        p.parent.mkdir(parents=True)
        p.write_text("x")
    result = keeper.session_root("api") / "r" / "report.json"
    result.parent.mkdir(parents=True)
    result.write_text("{}")
    keeper.keep = lambda: {str(kept)}
    later = time.time() + 61  # as if 61 s had passed (ctime cannot be set back)
    keeper.sweep(now=time.time())
    assert old.exists() and result.exists()
    keeper.sweep(now=later)
    assert not old.exists() and not result.exists() and kept.exists()
    assert not result.parent.exists() or not any(result.parent.iterdir())


# ---- a visitor closes the page: a real browser ------------------------------------------------------
@pytest.fixture(scope="module")
def app(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    from test_app_api import start

    from bertdemo.service import ModelService
    from bertdemo.ui import build_app

    s = settings.replace(output_dir=str(tmp_path_factory.mktemp("files_out")))
    demo = build_app(s, service=ModelService(s))
    url = start(demo, s)
    yield demo, url
    demo.close()


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"Chromium not installed at {CHROMIUM}")
def test_files_gone_when_the_page_is_closed(app: tuple[Any, str], tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    demo, url = app
    files = demo.bertdemo_context.files
    src = tmp_path / "closing_reviews.csv"
    src.write_text("text\ni loved this movie\na terrible film\n", encoding="utf-8")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        page.goto(url, wait_until="load")
        page.get_by_role("tab", name="Sentiment").click()
        page.get_by_text("Batch: score a CSV file").click()
        page.locator("#csv-file input[type=file]").set_input_files(str(src))
        page.locator("#csv-file").filter(has_text=re.compile(r"closing_reviews")).wait_for()
        page.locator("#csv-run").click()
        page.locator("#csv-download").filter(has_text=re.compile("sentiment_scores")).wait_for()
        href = page.locator("#csv-download a[href*='sentiment_scores']").first.get_attribute("href")
        download = urlparse(url)._replace(path=urlparse(href).path).geturl()
        assert httpx.get(download).status_code == 200
        mine = [f for f in [*files.cache.rglob("closing_reviews*"), file_path(download),
                            *files.out_root.rglob("sentiment_scores*")] if f.exists()]
        assert len(mine) >= 3, mine  # the upload, gradio's copy of the result, the result itself
        context.close()  # the visitor leaves: the heartbeat ends, gradio runs unload
        browser.close()
    wait_until(lambda: not any(f.exists() for f in mine), 30, f"files of a closed page deleted: {mine}")
    assert httpx.get(download).status_code in (403, 404)


# ---- API callers, unused uploads, start-up: the app as a process -------------------------------------
def serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen([sys.executable, "app.py"], cwd=str(ROOT), env={**env, "GRADIO_SERVER_PORT": str(port)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: _answers(port) or server.poll() is not None, 120, "the app started")
    assert server.poll() is None, "the app exited at start-up"
    return server


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/config", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_api_files_expire_and_dead_runs_are_removed_at_start(model_env: dict[str, str], tmp_path: Path) -> None:
    base = tmp_path / "gradio-base"
    dead = base / f"{RUN_PREFIX}999999999-1"  # a pid that cannot be running
    (dead / "gradio" / "abc").mkdir(parents=True)
    (dead / "gradio" / "abc" / "leftover.csv").write_text("secret,text\n")
    env = {**model_env, "GRADIO_TEMP_DIR": str(base), "BERTDEMO_FILE_TTL_S": "4", "BERTDEMO_HOST": "127.0.0.1",
           "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("BERTDEMO_PORT", None)
    port = free_port()
    server = serve(env, port)
    try:
        assert not dead.exists(), "a dead app's folder survived the start"
        (run,) = [d for d in base.glob(RUN_PREFIX + "*")]
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        src = tmp_path / "api_reviews.csv"
        src.write_text("text\ngood\nbad\n", encoding="utf-8")
        _preview, download, _note = client.predict(handle_file(str(src)), "", api_name="/sentiment_csv")
        unused = httpx.post(f"http://127.0.0.1:{port}/gradio_api/upload",
                            files={"files": ("never_used.csv", b"text\nnever used\n", "text/csv")}).json()[0]
        made = [*run.rglob("api_reviews*"), *run.rglob("sentiment_scores*"), Path(unused)]
        assert len(made) >= 3 and all(p.exists() for p in made), made
        # No heartbeat from this client: nothing ends its session, so the lifetime does.
        wait_until(lambda: not any(p.exists() for p in made), 30, f"API files deleted after file_ttl_s: {made}")
        assert Path(download).name == "sentiment_scores.csv"
        server.send_signal(signal.SIGKILL)  # no clean shutdown: its folder stays behind ...
        server.wait(10)
        assert run.exists()
        server = serve(env, free_port())  # ... until the next start
        assert not run.exists()
    finally:
        server.kill()
        server.wait(10)


def test_about_tab_states_the_file_lifetime(service: Any, settings: Any) -> None:
    from bertdemo.ui.tabs.about import about_markdown

    text = about_markdown(service, settings.replace(file_ttl_s=1800))
    assert "30 minutes" in text and "link" in text.lower()
    assert os.environ.get("GRADIO_TEMP_DIR", "").endswith("gradio")  # gradio's cache lives in the run folder
