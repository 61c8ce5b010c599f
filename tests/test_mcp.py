"""The MCP server as an agent sees it: the ``mcp`` package's own client over streamable HTTP.

One app runs in-process with the tiny test models and ``BERTDEMO_MCP=1``; its tools are listed and called
and their answers compared with what ``gradio_client`` gets from the page's endpoints for the same input.
"""

from __future__ import annotations

import ast
import asyncio
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from test_app_api import free_port, start  # shared, not copied

ROOT = Path(__file__).resolve().parent.parent
TOOLS = {"fill_mask", "next_sentence", "rank_next", "sentiment", "explain", "attention", "bias_audit"}


def launch(settings: Any) -> tuple[Any, str]:
    from bertdemo.service import ModelService
    from bertdemo.ui import build_app

    demo = build_app(settings, service=ModelService(settings))
    return demo, start(demo, settings)  # launch_kwargs(settings): MCP as the settings say


async def _session(url: str, calls: list[tuple[str, dict[str, Any]]]) -> tuple[list[Any], list[Any]]:
    async with streamable_http_client(url + "gradio_api/mcp/") as (read, write, _), ClientSession(read, write) as session:
        await session.initialize()
        tools = (await session.list_tools()).tools
        return tools, [await session.call_tool(name, args) for name, args in calls]


