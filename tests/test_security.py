"""Hostile visitors on a public Space (issue 17), each case tried against the real app on loopback.

- CSV formula injection: cells that a spreadsheet would run are neutralised in every CSV the app writes.
- One row limit for an uploaded CSV, the same in the UI text, the error and what is enforced.
- Audits bounded before they are queued (group columns, work, one per visitor / address, a few waiting),
  one at a time in one concurrency group, and a flood of audits leaves /sentiment answering (no 503).
- Security headers that keep Spaces embedding working; gradio's /monitoring off.
- No user-supplied value in the server's log, even for payloads of the wrong type.
"""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, ValidationError
from test_app_api import free_port, start

from bertdemo.csvfile import original_cell, safe_cell

ROOT = Path(__file__).resolve().parent.parent
FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(1,1)", '=HYPERLINK("http://x.example/","click")', "\t=1+1",
            "\r=1+1", "'=already quoted"]
ROWS_LIMIT = 1_200


@pytest.fixture(scope="module")
def app(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    from bertdemo.service import ModelService
    from bertdemo.ui import build_app

    s = settings.replace(output_dir=str(tmp_path_factory.mktemp("security_out")), max_upload_rows=ROWS_LIMIT)
    demo = build_app(s, service=ModelService(s))
    url = start(demo, s)
    yield demo, url
    demo.close()


@pytest.fixture(scope="module")
def client(app: tuple[Any, str]) -> Client:
    return Client(app[1], verbose=False)


def write_csv(path: Path, rows: list[list[Any]]) -> str:
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return str(path)


def read_rows(path: str | Path) -> list[list[str]]:
    """A downloaded CSV exactly as written (no newline translation: a cell may hold a carriage return)."""
    return list(csv.reader(io.StringIO(Path(path).read_bytes().decode("utf-8"), newline="")))


def post(url: str, api: str, data: list[Any], source: str = "127.0.0.1") -> httpx.Response:
    """A raw API call (what a script sends), from a chosen loopback address."""
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=60) as c:
        return c.post(f"{url}gradio_api/call/{api}", json={"data": data})


def result(url: str, api: str, event_id: str) -> str:
    with httpx.Client(timeout=120) as c:
        return c.get(f"{url}gradio_api/call/{api}/{event_id}").text


# ---- CSV formula injection -------------------------------------------------------------------------
def test_safe_cell_neutralises_formula_starts_and_round_trips() -> None:
    for value in FORMULAS:
        cell = safe_cell(value)
        assert cell.startswith("'") and cell[1:] == value, value
        assert original_cell(cell) == value
    for value in ["hello", "-0.5", "+3", "1e5", "", "it's", "'quoted"]:  # plain text and plain numbers stay
        assert safe_cell(value) == value and original_cell(value) == value
    for value in [-0.5, 3, None, True]:  # numbers the app writes itself stay numbers
        assert safe_cell(value) is value


def test_sentiment_csv_download_neutralises_formulas(client: Client, tmp_path: Path) -> None:
    texts = [*FORMULAS, "-0.5", "i loved this movie"]
    src = write_csv(tmp_path / "hostile.csv", [["text"], *[[t] for t in texts]])
    _, download, _ = client.predict(handle_file(src), api_name="/sentiment_csv")
    rows = read_rows(download)
    header, body = rows[0], rows[1:]
    assert header[:3] == ["text", "label", "score"]
    assert [original_cell(r[0]) for r in body] == texts  # the original is recoverable
    for r in body:
        assert not r[0].startswith(("=", "+", "@", "\t", "\r")) and (r[0] == "-0.5" or not r[0].startswith("-")), r[0]
        for number in r[2:]:
            float(number)  # scores stay plain numbers
    assert body[-2][0] == "-0.5"


def test_audit_examples_csv_neutralises_formulas(app: tuple[Any, str], client: Client, tmp_path: Path) -> None:
    rows = [["text", "=grp", "label"]] + [[f"{f} i loved this movie" if i % 2 else f, "@a" if i % 2 else "-b",
                                          "positive" if i % 2 else "negative"] for i, f in enumerate(FORMULAS * 2)]
    src = write_csv(tmp_path / "groups.csv", rows)
    client.predict(["user_data"], 20, handle_file(src), "", "", api_name="/bias_audit")
    out_root = app[0].bertdemo_context.out_root  # the report folder the app wrote (in this process)
    examples = max(out_root.rglob("examples_user_data.csv"), key=lambda p: p.stat().st_mtime)
    table = read_rows(examples)
    cells = [c for row in table for c in row]
    assert "'=grp" in table[0]  # a column name from the visitor's file is a cell too
    assert not [c for c in cells if c.startswith(("=", "+", "@", "\t", "\r")) or (c.startswith("-") and not _number(c))]
    given = {r[0] for r in rows[1:]} | {r[0].strip() for r in rows[1:]}  # the audit strips its texts
    assert {original_cell(r[table[0].index("text")]) for r in table[1:]} <= given


