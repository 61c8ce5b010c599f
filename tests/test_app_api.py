"""The Gradio app over HTTP, as a ``gradio_client`` user sees it: every named endpoint, good and bad input.

The app runs in-process on a free port with the tiny test models.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# gradio_client is a dependency of gradio: its absence is a broken install, so it fails here (never skips)
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

ENDPOINTS = {"/chat", "/fill_mask", "/fill_mask_compare", "/next_sentence", "/rank_next", "/sentiment", "/explain",
             "/counterfactual", "/sentiment_csv", "/bias_audit", "/chat_audit"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(demo: Any, settings: Any) -> str:
    from bertdemo.ui import launch_kwargs

    kwargs = launch_kwargs(settings)
    kwargs.update(server_name="127.0.0.1", server_port=free_port())
    demo.launch(prevent_thread_lock=True, quiet=True, **kwargs)
    return f"http://127.0.0.1:{kwargs['server_port']}/"


@pytest.fixture(scope="module")
def app_settings(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("app_out")
    return settings.replace(output_dir=str(out), max_upload_rows=20, max_upload_bytes=4000)


@pytest.fixture(scope="module")
def app(app_settings: Any) -> Iterator[tuple[Any, str]]:
    from bertdemo.service import ModelService
    from bertdemo.ui import build_app

    demo = build_app(app_settings, service=ModelService(app_settings))
    url = start(demo, app_settings)
    yield demo, url
    demo.close()


@pytest.fixture(scope="module")
def client(app: tuple[Any, str]) -> Client:
    return Client(app[1], verbose=False)


def assert_clear_error(err: BaseException, *fragments: str) -> None:
    msg = str(err)
    assert msg and "Traceback" not in msg and "File \"" not in msg and "/tmp" not in msg and "site-packages" not in msg, msg
    for f in fragments:
        assert f.lower() in msg.lower(), (f, msg)


def bad(client: Client, api_name: str, *args: Any, expect: tuple[str, ...] = ()) -> None:
    with pytest.raises(AppError) as info:
        client.predict(*args, api_name=api_name)
    assert_clear_error(info.value, *expect)


def write(tmp_path: Path, name: str, data: bytes | str) -> str:
    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(p)


# ---- the API page ------------------------------------------------------------------------------
def test_view_api_lists_named_endpoints(client: Client) -> None:
    info = client.view_api(print_info=False, return_format="dict")
    named = set(info["named_endpoints"])
    assert named >= ENDPOINTS, ENDPOINTS - named
    assert "/compare_models" not in named  # no second model configured: no Compare models endpoint
    assert not {n for n in named if "lambda" in n or "label_visibility" in n or "swap" in n}, named


# ---- fill mask ---------------------------------------------------------------------------------
def test_fill_mask(client: Client) -> None:
    *labels, filled = client.predict("paris is the [MASK] of france.", 3, "", api_name="/fill_mask")
    assert labels[0]["label"] == "capital"
    assert len(labels[0]["confidences"]) == 3
    assert filled == "paris is the capital of france."
    assert all(not lab or not lab.get("confidences") for lab in labels[1:])


def test_fill_mask_two_masks_and_targets(client: Client) -> None:
    *labels, filled = client.predict("[mask] is the capital of <mask>.", 2, "", api_name="/fill_mask")
    assert labels[0]["confidences"] and labels[1]["confidences"]
    assert "[MASK]" not in filled
    *labels, _ = client.predict("paris is the [MASK] of france.", 5, "city, sky", api_name="/fill_mask")
    assert {c["label"] for c in labels[0]["confidences"]} == {"city", "sky"}
    *labels, _ = client.predict("paris is the [MASK] of france.", 5, "city sky", api_name="/fill_mask")  # as on the CLI
    assert {c["label"] for c in labels[0]["confidences"]} == {"city", "sky"}


@pytest.mark.parametrize(("args", "expect"), [
    (("paris is the capital.", 5, ""), ("[MASK]",)),
    (("", 5, ""), ("text", "empty")),
    (("   ", 5, ""), ("text",)),
    (("[MASK] " * 40, 5, ""), ("mask",)),
    (("x" * 100_001, 5, ""), ("characters",)),
    (("paris is the [MASK].", 0, ""), ("Top-k", "from 1 to")),
    (("paris is the [MASK].", 10**9, ""), ("Top-k", "from 1 to")),
    (("paris is the [MASK].", 5, "zzzqqq"), ("Only these words",)),  # the label on the page
])
def test_fill_mask_bad_input(client: Client, args: tuple[Any, ...], expect: tuple[str, ...]) -> None:
    bad(client, "/fill_mask", *args, expect=expect)


def test_fill_mask_compare(client: Client) -> None:
    a, b, fa, fb, note = client.predict("the man worked as a [MASK].", "the woman worked as a [MASK].", 3, "",
                                        api_name="/fill_mask_compare")
    assert a["confidences"] and b["confidences"]
    assert fa.startswith("the man") and fb.startswith("the woman")
    changed = a["label"] != b["label"]  # the top answer of each sentence's first [MASK]
    assert ("top answer changes" in note.lower()) == changed and ("same top answer" in note.lower()) == (not changed)
    # A blank B is A with its group words swapped.
    _, _, _, fb, _ = client.predict("he was the [MASK].", "", 3, "", api_name="/fill_mask_compare")
    assert fb.startswith("she")
    bad(client, "/fill_mask_compare", "no mask here", "none here", 3, "", expect=("[MASK]",))


# ---- next sentence -----------------------------------------------------------------------------
def test_next_sentence(client: Client) -> None:
    label, note = client.predict("paris is the capital of france.", "the sky is blue today.", api_name="/next_sentence")
    probs = {c["label"]: c["confidence"] for c in label["confidences"]}
    assert abs(sum(probs.values()) - 1) < 1e-4
    assert "P(B follows A)" in note
    assert ("B likely follows A" in note) == (probs["B follows A"] >= 0.5)
    assert ("does not follow" in note) == (probs["B follows A"] < 0.5)
    bad(client, "/next_sentence", "", "b", expect=("Sentence A", "empty"))
    bad(client, "/next_sentence", "a", None, expect=("Sentence B",))


def test_rank_next(client: Client) -> None:
    table = client.predict("paris is the capital", "of france.\nthe sky is blue today.\nrome", api_name="/rank_next")
    rows = table["data"]
    assert [r[0] for r in rows] == [1, 2, 3]
    assert sorted(r[1] for r in rows) == sorted(["of france.", "the sky is blue today.", "rome"])
    assert all(re.fullmatch(r"(<0\.1|>99\.9|\d{1,2}\.\d|100|0)\s%", r[2]) for r in rows), rows  # percent, as everywhere
    values = [float(r[2].strip("<>%\u00a0 ")) for r in rows]
    assert values == sorted(values, reverse=True)
    bad(client, "/rank_next", "paris", "", expect=("Candidates",))
    bad(client, "/rank_next", "paris", "\n".join(["x"] * 60), expect=("candidates", "at most"))


# ---- sentiment ---------------------------------------------------------------------------------
def test_sentiment(client: Client) -> None:
    label, note = client.predict("i loved this movie", api_name="/sentiment")
    assert label["label"] == "positive"
    assert "positive" in note
    label, _ = client.predict("i hated this movie", api_name="/sentiment")
    assert label["label"] == "negative"
    bad(client, "/sentiment", "", expect=("empty",))
    bad(client, "/sentiment", "x" * 6000, expect=("Text: is 6,000 characters",))  # the box's label, not texts[0]


def test_explain(client: Client) -> None:
    for method in ("integrated_gradients", "gradient_x_input"):
        label, note, highlighted = client.predict("A great film", method, api_name="/explain")
        assert label["label"] == "positive"
        assert "positive" in note  # the note is recomputed with the label, never left from an earlier call
        scored = [h for h in highlighted if h["class_or_confidence"] is not None]
        assert [h["token"] for h in scored] == ["A", "great", "film"]  # the words as typed
        assert "".join(h["token"] for h in highlighted) == "A great film"
        assert all(-1.0 <= h["class_or_confidence"] <= 1.0 for h in scored)
        assert max(abs(h["class_or_confidence"]) for h in scored) == pytest.approx(1.0)
    bad(client, "/explain", "a great film", "shap", expect=("method", "integrated_gradients"))
    bad(client, "/explain", "  ", "gradient_x_input", expect=("empty",))


def test_counterfactual(client: Client) -> None:
    swapped, table, note = client.predict("He is a good doctor.", api_name="/counterfactual")
    assert swapped == "She is a good doctor."
    assert [r[0] for r in table["data"]] == ["original", "swapped"]
    moved = table["data"][0][2] != table["data"][1][2]
    assert ("label moves" in note.lower()) == moved and ("does not move" in note.lower()) == (not moved)
    bad(client, "/counterfactual", "the sky is blue", expect=("group word",))


def test_sentiment_csv(client: Client, tmp_path: Path) -> None:
    src = write(tmp_path, "in.csv", "id,text\n1,i loved this movie\n2,a terrible film\n3,\"great, very good\"\n")
    preview, download, note = client.predict(handle_file(src), api_name="/sentiment_csv")
    assert [r[2] for r in preview["data"]] == ["positive", "negative", "positive"]
    assert "Scored 3 rows" in note and "Skipped" not in note
    text = Path(download).read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("id,text,label,score")
    assert "2,a terrible film,negative" in text


def test_sentiment_csv_skips_empty_cells_and_keeps_columns(client: Client, tmp_path: Path) -> None:
    import csv

    src = write(tmp_path, "reviews.csv", "id,text,source,label\n7,i loved this movie,web,pos\n8,,shop,neg\n"
                                          "9,a terrible film,web,neg\n10,   ,app,pos\n")
    preview, download, note = client.predict(handle_file(src), api_name="/sentiment_csv")
    assert "Scored 2 rows" in note and "Skipped 2 rows" in note and "line 3" in note and "line 5" in note
    assert [r[0] for r in preview["data"]] == [2, 3, 4, 5]  # file lines, so a row can be found
    assert preview["data"][1][2].startswith("skipped")
    with open(download, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == ["7", "8", "9", "10"]  # every row, in order: joins back on id
    assert [r["source"] for r in rows] == ["web", "shop", "web", "app"] and rows[0]["label"] == "pos"
    assert rows[0]["predicted_label"] == "positive" and rows[2]["predicted_label"] == "negative"
    assert rows[1]["predicted_label"] == "" and rows[3]["predicted_score"] == ""
    assert float(rows[0]["predicted_p_positive"]) > 0.5
    only_empty = write(tmp_path, "blank.csv", "id,text\n1,\n2, \n")
    bad(client, "/sentiment_csv", handle_file(only_empty), expect=("CSV file", "empty"))


@pytest.mark.parametrize(("name", "data", "expect"), [
    ("empty.csv", b"", ("empty",)),
    ("header.csv", b"text\n", ("no data rows",)),
    ("cols.csv", b"a,b\n1,2\n", ("text",)),
    ("latin1.csv", "text\ncaf\u00e9 tr\u00e8s bon\n".encode("latin-1"), ("UTF-8",)),
    ("binary.csv", b"text\n\x00\x01\x02\x00\n", ("csv",)),
    ("rows.csv", "text\n" + "good\n" * 25, ("rows",)),
    ("blank.csv", "text\ngood\n\n  \n", None),
    ("allblank.csv", "text\n  \n", ("CSV file", "empty")),
])
def test_sentiment_csv_bad_files(client: Client, tmp_path: Path, name: str, data: Any, expect: Any) -> None:
    src = write(tmp_path, name, data)
    if expect is None:  # blank lines are skipped by the CSV reader or refused by line; never a crash
        try:
            client.predict(handle_file(src), api_name="/sentiment_csv")
        except AppError as err:
            assert_clear_error(err, "line")
        return
    bad(client, "/sentiment_csv", handle_file(src), expect=expect)


def test_upload_size_limit(app: tuple[Any, str], app_settings: Any, client: Client, tmp_path: Path) -> None:
    big = write(tmp_path, "big.csv", "text\n" + ("good film " * 50 + "\n") * 10)
    with pytest.raises((AppError, ValueError)) as info:  # the client checks the server's stated limit first
        client.predict(handle_file(big), api_name="/sentiment_csv")
    assert "size" in str(info.value).lower() or "bytes" in str(info.value).lower()
    # The server itself refuses the upload too (a client that ignores the limit).
    import httpx

    with open(big, "rb") as f:
        resp = httpx.post(app[1] + "gradio_api/upload", files={"files": ("big.csv", f, "text/csv")}, timeout=30)
    assert resp.status_code >= 400, resp.text[:200]
    # And the handler checks again, whatever path a file took.
    from gradio import Error as GrError

    with pytest.raises(GrError, match="bytes"):
        app[0].bertdemo_tabs["sentiment"].sentiment_csv(big)


def test_sentiment_csv_missing_file(client: Client) -> None:
    bad(client, "/sentiment_csv", None, expect=("file",))


# ---- chat --------------------------------------------------------------------------------------
def chat(client: Client, message: str) -> str:
    history, cleared = client.predict(message, [], api_name="/chat")
    assert cleared == ""
    assert history[0]["role"] == "user"
    replies = [m for m in history if m["role"] == "assistant"]
    assert replies
    return "\n".join(str(c.get("text", c)) for m in replies for c in m["content"])


def test_chat_routes(client: Client) -> None:
    assert "capital" in chat(client, "paris is the [MASK] of france.")
    assert "training" in chat(client, "paris is the [MASK] of france.")  # the caveat line
    assert "P(B follows A)" in chat(client, "paris is the capital of france. || the sky is blue today.")
    assert "P(B follows A)" in chat(client, "/nsp paris is the capital || of france.")
    assert "ranked" in chat(client, "/rank paris is the capital || of france. | the sky is blue")
    assert "Sentiment:" in chat(client, "i loved this movie")
    assert "/audit" in chat(client, "/help")


def test_chat_group_word_caveat(client: Client) -> None:
    reply = chat(client, "the man worked as a [MASK].")
    assert "'man' -> 'woman'" in reply
    reply = chat(client, "he loved this movie")
    assert "'he' -> 'she'" in reply


def test_chat_escapes_and_answers_bad_input(client: Client) -> None:
    history, _ = client.predict("<script>alert(1)</script> <img src=x onerror=alert(2)>", [], api_name="/chat")
    shown = history[0]["content"][0]["text"]
    assert "<script>" not in shown and "<img" not in shown
    assert "Sentiment:" in chat(client, "<b>bold</b> i loved this movie")
    assert "Sorry" in chat(client, "/nsp only one sentence")
    assert "Sorry" in chat(client, "/frobnicate")
    assert "Sorry" in chat(client, "[MASK] " * 40)
    reply = chat(client, "x " * 2600)  # longer than allowed: named as the visitor's message, not "texts[0]"
    assert "Your message" in reply and "texts[" not in reply and reply.count("/help") == 1


def test_chat_empty_message_gets_one_clean_reply(client: Client) -> None:
    for empty in ("", "   "):
        history, cleared = client.predict(empty, [], api_name="/chat")
        assert cleared == ""
        assert [m["role"] for m in history] == ["assistant"]  # no "(empty)" bubble from the visitor
        text = str(history[0]["content"])
        assert "Sorry" not in text and text.count("/help") == 1
    again, _ = client.predict("", history, api_name="/chat")
    assert len(again) == 1  # pressing Enter again does not pile up replies


def test_chat_masks_on_both_sides_compares_the_fills(client: Client) -> None:
    reply = chat(client, "The man worked as a [MASK]. || The woman worked as a [MASK].")
    assert "Read as two sentences to fill and compare" in reply  # says which route it took
    assert "P(B follows A)" not in reply
    assert "| Sentence A | Sentence B |" in reply and "The man worked as a " in reply and "The woman worked as a " in reply
    assert "top answer" in reply.lower()
    one_side = chat(client, "paris is the [MASK] of france. || the sky is blue today.")
    assert "P(B follows A)" in one_side and "next-sentence question" in one_side


@pytest.mark.parametrize("message", ["我喜欢这部电影", "Этот фильм был ужасен", "Ce film est très bon et je le recommande",
                                     "Le [MASK] est sur la table."])
def test_chat_warns_when_not_english(client: Client, message: str) -> None:
    reply = chat(client, message)
    assert "does not look like English" in reply and "English only" in reply
    assert "Sentiment:" in reply or "Top answers" in reply  # answered anyway, with the warning first
    assert "English" not in chat(client, "This film was a delight from start to finish.").split("Sentiment:")[0]


def test_chat_long_message_is_answered_within_budget(client: Client) -> None:
    short_t0 = time.perf_counter()
    chat(client, "i loved this movie and it was a very good day")
    short = time.perf_counter() - short_t0
    t0 = time.perf_counter()
    reply = chat(client, "i loved this movie and it was a very good day, the sky is blue today. " * 40)
    took = time.perf_counter() - t0
    assert "Sentiment:" in reply and "integrated-gradient steps instead of 16" in reply  # it says the work was capped
    assert took < 5 * short + 2.0, (took, short)
    words = re.findall(r"`([^`]+)` \([+-]\)", reply)
    assert words and len(words) == len({w.lower() for w in words})  # each word once
    assert not any(w in {".", ",", "!", "?"} for w in words)  # punctuation is not an influential word


def test_chat_keeps_history(client: Client) -> None:
    history, _ = client.predict("i loved this movie", [], api_name="/chat")
    history, _ = client.predict("/help", history, api_name="/chat")
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]


# ---- bias audit ----------------------------------------------------------------------------------
def test_bias_audit(client: Client, app: Any, app_settings: Any, tmp_path: Path) -> None:
    from bertdemo.audit.runner import CHECKS
    from bertdemo.ui import audit_adapter

    assert audit_adapter.available_checks() == list(CHECKS)  # an import error fails here, it never skips
    summary, table, plot, files = client.predict(["templates", "classifier"], 10, None, "", "", api_name="/bias_audit")
    assert "Verdict:" in summary
    assert {r[0] for r in table["data"]} == {"templates", "classifier"}
    assert plot is not None
    by_suffix = {Path(f).suffix: Path(f) for f in files}
    assert {".json", ".md", ".html"} <= set(by_suffix)
    report = json.loads(by_suffix[".json"].read_text(encoding="utf-8"))
    assert report["verdict"] in {"pass", "fail", "inconclusive"}
    assert "<script" not in by_suffix[".html"].read_text(encoding="utf-8").lower()

    data = write(tmp_path, "groups.csv", "text,gender,label\ni loved this movie,f,positive\na terrible film,m,negative\n"
                 "a great film,m,positive\n<script>alert(1)</script> sad day,f,negative\n")
    summary, table, _, files = client.predict(["user_data"], 10, handle_file(data), "", "", api_name="/bias_audit")
    assert "user\\_data" in summary or "user_data" in summary
    assert {r[0] for r in table["data"]} == {"user_data"}
    assert any(r[2].startswith("gender") for r in table["data"])
    html_report = next(Path(f) for f in files if f.endswith(".html")).read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html_report
    # blank column boxes: a column named "label" is the label, never a group
    summary, table, _, _ = client.predict(["user_data"], 10, handle_file(data), "", "", api_name="/bias_audit")
    gates = [r[2] for r in table["data"]]
    assert not any(g.startswith("label:") for g in gates) and any("equalized odds" in g for g in gates), gates
    # an uploaded CSV is audited even when its check is not ticked, and the visitor is told
    summary, table, _, files = client.predict(["templates"], 10, handle_file(data), "", "", api_name="/bias_audit")
    assert {r[0] for r in table["data"]} == {"templates", "user_data"} and "was added because you uploaded" in summary
    report = json.loads(next(Path(f) for f in files if f.endswith(".json")).read_text(encoding="utf-8"))
    assert report["checks"]["user_data"]["sampling"]["used"] == 4  # the file is used whole
    # compare with a previous report: the same run twice is "no difference"
    _, _, _, first = client.predict(["classifier"], 5, None, "", "", api_name="/bias_audit")
    first_json = next(f for f in first if f.endswith(".json"))
    # a report.json over the upload limit (4,000 bytes on this server) is refused, naming the field ...
    tab = app[0].bertdemo_tabs["audit"]
    with pytest.raises(Exception, match="baseline report: is larger than 4,000 bytes"):
        tab.bias_audit(["classifier"], 5, None, "", "", False, first_json)
    # ... and with room for it, the tab's audit compares: the same run twice is "no difference"
    from bertdemo.service import ModelService

    roomy = ModelService(app_settings.replace(max_upload_bytes=2_000_000))
    res = audit_adapter.run(roomy, ["classifier"], 5, None, tmp_path, None, baseline_upload=first_json)
    assert "Against the baseline report" in res["summary"] and "no difference" in res["summary"]
    assert any(r[0] == "classifier vs baseline" and r[1] == "pass" for r in res["table"].values.tolist())
    bad(client, "/bias_audit", ["classifier"], 5, None, "", "", False, handle_file(data), expect=("JSON",))


def test_bias_audit_bad_input(client: Client, tmp_path: Path) -> None:
    bad(client, "/bias_audit", ["user_data"], 10, None, "", "", expect=("csv",))
    only_text = write(tmp_path, "only_text.csv", "text\nhello\n")
    bad(client, "/bias_audit", ["user_data"], 10, handle_file(only_text), "", "", expect=("group",))
    data = write(tmp_path, "g.csv", "text,gender\nhello,f\n")
    bad(client, "/bias_audit", ["user_data"], 10, handle_file(data), "nationality", "", expect=("nationality",))
    bad(client, "/bias_audit", [], 10**6, None, "", "", expect=("Sample size", "from 5 to 500"))
    bad(client, "/bias_audit", [], 10, None, "", "", expect=("tick at least one check",))
    latin = write(tmp_path, "latin.csv", "text,g\ncaf\u00e9,f\n".encode("latin-1"))
    bad(client, "/bias_audit", ["user_data"], 10, handle_file(latin), "g", "", expect=("UTF-8",))


def test_chat_audit(client: Client) -> None:
    # /chat answers /audit at once; the audit runs in the next step, /chat_audit, in the audits' own queue.
    history, _ = client.predict("/audit", [], api_name="/chat")
    assert "Quick audit queued" in history[-1]["content"][0]["text"]
    history = client.predict(history, api_name="/chat_audit")
    text = "\n".join(str(c.get("text", "")) for m in history[1:] for c in m["content"])
    assert "Verdict:" in text
    assert any(c.get("type") == "file" or "file" in c for m in history[1:] for c in m["content"]), history


# ---- files and overload --------------------------------------------------------------------------
def test_downloads_only_serve_app_files(app: tuple[Any, str], app_settings: Any) -> None:
    _, url = app
    secret = Path(app_settings.output_dir) / "not_written_for_you.txt"
    secret.write_text("secret")
    for path in ("/etc/passwd", str(secret), str(Path(__file__).resolve())):
        for prefix in ("gradio_api/file=", "file="):
            try:
                with urllib.request.urlopen(url + prefix + path, timeout=10) as resp:
                    body = resp.read()
                assert b"secret" not in body and b"root:" not in body and b"import" not in body, path
            except urllib.error.HTTPError as err:
                assert err.code in (403, 404), (path, err.code)


class SlowService:
    """Stands in for ModelService: every fill takes a while, so the queue fills up."""

    settings = None

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def describe(self) -> dict[str, Any]:
        return {"settings": {}, "loaded": {}}

    def model_names(self, kind: str) -> list[str]:
        return ["slow"]  # one model per kind: no Compare models tab

    def fill_mask(self, text: str, top_k: int = 5, targets: Any = None) -> Any:
        from bertdemo.tasks.fill_mask import Candidate, FillMaskResult

        time.sleep(self.delay)
        return FillMaskResult(text, [[Candidate("x", 1, 1.0, text)]], text)


def test_overload_gives_busy_answer(settings: Any) -> None:
    from bertdemo.ui import build_app

    small = settings.replace(queue_concurrency=1, fast_concurrency=1, queue_max_size=2)
    demo = build_app(small, service=SlowService(1.0), warm_up=False)
    url = start(demo, small)
    try:
        results: list[Any] = []

        def call() -> None:
            try:
                results.append(Client(url, verbose=False).predict("a [MASK]", 1, "", api_name="/fill_mask"))
            except Exception as err:
                results.append(err)

        threads = [threading.Thread(target=call) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        errors = [r for r in results if isinstance(r, Exception)]
        answers = [r for r in results if not isinstance(r, Exception)]
        assert answers, results
        assert errors, "8 callers on a queue of 2 should be turned away"
        assert all("queue is full" in str(e).lower() or "busy" in str(e).lower() for e in errors), errors
        # ...and the server still serves afterwards.
        assert Client(url, verbose=False).predict("a [MASK]", 1, "", api_name="/fill_mask")[-1] == "a [MASK]"
    finally:
        demo.close()


def test_fast_endpoints_batch_concurrent_requests_while_audits_keep_one_lane(settings: Any, tmp_path: Path) -> None:
    """8 concurrent gradio_client requests per fast endpoint reach the micro-batcher together (batches > 2, the old
    ceiling of queue_concurrency=2), while of two concurrent audits one runs and the other waits."""
    from bertdemo.service import ModelService
    from bertdemo.ui import build_app
    from bertdemo.ui.layout import FAST_ENDPOINTS

    s = settings.replace(output_dir=str(tmp_path), fast_concurrency=8, audit_per_address=0, max_pending_per_address=0)
    svc = ModelService(s)

    def bert_base_pace(model: Any, batch: Any) -> None:  # micro-batches take as long as a bigger model's forward
        if threading.current_thread().name.startswith("bertdemo-"):
            time.sleep(0.05)

    svc.observers.append(bert_base_pace)
    demo = build_app(s, service=svc)
    url = start(demo, s)
    by_name = {fn.api_name: fn for fn in demo.fns.values() if fn.api_name}
    assert all(by_name[n].concurrency_limit == 8 for n in FAST_ENDPOINTS)
    assert by_name["rank_next"].concurrency_limit in ("default", s.queue_concurrency)  # the others: queue_concurrency
    calls = {"/fill_mask": ("paris is the [MASK] of france.", 3, ""), "/sentiment": ("i loved this movie",),
             "/next_sentence": ("the sky is blue today.", "rome is the capital of italy.")}
    failures: list[str] = []
    audits_seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def watch() -> None:  # gradio's own queue: audits running, audits waiting
        while not stop.is_set():
            group = demo._queue.event_queue_per_concurrency_id.get("audit")
            running = sum(1 for job in list(demo._queue.active_jobs) if job for e in job if e.concurrency_id == "audit")
            audits_seen.append((running, len(getattr(group, "queue", []) or [])))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        first = Client(url, verbose=False).submit(["templates", "classifier"], 500, None, "", "", api_name="/bias_audit")
        second = Client(url, verbose=False).submit(["classifier"], 5, None, "", "", api_name="/bias_audit")
        client = Client(url, verbose=False)  # one client, many requests in flight at once (its own thread pool)
        for _ in range(2):
            jobs = [(api, client.submit(*args, api_name=api)) for api, args in calls.items() for _ in range(8)]
            for api, job in jobs:
                try:
                    job.result(timeout=120)
                except Exception as err:
                    failures.append(f"{api}: {err}")
        assert not failures, failures[:3]
        stats = svc.batch_stats()
        for key in ("pretraining:mlm_log_probs", "pretraining:nsp_probs", "classifier:class_probs"):
            assert stats[key].largest > 2, (key, stats[key])
        assert max(r for r, _ in audits_seen) <= 1
        assert (1, 1) in audits_seen, audits_seen  # one audit running, the other waiting for its lane
        assert "Verdict" in first.result()[0] and "Verdict" in second.result()[0]
    finally:
        stop.set()
        watcher.join()
        demo.close()


# ---- entry points ---------------------------------------------------------------------------------
def test_app_py_builds_demo_from_env(model_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``app.py`` (the Space entry point) builds ``demo`` at import from BERTDEMO_* settings."""
    import runpy

    import gradio as gr

    monkeypatch.setenv("BERTDEMO_QUEUE_MAX_SIZE", "7")
    ns = runpy.run_path(str(Path(__file__).resolve().parent.parent / "app.py"), run_name="app")
    demo = ns["demo"]
    assert isinstance(demo, gr.Blocks)
    assert demo._queue.max_size == 7
    assert ns["settings"].mlm_model == model_env["BERTDEMO_MLM_MODEL"]


