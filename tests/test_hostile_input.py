"""One table of hostile inputs thrown at every entry point: the service, the CLI and the HTTP API.

Every case must end in a valid result or a clear message (naming the field or what is allowed),
with no traceback and no filesystem path in what the user sees, and the server must keep serving.
Upload-file shapes (empty, not CSV, wrong columns, non-UTF-8, too big) are in test_app_api.py and
the audit's config checks in test_audit.py; this file adds the hostile *content* of those files,
invalid UTF-8 through real subprocesses, and the config values test_audit.py does not try.
"""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bertdemo.errors import BertDemoError, InputError
from bertdemo.tasks.base import plain

ROOT = Path(__file__).resolve().parent.parent
OK, ANY = "ok", "any"  # expected outcome: a valid result / a result or a clear error
PATH_HINTS = re.compile(r"/work/|/tmp/|/usr/|/home/|/root/|site-packages|dist-packages|\.py\"?, line \d")


def err(*fragments: str) -> tuple[str, ...]:
    """Expected outcome: a clear error whose message holds every fragment (case-insensitive)."""
    return ("error", *fragments)


@dataclass(frozen=True)
class Case:
    name: str
    value: Any
    fill: Any  # outcome where a [MASK] is needed (fill mask)
    text: Any  # outcome where any text will do (sentiment, next sentence, ...)

    @property
    def is_str(self) -> bool:
        return isinstance(self.value, str)


S = "paris is the [MASK] of france."
CASES = [
    Case("empty", "", err("text", "empty"), err("empty")),
    Case("whitespace", " \t\n \u3000 ", err("empty"), err("empty")),
    Case("no_mask", "paris is the capital of france.", err("text", "[MASK]"), OK),
    Case("six_masks", "[MASK] " * 6 + ".", err("text", "at most 5"), OK),
    Case("forty_masks", "[MASK] " * 40, err("text", "at most"), ANY),
    Case("mask_lower", "paris is the [mask] of france.", OK, OK),
    Case("mask_angle", "paris is the <mask> of france.", OK, OK),
    Case("mask_spaced", "paris is the [ Mask ] of france.", OK, OK),
    Case("100k_chars", "x" * 100_000 + " [MASK]", err("characters", "at most"), err("characters", "at most")),
    Case("nul", "paris\x00 is the [MASK]\x00 of france.", OK, OK),
    Case("only_control", "\x00\x01\x1b\x7f", err("empty"), err("empty")),
    Case("control_chars", "\x1b[31mparis\x07 is the [MASK]\x7f of\r france.\x0c", OK, OK),
    Case("lone_surrogate", "paris \ud800 is the [MASK].", OK, OK),
    Case("emoji", "🙂🔥 paris is the [MASK] of france 👍🏽", OK, OK),
    Case("cjk", "巴黎是法国的[MASK]。", OK, OK),
    Case("rtl", "\u202eשלום [MASK] مرحبا\u200f", OK, OK),
    Case("script", "<script>window.__pwned=1</script> paris is the [MASK].", OK, OK),
    Case("img_onerror", "<img src=x onerror=alert(1)> the [MASK] was \"good\" & 'bad'", OK, OK),
    Case("markdown_link", "[click](javascript:alert(1)) he is the [MASK]", OK, OK),
    Case("list", ["paris is the [MASK]."], err("text", "must be text"), err("must be text")),
    Case("dict", {"text": "a [MASK]"}, err("text", "must be text"), err("must be text")),
    Case("none", None, err("text", "missing"), err("missing")),
    Case("int", 42, err("text", "must be text"), err("must be text")),
    Case("float_nan", math.nan, err("text", "must be text"), err("must be text")),
    Case("bool", True, err("text", "must be text"), err("must be text")),
]
BAD_TOP_K = [0, -1, 10**9, math.nan, math.inf, "abc", 2.5, True, None, [5], {"k": 5}]
GOOD_TOP_K = ["5", 5.0, " 3 "]
IDS = [c.name for c in CASES]