def _number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


# ---- one row limit ---------------------------------------------------------------------------------
def test_one_row_limit_in_text_error_and_enforcement(app: tuple[Any, str], client: Client, tmp_path: Path) -> None:
    demo, url = app
    assert demo.bertdemo_context.settings.max_batch_texts < 1_001 < ROWS_LIMIT  # more rows than one service call takes
    config = httpx.get(url + "config", timeout=30).text
    assert f"at most {ROWS_LIMIT:,} rows" in config  # what the Sentiment tab tells the visitor
    src = write_csv(tmp_path / "many.csv", [["text"], *[["a great film" if i % 2 else "a terrible film"] for i in range(1_001)]])
    _, download, _ = client.predict(handle_file(src), api_name="/sentiment_csv")
    assert len(read_rows(download)) == 1 + 1_001
    too_many = write_csv(tmp_path / "too_many.csv", [["text"], *[["a great film"] for _ in range(ROWS_LIMIT + 1)]])
    with pytest.raises(AppError, match=f"at most {ROWS_LIMIT:,} are allowed"):
        client.predict(handle_file(too_many), api_name="/sentiment_csv")


# ---- audits bounded before queueing ------------------------------------------------------------------
def test_wide_csv_audit_refused_before_it_is_queued(app: tuple[Any, str], client: Client, tmp_path: Path) -> None:
    _, url = app
    wide = write_csv(tmp_path / "wide.csv", [["text", *[f"g{i}" for i in range(3_000)]],
                                             *[[f"row {r} i loved this movie", *["x"] * 3_000] for r in range(20)]])
    with pytest.raises(ValidationError, match=r"3,000 group columns; at most 20 per audit"):
        client.predict(["user_data"], 10, handle_file(wide), "", "", api_name="/bias_audit")
    # The raw API: refused with 422 when it arrives, not queued (a queued call gets 200 and an event id).
    uploaded = httpx.post(url + "gradio_api/upload", files={"files": ("wide.csv", Path(wide).read_bytes())}, timeout=60)
    path = uploaded.json()[0]
    resp = post(url, "bias_audit", [["user_data"], 10, {"path": path, "meta": {"_type": "gradio.FileData"}}, "", "", False, None])
    assert resp.status_code == 422, resp.text[:300]
    assert "BERTDEMO_AUDIT_MAX_GROUP_COLUMNS" in resp.text


def test_audit_work_cap_refused_before_it_is_queued(settings: Any, tmp_path: Path) -> None:
    from bertdemo.service import ModelService
    from bertdemo.ui import build_app

    s = settings.replace(output_dir=str(tmp_path), audit_max_work=100)
    demo = build_app(s, service=ModelService(s))
    url = start(demo, s)
    try:
        c = Client(url, verbose=False)
        with pytest.raises(ValidationError, match=r"120 work units.*at most 100 per audit \(BERTDEMO_AUDIT_MAX_WORK\)"):
            c.predict(["templates", "classifier"], 60, None, "", "", api_name="/bias_audit")
        summary, *_ = c.predict(["templates", "classifier"], 50, None, "", "", api_name="/bias_audit")
        assert "Verdict" in summary  # at the cap it runs
    finally:
        demo.close()


def test_one_pending_audit_per_visitor_shared_by_tab_and_chat(client: Client) -> None:
    job = client.submit(["templates", "classifier"], 500, None, "", "", api_name="/bias_audit")
    try:
        time.sleep(0.3)
        assert not job.done()  # a few seconds' work, so it is still waiting or running now
        with pytest.raises(ValidationError, match="already have an audit waiting or running"):
            client.predict(["templates"], 10, None, "", "", api_name="/bias_audit")
        history, _ = client.predict("/audit", [], api_name="/chat")  # the chat's /audit shares the limit
        assert "already have an audit" in json.dumps(history)
    finally:
        assert "Verdict" in job.result()[0]
    history, _ = client.predict("/audit", [], api_name="/chat")  # afterwards the chat's /audit is queued ...
    assert "Quick audit queued" in json.dumps(history)
    history = client.predict(history, api_name="/chat_audit")  # ... and runs in the audit group
    assert "Verdict" in json.dumps(history) and "Quick audit queued" not in json.dumps(history)