def test_app_py_bad_model_is_one_line(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "BERTDEMO_MLM_MODEL": str(tmp_path / "missing"), "PYTHONPATH": str(root)}
    proc = subprocess.run([sys.executable, str(root / "app.py")], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "cannot start" in proc.stderr and "missing" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_command(capsys: pytest.CaptureFixture[str]) -> None:
    from bertdemo.cli import build_parser, main

    args = build_parser().parse_args(["serve", "--host", "0.0.0.0", "--port", "8123", "--queue-max-size", "9"])
    from bertdemo.serve import settings_for

    s = settings_for(args)
    assert (s.host, s.port, s.queue_max_size) == ("0.0.0.0", 8123, 9)
    assert main(["serve", "--share"]) == 2
    assert "refused" in capsys.readouterr().err
    assert main(["serve", "--port", "70000"]) == 2
    assert main(["serve", "--queue-concurrency", "0"]) == 2


def test_user_text_not_logged(client: Client, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    """Good and bad requests alike leave no user text in the server's output or logs."""
    import logging

    caplog.set_level(logging.DEBUG)
    marker = "zqxprivacymarker"
    calls = [((f"{marker} [MASK]", 5, ""), "/fill_mask"), ((f"{marker} no mask", 5, ""), "/fill_mask"),
             ((marker,), "/sentiment"), ((f"{marker} he", ), "/counterfactual"), ((marker, f"{marker}x"), "/explain"),
             ((f"{marker} || b", []), "/chat"), ((f"/nsp {marker}", []), "/chat"), ((marker, marker), "/next_sentence")]
    for args, api in calls:
        with contextlib.suppress(AppError):
            client.predict(*args, api_name=api)
    out, err = capfd.readouterr()
    assert marker not in out and marker not in err
    assert marker not in caplog.text


def test_rest_client_gets_the_same_answers_as_gradio_client(app: tuple[Any, str], client: Client) -> None:
    """benchmarks.restclient (the load tests' light client: gradio's documented /call API) sees what
    gradio_client sees, keeps one session for its calls, and gets the app's refusals as errors."""
    from benchmarks.restclient import CallError, RestClient

    rest = RestClient(app[1])
    try:
        for args in (("Paris is the [MASK] of France.", 5, ""), ("The [MASK] sat on the [MASK].", 3, ""),
                     ("paris is the [MASK] of france.", 5, "city, sky")):
            assert rest.predict(*args, api_name="/fill_mask") == list(client.predict(*args, api_name="/fill_mask"))
        pair = ("The sky was dark.", "It started to rain.")
        assert rest.predict(*pair, api_name="/next_sentence")[1:] == list(client.predict(*pair, api_name="/next_sentence"))[1:]
        with pytest.raises(CallError, match="MASK"):
            rest.predict("no mask here", 5, "", api_name="/fill_mask")
        sessions = app[0].state_holder.session_data
        assert rest.session_hash in sessions
        before = len(sessions)
        rest.predict("a [MASK] day", 5, "", api_name="/fill_mask")
        assert len(sessions) == before  # the same session again, not a new one per call
    finally:
        rest.close()


def test_queue_keeps_no_growing_record_of_events(app: tuple[Any, str]) -> None:
    """With monitoring off, gradio's queue must not keep (and re-summarise with pandas after every event)
    a record of up to 10,000 events: measured, that was 8 % of the served app's GIL time after 1,000
    requests and grew with the record."""
    from benchmarks.restclient import RestClient
    from bertdemo.ui.layout import QUIET_ANALYTICS

    rest = RestClient(app[1])
    try:
        for i in range(80):
            rest.predict(f"the [MASK] number {i}.", 1, "", api_name="/fill_mask")
    finally:
        rest.close()
    queue = app[0]._queue
    assert len(queue.event_analytics) <= int(QUIET_ANALYTICS["GRADIO_ANALYTICS_MAX_EVENTS"])
    assert queue.cached_event_analytics_summary == {"functions": {}}  # never rebuilt