def assert_user_safe(shown: str, allowed: tuple[str, ...] = ()) -> None:
    """No traceback and no filesystem path (other than paths the user typed) in what a user sees."""
    for a in allowed:
        shown = shown.replace(a, "<yours>")
    assert "Traceback" not in shown, shown[:2000]
    assert not PATH_HINTS.search(shown), shown[:2000]
    assert str(ROOT) not in shown, shown[:2000]


def relabel(expected: Any, field: str, label: str) -> Any:
    """``expected`` with the service's field name replaced by the label the page shows for it."""
    if isinstance(expected, tuple):
        return tuple(label if f == field else f for f in expected)
    return expected


def assert_outcome(expected: Any, ok: bool, message: str) -> None:
    if expected == OK:
        assert ok, f"expected a result, got: {message}"
    elif expected != ANY:
        assert not ok, f"expected an error containing {expected[1:]}"
        for fragment in expected[1:]:
            assert fragment.lower() in message.lower(), (fragment, message)


# ---- the service --------------------------------------------------------------------------------
SERVICE_CALLS: dict[str, tuple[str, Callable[[Any, Any], Any]]] = {
    "fill_mask": ("fill", lambda s, v: s.fill_mask(v)),
    "next_sentence.first": ("text", lambda s, v: s.next_sentence(v, "the sky is blue today.")),
    "next_sentence.second": ("text", lambda s, v: s.next_sentence("paris is the capital of france.", v)),
    "rank_next.first": ("text", lambda s, v: s.rank_next(v, ["the sky is blue today.", "rome"])),
    "rank_next.candidate": ("text", lambda s, v: s.rank_next("paris is nice.", ["the sky is blue today.", v])),
    "sentiment": ("text", lambda s, v: s.sentiment([v])),
    "explain_sentiment": ("text", lambda s, v: s.explain_sentiment(v, steps=4)),
    "pseudo_log_likelihood": ("any", lambda s, v: s.pseudo_log_likelihood([v])),
}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_service(service: Any, case: Case) -> None:
    for name, (kind, call) in SERVICE_CALLS.items():
        try:
            result = call(service, case.value)
            ok, message = True, ""
            assert result, name
            json.dumps(plain(result), allow_nan=False)  # typed results convert to plain, finite data
        except BertDemoError as e:
            ok, message = False, str(e)
            assert isinstance(e, InputError), (name, type(e), message)
            assert message and e.field, (name, message)  # names the field
            assert_user_safe(message)
        expected = {"fill": case.fill, "text": case.text}.get(kind, ANY)
        if kind == "any" and case.text != OK:  # what any text entry refuses, the PLL refuses too
            expected = case.text
        try:
            assert_outcome(expected, ok, message)
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None


@pytest.mark.parametrize("top_k", BAD_TOP_K, ids=repr)
def test_service_bad_top_k(service: Any, top_k: Any) -> None:
    with pytest.raises(InputError, match=r"top_k: .*from 1 to 50") as info:
        service.fill_mask(S, top_k=top_k)
    assert_user_safe(str(info.value))


@pytest.mark.parametrize("top_k", GOOD_TOP_K, ids=repr)
def test_service_top_k_from_forms(service: Any, top_k: Any) -> None:
    assert len(service.fill_mask(S, top_k=top_k)["predictions"][0]) == int(float(top_k))


def test_service_candidates_limits(service: Any) -> None:
    for bad, fragment in [([], "empty"), (["x"] * 51, "at most 50"), ("not a list", None), ({"a": 1}, "list"),
                          (None, "list"), (42, "list")]:
        try:
            service.rank_next("paris", bad)
        except InputError as e:
            assert e.field and e.field.startswith("candidates"), str(e)
            assert fragment is None or fragment in str(e)
        else:
            assert isinstance(bad, str), bad  # a single string is a list of one


# ---- the CLI, in-process ------------------------------------------------------------------------
@pytest.fixture()
def cli(service: Any, model_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], Any]:
    """``bertdemo.cli.main`` with the session's loaded models (settings are still parsed and checked)."""
    from bertdemo import cli as cli_module

    def reuse(args: Any) -> Any:
        cli_module.settings_from_args(args)
        return service

    monkeypatch.setattr(cli_module, "service_from_args", reuse)
    return cli_module.main