def mcp(url: str, *calls: tuple[str, dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """(the tools listed, one CallToolResult per call) from one MCP session."""
    return asyncio.run(_session(url, list(calls)))


def answer(result: Any) -> Any:
    """A tool's answer: gradio sends the returned value as its Python literal text."""
    assert not result.isError, result.content
    (content,) = result.content
    return ast.literal_eval(content.text)


@pytest.fixture(scope="module")
def app(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    from bertdemo.config import load_settings

    env = {"BERTDEMO_MCP": "1", "BERTDEMO_OUTPUT_DIR": str(tmp_path_factory.mktemp("mcp_out"))}
    s = load_settings(env=env, mlm_model=settings.mlm_model, sentiment_model=settings.sentiment_model)
    assert s.mcp
    demo, url = launch(s)
    yield demo, url
    demo.close()


@pytest.fixture(scope="module")
def client(app: tuple[Any, str]) -> Client:
    return Client(app[1], verbose=False)


def test_tools_are_the_agent_set_with_their_limits(app: tuple[Any, str]) -> None:
    demo, url = app
    s = demo.bertdemo_context.settings
    tools, _ = mcp(url)
    by_name = {t.name: t for t in tools}
    assert set(by_name) == TOOLS  # no page helper, validator, chat step or file export among them
    fill = by_name["fill_mask"]
    props = fill.inputSchema["properties"]
    assert f"1 to {s.max_masks} [MASK]" in props["text"]["description"]
    assert f"{s.max_chars:,} characters" in props["text"]["description"]
    assert f"1 to {s.max_top_k}" in props["top_k"]["description"] and props["top_k"]["type"] == "integer"
    assert "probability" in fill.description and "not facts" in fill.description
    assert "is_next" in by_name["next_sentence"].description
    assert f"1 to {s.max_candidates}" in by_name["rank_next"].inputSchema["properties"]["candidates"]["description"]
    assert f"{s.attention_max_tokens} tokens" in by_name["attention"].inputSchema["properties"]["text"]["description"]
    audit = by_name["bias_audit"]
    assert all(w in audit.description for w in ("pass", "fail", "inconclusive", "95%", "not proof", "one at a time"))
    assert set(audit.inputSchema["properties"]["checks"]["items"]["enum"]) == {"crows_pairs", "stereoset", "templates",
                                                                             "classifier"}
    for t in tools:  # every input is described for the agent
        assert t.description and all(p.get("description") for p in t.inputSchema["properties"].values()), t.name


def test_answers_equal_gradio_clients(app: tuple[Any, str], client: Client) -> None:
    _, url = app
    text, a, b = "paris is the [MASK] of france.", "i loved this movie", "the sky is blue today."
    _, (fill, nsp, senti) = mcp(url, ("fill_mask", {"text": text, "top_k": 3}),
                                ("next_sentence", {"first": a, "second": b}), ("sentiment", {"texts": [a]}))
    fill, nsp, senti = answer(fill), answer(nsp), answer(senti)
    # the page's own endpoints, through gradio_client
    label, *_, filled = client.predict(text, 3, "", api_name="/fill_mask")
    assert fill["filled"] == filled
    assert [(c["token"], c["score"]) for c in fill["predictions"][0]] == \
        [(c["label"], c["confidence"]) for c in label["confidences"]]
    nsp_label, _ = client.predict(a, b, api_name="/next_sentence")
    assert {c["label"]: c["confidence"] for c in nsp_label["confidences"]}["B follows A"] == pytest.approx(nsp["is_next"])
    s_label, _ = client.predict(a, api_name="/sentiment")
    (res,) = senti["results"]
    assert s_label["label"] == res["label"]
    assert {c["label"]: c["confidence"] for c in s_label["confidences"]} == pytest.approx(res["scores"])
    # and the tools' own API names give gradio_client the very same values
    assert client.predict(text, 3, "", api_name="/mcp_fill_mask") == fill


def test_attention_and_explain_answer_in_numbers(app: tuple[Any, str]) -> None:
    _, url = app
    _, (att, expl) = mcp(url, ("attention", {"text": "the sky is blue today.", "layer": 1, "head": 1}),
                         ("explain", {"text": "i loved this movie", "method": "gradient_x_input"}))
    att, expl = answer(att), answer(expl)
    n = len(att["tokens"])
    assert att["tokens"][0] == "[CLS]" and len(att["attention"]) == n and len(att["most_attended"]) == n
    assert all(sum(row) == pytest.approx(1, abs=1e-3) for row in att["attention"])
    assert expl["method"] == "gradient_x_input" and [w for w, _ in expl["attributions"]] == "i loved this movie".split()


def test_refused_input_is_a_clear_tool_error(app: tuple[Any, str]) -> None:
    demo, url = app
    most = demo.bertdemo_context.settings.max_masks
    _, (masks, layer) = mcp(url, ("fill_mask", {"text": "[MASK] " * (most + 2)}),
                            ("attention", {"text": "the sky is blue.", "layer": 99}))
    for result, words in ((masks, (f"at most {most}",)), (layer, ("layer", "99"))):
        assert result.isError
        message = result.content[0].text
        assert all(w in message for w in words), message
        assert "Traceback" not in message and "site-packages" not in message, message
    _, (again,) = mcp(url, ("next_sentence", {"first": "a", "second": "b"}))
    assert not again.isError  # the server keeps answering


def test_small_audit_gives_verdict_numbers_and_report(app: tuple[Any, str], client: Client) -> None:
    _, url = app
    _, (result,) = mcp(url, ("bias_audit", {"checks": ["crows_pairs"], "sample_size": 5}))
    numbers, html, report_json = answer(result)
    assert numbers["verdict"] in {"pass", "fail", "inconclusive"} and numbers["sample_size"] == 5
    gate = numbers["checks"]["crows_pairs"]["gates"][0]
    assert {"metric", "value", "interval", "threshold", "outcome"} <= set(gate)
    assert numbers["checks"]["crows_pairs"]["items"] == 5
    for report, marker in ((html, b"<html"), (report_json, b'"verdict"')):
        assert report["url"].startswith(url)
        with urllib.request.urlopen(report["url"], timeout=10) as r:  # the client can download it
            assert r.status == 200 and marker in r.read().lower()
    # the page's audit endpoint, same checks and sample: same verdict
    summary, *_ = client.predict(["crows_pairs"], 5, None, "", "", False, None, api_name="/bias_audit")
    assert f"Verdict: **{numbers['verdict'].upper()}**" in summary


def test_audit_limits_apply_to_the_tool(app: tuple[Any, str]) -> None:
    demo, url = app
    most = demo.bertdemo_context.settings.audit_max_work
    _, (big,) = mcp(url, ("bias_audit", {"checks": ["crows_pairs", "stereoset", "templates"], "sample_size": 5000}))
    assert big.isError and f"at most {most:,} per audit" in big.content[0].text, big.content


def test_page_endpoints_stay_callable_but_only_tools_are_documented(client: Client) -> None:
    named = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert named == {f"/mcp_{t}" for t in TOOLS}
    *_, filled = client.predict("paris is the [MASK] of france.", 1, "", api_name="/fill_mask")
    assert filled


# ---- on and off ------------------------------------------------------------------------------------
def test_settings_flag_and_about_tab() -> None:
    from bertdemo.cli import build_parser
    from bertdemo.config import load_settings
    from bertdemo.serve import settings_for

    assert not load_settings(env={}).mcp
    assert load_settings(env={"GRADIO_MCP_SERVER": "True"}).mcp
    assert load_settings(env={"BERTDEMO_MCP": "1"}).mcp
    assert not load_settings(env={"GRADIO_MCP_SERVER": "True", "BERTDEMO_MCP": "0"}).mcp  # ours, when set, wins
    assert settings_for(build_parser().parse_args(["serve", "--mcp"])).mcp
    from bertdemo.ui.tabs.about import mcp_markdown

    off, on = "\n".join(mcp_markdown(load_settings(env={}))), "\n".join(mcp_markdown(load_settings(env={"BERTDEMO_MCP": "1"})))
    assert "**off**" in off and all(w in off for w in ("BERTDEMO_MCP=1", "GRADIO_MCP_SERVER=True", "serve --mcp"))
    assert "**on**" in on and "/gradio_api/mcp/" in on and '"mcpServers"' in on


def test_about_gives_the_configured_address() -> None:
    from bertdemo.config import load_settings
    from bertdemo.ui.tabs.about import mcp_markdown

    on = {"BERTDEMO_MCP": "1"}
    assert "http://127.0.0.1:7911/gradio_api/mcp/" in "\n".join(mcp_markdown(load_settings(env={**on, "BERTDEMO_PORT": "7911"})))
    assert "http://127.0.0.1:7911/" in "\n".join(mcp_markdown(load_settings(env={**on, "GRADIO_SERVER_PORT": "7911"})))
    anywhere = "\n".join(mcp_markdown(load_settings(env={**on, "BERTDEMO_HOST": "0.0.0.0"})))
    assert "http://<this app's address>/gradio_api/mcp/" in anywhere and "0.0.0.0" not in anywhere


def test_mcp_is_off_by_default(settings: Any) -> None:
    demo, url = launch(settings)
    try:
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(url + "gradio_api/mcp/", timeout=10)
        assert info.value.code == 404
        assert "/fill_mask" in Client(url, verbose=False).view_api(print_info=False, return_format="dict")["named_endpoints"]
    finally:
        demo.close()


def test_app_py_serves_mcp_with_gradios_variable(model_env: dict[str, str]) -> None:
    port = free_port()
    env = {k: v for k, v in model_env.items() if not k.startswith(("BERTDEMO_PORT", "BERTDEMO_HOST", "BERTDEMO_MCP"))}
    env.update(GRADIO_SERVER_PORT=str(port), GRADIO_MCP_SERVER="True", GRADIO_ANALYTICS_ENABLED="False")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                assert time.time() < deadline, "app.py did not start"
                time.sleep(0.5)
        tools, (fill,) = mcp(url, ("fill_mask", {"text": "paris is the [MASK] of france.", "top_k": 2}))
        assert {t.name for t in tools} == TOOLS and len(answer(fill)["predictions"][0]) == 2
    finally:
        proc.terminate()
        proc.wait(timeout=30)