def test_audit_entry_points_share_one_group_and_fast_endpoints_do_not(app: tuple[Any, str]) -> None:
    demo, _ = app
    by_name = {fn.api_name: fn for fn in demo.fns.values() if fn.api_name}
    for name in ("bias_audit", "chat_audit"):
        assert by_name[name].concurrency_id == "audit" and by_name[name].concurrency_limit == 1
        assert by_name[name].validator is not None  # checked before queueing
    fast = ["fill_mask", "fill_mask_compare", "next_sentence", "rank_next", "sentiment", "explain", "counterfactual",
            "chat", "sentiment_csv"]
    assert all(by_name[n].concurrency_id != "audit" for n in fast)


def test_audit_flood_leaves_sentiment_answering(settings: Any, tmp_path: Path) -> None:
    """70 raw audit calls from 35 addresses at once, half of them ``/chat_audit`` with a history that asked
    for no audit: a few wait, the rest are refused at once (422, never 503; no junk holds a queue place), at
    most one audit runs at a time, and /sentiment keeps answering within a few seconds."""
    from bertdemo.service import ModelService
    from bertdemo.ui import build_app

    s = settings.replace(output_dir=str(tmp_path), queue_max_size=8, audit_max_waiting=3)
    demo = build_app(s, service=ModelService(s))
    url = start(demo, s)
    running: list[int] = []
    stop = threading.Event()

    def watch() -> None:  # gradio's own queue: how many audits run at once
        while not stop.is_set():
            jobs = list(demo._queue.active_jobs)
            running.append(sum(1 for job in jobs if job for e in job if e.concurrency_id == "audit"))
            time.sleep(0.02)

    codes: Counter[int] = Counter()
    latencies: list[float] = []
    failures: list[str] = []

    def flood(i: int) -> None:
        if i % 2:
            resp = post(url, "chat_audit", [[]], source=f"127.0.0.{2 + i % 35}")
        else:
            resp = post(url, "bias_audit", [["templates", "classifier"], 500, None, "", "", False, None],
                        source=f"127.0.0.{2 + i % 35}")
        codes[resp.status_code] += 1

    def ask() -> None:
        c = Client(url, verbose=False)
        for _ in range(5):
            t0 = time.perf_counter()
            try:
                assert c.predict("i loved this movie", api_name="/sentiment")[0]["label"] == "positive"
            except Exception as err:
                failures.append(f"{type(err).__name__}: {err}")
            latencies.append(time.perf_counter() - t0)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        threads = [threading.Thread(target=flood, args=(i,)) for i in range(70)] + [threading.Thread(target=ask)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        assert not failures, failures
        assert set(codes) <= {200, 422} and codes[200] >= 1 and codes[422] >= 60, codes
        assert codes[200] <= 1 + 3 + 2, codes  # one running, three waiting (plus any that finished meanwhile)
        assert max(latencies) < 15, latencies
        assert max(running) == 1, max(running)
    finally:
        stop.set()
        watcher.join()
        demo.close()


def test_one_address_cannot_fill_the_queue(settings: Any, tmp_path: Path) -> None:
    """70 maximum-length Explain calls from one address: at most max_pending_per_address are queued, the rest
    are refused at once as busy, and another visitor's /sentiment is answered (no "queue is full")."""
    from bertdemo.service import ModelService
    from bertdemo.ui import build_app

    s = settings.replace(output_dir=str(tmp_path), queue_max_size=32, max_pending_per_address=6)
    demo = build_app(s, service=ModelService(s))
    url = start(demo, s)
    text = ("a long and slow film with a moving score " * 200)[:4900]
    codes: Counter[int] = Counter()
    try:
        def flood(_: int) -> None:
            codes[post(url, "explain", [text, "integrated_gradients"], source="127.0.0.9").status_code] += 1

        threads = [threading.Thread(target=flood, args=(i,)) for i in range(70)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert codes[200] <= 6 + 2 and sum(codes.values()) == 70, codes  # the rest refused before queueing
        other = post(url, "sentiment", ["i loved this movie"], source="127.0.0.10")
        assert other.status_code == 200, other.text
        assert "positive" in result(url, "sentiment", other.json()["event_id"])
    finally:
        demo.close()


# ---- headers and monitoring --------------------------------------------------------------------------
EXPECTED_HEADERS = {
    "content-security-policy": "frame-ancestors 'self' https://huggingface.co https://*.hf.space",
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
}


def test_security_headers_on_pages_api_and_files(app: tuple[Any, str], client: Client, tmp_path: Path) -> None:
    demo, url = app
    src = write_csv(tmp_path / "one.csv", [["text"], ["i loved this movie"]])
    _, local, _ = client.predict(handle_file(src), api_name="/sentiment_csv")
    # gradio_client saved its own copy; the server's is the newest of that name in the app's cache
    download = max(demo.bertdemo_context.files.cache.rglob(Path(local).name), key=lambda p: p.stat().st_mtime)
    for path in ("", "config", "gradio_api/info", "no-such-page", f"gradio_api/file={download}"):
        resp = httpx.get(url + path, timeout=30)
        for name, value in EXPECTED_HEADERS.items():
            assert resp.headers.get(name) == value, (path, name, resp.headers.get(name))
        assert "x-frame-options" not in resp.headers, path  # it would stop a Space from embedding the app
    assert httpx.get(url + f"gradio_api/file={download}", timeout=30).status_code == 200


def test_monitoring_is_off(app: tuple[Any, str]) -> None:
    _, url = app
    for path in ("monitoring", "monitoring/summary"):
        assert httpx.get(url + path, timeout=30).status_code == 403, path


def test_session_less_api_calls_keep_server_memory_bounded(settings: Any, tmp_path: Path) -> None:
    """An API call without a session_hash (curl, the /call API) opens a new gradio session, which holds the config
    of every component: about 280 KiB in the app, 1,500 such calls grew the server by 409 MiB and gradio keeps
    10,000. The app keeps at most max_sessions, and does not offer deep links (each GET wrote such a config to
    disk for any session hash)."""
    from benchmarks.restclient import RestClient
    from bertdemo.service import ModelService
    from bertdemo.ui import build_app

    s = settings.replace(output_dir=str(tmp_path), max_sessions=6)
    demo = build_app(s, service=ModelService(s))
    url = start(demo, s)
    rest = RestClient(url)
    try:
        for i in range(20):
            rest.session_hash = None  # as a curl loop calls
            rest.predict(f"a [MASK] number {i}.", 1, "", api_name="/fill_mask")
        assert 1 <= len(demo.state_holder.session_data) <= 6
        known = next(iter(demo.state_holder.session_data))
        assert httpx.get(url + "gradio_api/deep_link", params={"session_hash": known}, timeout=30).status_code == 404
    finally:
        rest.close()
        demo.close()


# ---- request bodies ----------------------------------------------------------------------------------
def _raw_post(url: str, path: str, head: list[str], chunks: Iterator[bytes]) -> tuple[int, float]:
    """Send a request over a plain socket (so nothing waits for the whole body) and read the status.
    Returns the status and how many seconds the answer took."""
    import socket

    host, port = url.split("//", 1)[1].rstrip("/").split(":")
    t0 = time.time()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall("\r\n".join([f"POST /{path} HTTP/1.1", f"Host: {host}:{port}", *head, "", ""]).encode())
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except OSError:  # the server answered and closed while we were still sending: what we want
            pass
        answer = sock.recv(4096).decode("latin-1")
    return int(answer.split(" ", 2)[1]), time.time() - t0


def test_huge_body_refused_before_it_is_read(app: tuple[Any, str]) -> None:
    """A 200 MB JSON body (declared) gets 413 after the first megabyte; a body without a length is
    cut off at the limit; a body under the limit is still served."""
    demo, url = app
    limit = demo.bertdemo_context.settings.max_request_bytes
    declared = 200_000_000
    status, seconds = _raw_post(url, "gradio_api/call/fill_mask",
                                ["Content-Type: application/json", f"Content-Length: {declared}"],
                                iter([b'{"data": ["' + b"a" * 1_000_000]))
    assert status == 413 and seconds < 10

    def chunked() -> Iterator[bytes]:
        piece = b"a" * 500_000
        for _ in range(limit // len(piece) + 4):
            yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        yield b"0\r\n\r\n"

    status, _ = _raw_post(url, "gradio_api/call/fill_mask",
                          ["Content-Type: application/json", "Transfer-Encoding: chunked"], chunked())
    assert status == 413
    ok = httpx.post(f"{url}gradio_api/call/fill_mask", json={"data": ["Paris is the [MASK] of France.", 5]}, timeout=30)
    assert ok.status_code == 200
    # Under the byte limit but millions of values once parsed (gigabytes of Python objects): refused unparsed.
    many = b'{"data": [[' + b"{}," * 1_000_000 + b'{}], 5]}'
    assert len(many) < limit
    resp = httpx.post(f"{url}gradio_api/call/fill_mask", content=many, headers={"Content-Type": "application/json"},
                      timeout=60)
    assert resp.status_code == 413 and "JSON values" in resp.text
    text = "a [MASK] with, commas [and] {braces} " * 2_000  # values inside strings do not count
    ok = httpx.post(f"{url}gradio_api/call/fill_mask", json={"data": [text[:4900], 5]}, timeout=30)
    assert ok.status_code == 200


# ---- logs ----------------------------------------------------------------------------------------
MARKER = "zqxmarker7731"


def test_server_log_carries_no_user_values(model_env: dict[str, str], tmp_path: Path) -> None:
    """``python app.py`` as a Space runs it; payloads of the wrong type carrying a marker go to every
    endpoint; the marker never reaches the server's stdout or stderr."""
    port = free_port()
    env = {**model_env, "BERTDEMO_PORT": str(port), "BERTDEMO_OUTPUT_DIR": str(tmp_path / "out"),
           "TRANSFORMERS_VERBOSITY": "info", "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("BERTDEMO_LOG_USER_TEXT", None)
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out.open("wb") as fo, err.open("wb") as fe:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=tmp_path, env=env, stdout=fo, stderr=fe)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        m, file_ref = MARKER, {"path": f"/tmp/{MARKER}.csv", "meta": {"_type": "gradio.FileData"}}
        calls = {
            "bias_audit": [[[m], 10, None, "", ""], [{"a": m}, 10, None, "", ""], [["templates"], m, None, m, m],
                           [["user_data"], 10, file_ref, m, m]],
            "fill_mask": [[m, m, m], ["a [MASK]", [m], {"k": m}]],
            "fill_mask_compare": [[m, [m], m, m]],
            "next_sentence": [[[m], {"k": m}]],
            "rank_next": [[m, [m]]],
            "sentiment": [[[m]], [{"k": m}]],
            "explain": [[m, m], [m, [m]]],
            "counterfactual": [[{"k": m}]],
            "sentiment_csv": [[file_ref], [m]],
            "chat": [[m, m], [[m], [{"role": "user", "content": m}]], ["/audit", m]],
            "chat_audit": [[m], [[{"role": m, "content": m}]]],
        }
        for api, payloads in calls.items():
            for data in payloads:
                resp = post(url, api, data)
                if resp.status_code == 200:
                    result(url, api, resp.json()["event_id"])
        # a made-up API name and queue entry: gradio fails inside (500) and would print a traceback naming them
        assert post(url, f"{m}_alice@example.com", ["x"]).status_code >= 400
        httpx.post(f"{url}gradio_api/queue/join", json={"data": [m], "fn_index": 9999, "session_hash": m}, timeout=30)
        time.sleep(1)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    logs = out.read_text(errors="replace") + err.read_text(errors="replace")
    assert "Running on" in logs  # the server did run and log
    assert MARKER not in logs, [line for line in logs.splitlines() if MARKER in line][:5]



@pytest.mark.parametrize(("api", "data", "field"), [
    ("fill_mask", ["a [MASK] day.", 1e308, ""], "Top-k"),
    ("fill_mask", ["a [MASK] day.", -3, ""], "Top-k"),
    ("fill_mask", ["a [MASK] day.", 10**400, ""], "Top-k"),
    ("fill_mask", ["a [MASK] day.", True, ""], "Top-k"),
    ("fill_mask", [{"a": 1}, 5, ""], "Text with [MASK]"),
    ("sentiment", [12345], "Text"),
    ("sentiment", [["a", "b"]], "Text"),
])
def test_wrong_type_or_range_over_the_rest_api_names_the_field(app: tuple[Any, str], api: str, data: list[Any],
                                                               field: str) -> None:
    """gradio would score a number or a list as if typed (str(payload)) and answer an out-of-range slider with
    its own words, repeating the value (a 400-digit number in full) without naming the field."""
    from benchmarks.restclient import CallError, RestClient

    rest = RestClient(app[1])
    try:
        with pytest.raises(CallError) as caught:
            rest.predict(*data, api_name=f"/{api}")
    finally:
        rest.close()
    message = str(caught.value)
    assert f"{field}: must be" in message, message
    assert "1e+308" not in message and "0" * 50 not in message, message