def _cli_outcome(main: Callable[[list[str]], Any], argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[bool, str]:
    rc = main(argv)
    out, errout = capsys.readouterr()
    assert_user_safe(out)
    assert_user_safe(errout)
    assert rc in (0, 2), (argv[:2], rc, errout)
    if rc == 0:
        assert out.strip() and not errout.strip(), (out, errout)
        return True, out
    lines = errout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"bertdemo {argv[0]}: error: "), errout
    return False, errout


@pytest.mark.parametrize("case", [c for c in CASES if c.is_str], ids=[c.name for c in CASES if c.is_str])
def test_cli(cli: Callable[[list[str]], Any], capsys: pytest.CaptureFixture[str], case: Case) -> None:
    v = case.value
    for argv, expected in [
        (["fill", v, "--top-k", "3"], case.fill),
        (["fill", v, "--json"], case.fill),
        (["sentiment", v, "i loved this movie"], case.text),
        (["sentiment", v, "--json"], case.text),
        (["nsp", v, "the sky is blue today."], case.text),
        (["nsp", "paris is nice.", v, "--json"], case.text),
        (["nsp", "paris is nice.", "--candidates", "rome", v], case.text),
    ]:
        ok, message = _cli_outcome(cli, argv, capsys)
        try:
            assert_outcome(expected, ok, message)
        except AssertionError as e:
            raise AssertionError(f"{argv[0]}: {e}") from None
        if ok and "--json" in argv:
            json.loads(message)


@pytest.mark.parametrize("top_k", ["0", "-1", str(10**9), "nan", "inf", "abc", "2.5", ""], ids=repr)
def test_cli_bad_top_k(cli: Callable[[list[str]], Any], capsys: pytest.CaptureFixture[str], top_k: str) -> None:
    ok, message = _cli_outcome(cli, ["fill", S, f"--top-k={top_k}"], capsys)
    assert not ok and "top_k" in message and "1 to 50" in message, message


# ---- the CLI, as real subprocesses (argv and files that are not UTF-8) ---------------------------
def _run(args: list[Any], env: dict[str, str], allowed: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "bertdemo", *args], env=env, capture_output=True, timeout=300,
                          check=False, cwd=str(ROOT))
    for stream in (proc.stdout, proc.stderr):
        assert_user_safe(stream.decode("utf-8", "replace"), allowed)
    assert proc.returncode in (0, 1, 2), (proc.returncode, proc.stderr[-2000:])
    return proc


@pytest.mark.parametrize("argv", [
    ["fill", b"caf\xe9 \xff is the [MASK] \xc3\x28."],
    ["fill", b"\xff\xfe\xfd", "--json"],
    ["sentiment", b"caf\xe9 \xff very good", b"\xed\xa0\x80", "--json"],
    ["nsp", b"\x80\x81 paris", b"the sky \xfe is blue", "--json"],
], ids=["fill", "fill_only_bad_bytes", "sentiment", "nsp"])
def test_subprocess_invalid_utf8_argv(model_env: dict[str, str], argv: list[Any]) -> None:
    proc = _run(argv, model_env)
    assert proc.returncode in (0, 2), proc.stderr
    if proc.returncode == 0:
        if "--json" in argv:
            json.loads(proc.stdout)
    else:
        err_lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        assert len(err_lines) == 1 and "error:" in err_lines[0], proc.stderr


def _bad_utf8_csv(path: Path, header: str) -> Path:
    path.write_bytes(header.encode() + b"\n" + b"caf\xe9 tr\xe8s bon,positive,f\n" + b"\xff\xfe bad,negative,m\n")
    return path


def test_subprocess_audit_data_not_utf8(model_env: dict[str, str], tmp_path: Path) -> None:
    data = _bad_utf8_csv(tmp_path / "data.csv", "text,label,gender")
    out = tmp_path / "report"
    proc = _run(["audit", "--checks", "user_data", "--data", str(data), "--group-col", "gender", "--out", str(out),
                 "--no-progress"], model_env)
    err_text = proc.stderr.decode()
    assert proc.returncode == 2, err_text
    assert "UTF-8" in err_text and "data.csv" in err_text and len(err_text.strip().splitlines()) == 1, err_text
    assert not out.exists()


def test_subprocess_finetune_train_not_utf8(model_env: dict[str, str], tiny_mlm_dir: Path, tmp_path: Path) -> None:
    train = _bad_utf8_csv(tmp_path / "train.csv", "text,label,g")
    out = tmp_path / "model"
    proc = _run(["finetune", "--train", str(train), "--eval", str(train), "--base", str(tiny_mlm_dir), "--out", str(out),
                 "--epochs", "1"],
                model_env, allowed=(str(train),))  # the message may name the user's own file
    err_text = proc.stderr.decode()
    assert proc.returncode == 2, err_text
    assert "UTF-8" in err_text and "train.csv" in err_text and "Traceback" not in err_text, err_text
    assert not out.exists()


# ---- the audit's thresholds file: the values test_audit.py does not try ---------------------------
@pytest.mark.parametrize(("name", "data", "message"), [
    ("nan.toml", b"[templates]\nmax_mean_jsd = nan\n", "outside"),
    ("inf.toml", b"[crows_pairs]\nmax_abs_deviation = inf\n", "outside"),
    ("negative.json", b'{"classifier": {"min_demographic_parity_ratio": -0.5}}', "outside"),
    ("nboot.json", b'{"audit": {"n_boot": 1e9}}', "outside"),
    ("confidence.json", b'{"audit": {"confidence": "high"}}', "must be a number"),
    ("toplevel.json", b"[1, 2, 3]", "must be a table"),
    ("section.json", b'{"templates": 0.1}', "must be a table"),
    ("null.json", b'{"templates": {"max_mean_jsd": null}}', "must be a number"),
    ("latin1.toml", "[templates]\n# caf\u00e9\nmax_mean_jsd = 0.1\n".encode("latin-1"), "not UTF-8"),
    ("script.toml", b"[templates]\n\"<script>alert(1)</script>\" = 1\n", "unknown key"),
    ("empty.json", b"", "could not be parsed"),
])
def test_audit_bad_config(model_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                          name: str, data: bytes, message: str) -> None:
    from bertdemo.cli import main

    cfg = tmp_path / name
    cfg.write_bytes(data)
    out = tmp_path / "r"
    assert main(["audit", "--checks", "templates", "--config", str(cfg), "--out", str(out), "--no-progress"]) == 2
    err_text = capsys.readouterr().err
    assert message in err_text and "config" in err_text, err_text
    assert len(err_text.strip().splitlines()) == 1
    assert_user_safe(err_text)
    assert not out.exists()


# ---- the HTTP API (gradio_client against the app in-process) --------------------------------------
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402
from test_app_api import start  # noqa: E402  (the launch helper, shared rather than copied)

GRADIO_GENERIC = "has not enabled verbose error reporting"  # gradio refusing a payload of the wrong shape
# outputs that are files (downloads, plots): their local paths are expected, not leaks
FILE_OUTPUTS = {"/sentiment_csv": {1}, "/bias_audit": {2, 3}}


@pytest.fixture(scope="module")
def hostile_app(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from bertdemo.service import ModelService
    from bertdemo.ui import build_app

    s = settings.replace(output_dir=str(tmp_path_factory.mktemp("hostile_out")), max_upload_bytes=300_000,
                         max_upload_rows=50)
    demo = build_app(s, service=ModelService(s))
    url = start(demo, s)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def http(hostile_app: str) -> Client:
    return Client(hostile_app, verbose=False)


def call(client: Client, api: str, *args: Any) -> tuple[bool, str]:
    """``(True, shown text)`` for a result, ``(False, message)`` for a refusal; both checked for safety."""
    try:
        result = client.predict(*args, api_name=api)
    except AppError as e:
        message = str(e)
        assert message, api
        assert_user_safe(message)
        return False, message
    parts = result if isinstance(result, tuple) else (result,)
    shown = json.dumps([p for i, p in enumerate(parts) if i not in FILE_OUTPUTS.get(api, set())], ensure_ascii=False)
    assert_user_safe(shown)
    return True, shown


def assert_serves(client: Client) -> None:
    label, _ = client.predict("i loved this movie", api_name="/sentiment")
    assert label["label"] == "positive"


def _csv(tmp_path: Path, name: str, rows: list[list[Any]]) -> str:
    path = tmp_path / name
    with path.open("w", newline="", encoding="utf-8", errors="surrogatepass") as f:  # a lone surrogate -> bad UTF-8
        csv.writer(f).writerows(rows)
    return str(path)


HTTP_CASES = [c for c in CASES if c.name not in {"lone_surrogate", "float_nan"}]  # JSON cannot carry these
# gradio would turn a JSON number/list/dict sent to a Textbox into its str() and answer as if it were typed;
# the app refuses it, naming the field (bertdemo.ui.layout.guard_inputs). None stays None.
WRONG_TYPE = {"list", "dict", "int", "bool"}


@pytest.mark.parametrize("case", HTTP_CASES, ids=[c.name for c in HTTP_CASES])
def test_http(http: Client, tmp_path: Path, case: Case) -> None:
    v = case.value
    wrong_type = case.name in WRONG_TYPE
    fill, text = (err("must be text"), err("must be text")) if wrong_type else (case.fill, case.text)
    results: dict[str, tuple[bool, str]] = {}
    for api, args, expected in [
        ("/fill_mask", (v, 5, ""), fill),
        # the compare box is labelled "Sentence A" on the page, and its messages say so
        ("/fill_mask_compare", (v, "the woman worked as a [MASK].", 3, ""), relabel(fill, "text", "sentence a")),
        ("/next_sentence", (v, "the sky is blue today."), text),
        ("/next_sentence", ("paris is nice.", v), text),
        ("/rank_next", ("paris is nice.", v), err("candidates") if v is None else text),
        ("/sentiment", (v,), text),
        ("/explain", (v, "gradient_x_input"), text),
        ("/counterfactual", (v,), ANY),  # needs a group word; refuses the rest clearly
        # the chat answers every message, errors included, as a reply; a value that is no text is no message
        ("/chat", (v, []), err("Message", "must be text") if wrong_type else OK),
    ]:
        ok, shown = results[api] = call(http, api, *args)
        try:
            assert_outcome(expected, ok, shown)
        except AssertionError as e:
            raise AssertionError(f"{api}: {e}") from None
        if not ok:
            assert GRADIO_GENERIC not in shown, (api, shown)  # our handlers answered, not gradio's fallback
    # What a visitor typed comes back escaped in the chat's echo (Markdown rendered as HTML).
    chat_shown = results["/chat"][1]
    assert "<script" not in chat_shown and "<img" not in chat_shown, chat_shown[:500]
    if case.name == "100k_chars":
        assert len(chat_shown) < 20_000  # the echo is truncated, not 100k characters back
    # The same text inside uploaded CSVs.
    if case.is_str:
        ok, shown = call(http, "/sentiment_csv", handle_file(_csv(tmp_path, "in.csv", [["text"], [v], ["a great film"]])))
        # a cell that cannot be scored (empty, too long) is skipped and reported by line; the other row is scored
        assert_outcome(OK if "\x00" not in v else err("csv"), ok, shown)
        if ok and text not in (OK, ANY):
            assert "Skipped 1 row" in shown and "line 2" in shown, shown[-500:]
        if not ok:
            assert "file" in shown.lower() or "text" in shown.lower(), shown
        rows = [["text", "g"], [v, "<img src=x onerror=alert(1)>"], ["i loved this movie", "b"], ["a terrible film", "b"],
                ["a great film", "<img src=x onerror=alert(1)>"]]
        ok, shown = call(http, "/bias_audit", ["user_data"], 10, handle_file(_csv(tmp_path, "groups.csv", rows)), "g", "")
        assert ok or GRADIO_GENERIC not in shown, shown
    assert_serves(http)


@pytest.mark.parametrize("top_k", [0, -1, 10**9, 2.5, True], ids=repr)
def test_http_bad_top_k(http: Client, top_k: Any) -> None:
    ok, shown = call(http, "/fill_mask", S, top_k, "")
    assert not ok and re.search(r"Top-k|minimum|maximum", shown), shown  # the slider's label on the page
    ok, shown = call(http, "/fill_mask_compare", S, S, top_k, "")
    assert not ok and re.search(r"Top-k|minimum|maximum", shown), shown
    assert_serves(http)


def test_http_nan_top_k_raw(hostile_app: str) -> None:
    """gradio_client refuses to encode NaN, so send the JSON by hand: the app names the field."""
    import httpx

    base = hostile_app + "gradio_api/call/fill_mask"
    resp = httpx.post(base, content=b'{"data": ["paris is the [MASK].", NaN, ""]}',
                      headers={"content-type": "application/json"}, timeout=30)
    if resp.status_code >= 400:  # refused at the door: also fine, as long as nothing leaks
        assert_user_safe(resp.text)
        return
    event = resp.json()["event_id"]
    with httpx.stream("GET", f"{base}/{event}", timeout=60) as r:
        body = "".join(r.iter_text())
    assert_user_safe(body)
    assert "event: error" in body and "Top-k" in body, body[:500]


@pytest.mark.parametrize(("api", "args"), [
    ("/fill_mask", (S, "abc", "")),
    ("/fill_mask", (S, None, "")),
    ("/fill_mask", (S, [5], "")),
    ("/chat", ("hello", "not a list")),
    ("/sentiment_csv", ({"path": "/etc/passwd"},)),
    ("/sentiment_csv", ("/etc/passwd",)),
    ("/sentiment_csv", (42,)),
    ("/bias_audit", (["user_data"], 10, {"a": 1}, "g", "")),
    ("/bias_audit", ("templates", 10, None, "", "")),
    ("/bias_audit", (["templates"], "abc", None, "", "")),
    ("/explain", ("a great film", ["integrated_gradients"])),
    ("/explain", ("a great film", None)),
])
def test_http_wrong_shapes(http: Client, api: str, args: tuple[Any, ...]) -> None:
    """Payloads no form can send (wrong JSON type for the component): refused or served, nothing leaks.

    ``bertdemo.ui.layout.guard_inputs`` turns gradio's own refusals into a message naming the field
    and what it accepts; the server keeps serving.
    """
    ok, shown = call(http, api, *args)
    assert "passwd" not in shown or not ok
    if not ok:  # a message that names what is wrong, not gradio's generic fallback
        assert GRADIO_GENERIC not in shown and ("must be" in shown or "accepts" in shown or "not in the list" in shown), shown
        assert_user_safe(shown)
    assert_serves(http)


def test_http_hostile_csv_columns(http: Client, tmp_path: Path) -> None:
    src = _csv(tmp_path, "cols.csv", [["<script>window.__pwned=1</script>", "<img src=x onerror=alert(1)>"], ["a", "b"]])
    ok, shown = call(http, "/sentiment_csv", handle_file(src))
    assert not ok and "text" in shown and "<script>" not in shown and "<img" not in shown, shown
    ok, shown = call(http, "/bias_audit", ["user_data"], 10, handle_file(src), "<script>x</script>", "")
    assert not ok and "<script>" not in shown, shown
    assert_serves(http)


def test_http_audit_reports_name_no_server_path(http: Client, tmp_path: Path, tiny_mlm_dir: Path) -> None:
    """The reports a visitor downloads name the models by folder name, not by where they sit on the server."""
    rows = [["text", "g"], ["i loved this movie", "a"], ["a terrible film", "b"], ["a great film", "a"], ["sad day", "b"]]
    summary, _, _, files = http.predict(["templates", "user_data"], 5, handle_file(_csv(tmp_path, "g.csv", rows)), "g", "",
                                        api_name="/bias_audit")
    assert_user_safe(summary)
    assert {Path(f).suffix for f in files} >= {".json", ".md", ".html"}
    for f in files:
        text = Path(f).read_text(encoding="utf-8")
        assert_user_safe(text)
        assert tiny_mlm_dir.name in text and str(tiny_mlm_dir) not in text, f
