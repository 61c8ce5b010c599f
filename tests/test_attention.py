"""Attention weights: the task against a direct transformers forward, the CLI, the pictures, the app's endpoints,
and the tab on a bert-base-shaped model (12 layers x 12 heads) within a fill-mask answer's time."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bertdemo.cli import main
from bertdemo.errors import InputError

TEXT, PAIR = "paris is the capital of france.", "the sky is blue today."


def direct_attentions(model_dir: Path, text: str, pair: str | None = None) -> tuple[list[str], np.ndarray]:
    """Tokens and (layers, heads, n, n) weights from plain transformers: eager attention, output_attentions=True."""
    import torch
    from transformers import AutoTokenizer, BertForPreTraining

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = BertForPreTraining.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    enc = tok(text, pair, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc, output_attentions=True)
    weights = torch.stack([a[0] for a in out.attentions]).numpy()
    return tok.convert_ids_to_tokens(enc["input_ids"][0]), weights


@pytest.mark.parametrize("pair", [None, PAIR])
def test_cli_json_equals_direct_forward(model_env: dict[str, str], tiny_mlm_dir: Path, capsys: pytest.CaptureFixture,
                                        pair: str | None) -> None:
    args = ["attention", TEXT, "--json"] + (["--pair", pair] if pair else [])
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    tokens, expected = direct_attentions(tiny_mlm_dir, TEXT, pair)
    got = np.asarray(data["attentions"], dtype=np.float32)
    assert data["tokens"] == tokens
    assert got.shape == expected.shape == (data["layers"], data["heads"], len(tokens), len(tokens))
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)
    assert (got >= 0).all()
    if pair:
        first_sep = tokens.index("[SEP]")
        assert data["segments"] == [0] * (first_sep + 1) + [1] * (len(tokens) - first_sep - 1)
    else:
        assert set(data["segments"]) == {0}


def test_cli_text_html_png_and_refusals(model_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    page, png = tmp_path / "a.html", tmp_path / "a.png"
    assert main(["attention", TEXT, "--pair", PAIR, "--head", "1", "--html", str(page), "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "[CLS]" in out and "each row of each matrix sums to 1" in out
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["attention", TEXT, "--layer", "99"]) == 2
    assert "--layer" in capsys.readouterr().err
    assert main(["attention", " the" * 80]) == 2
    err = capsys.readouterr().err
    assert "at most 64 tokens" in err and "Traceback" not in err


def test_service_limits_and_inputs(service: Any) -> None:
    res = service.attention("paris is the [mask] of france.", "   ")
    assert res.pair is None and "[MASK]" in res.tokens  # spellings of the mask read as [MASK]; a blank pair is no pair
    assert res.to_dict()["attentions"] == res.array().tolist()
    assert isinstance(res["tokens"], list)
    with pytest.raises(InputError, match="empty"):
        service.attention("   ")
    from bertdemo.service import ModelService, shared_models

    short = ModelService(service.settings.replace(attention_max_tokens=6), loader=shared_models(service))
    with pytest.raises(InputError, match=r"is 9 tokens long .* at most 6 tokens"):
        short.attention(TEXT)
    with pytest.raises(InputError, match="attention_max_tokens"):
        from bertdemo.config import load_settings

        load_settings(env={"BERTDEMO_ATTENTION_MAX_TOKENS": "2"})


def test_other_tasks_unchanged_once_attention_is_enabled(settings: Any) -> None:
    """The attention task switches the model's attention once, to a wrapper: every other forward stays bit-identical."""
    import torch

    from bertdemo.service import MASK_DISTRIBUTIONS, ModelService

    texts = ["paris is the [MASK] of france.", "the [MASK] is blue.", "rome is the capital of [MASK] and the sky is blue."]
    for pack in (True, False):  # packed rows (4D masks) and padded rows (2D masks)
        svc = ModelService(settings.replace(pack_batches=pack))
        assert svc.mlm.model.config._attn_implementation == "sdpa"

        def answers(svc: ModelService = svc) -> tuple[Any, ...]:
            return (svc.fill_mask(texts[0], top_k=5).to_dict(), svc.next_sentence(texts[1], texts[2]).is_next,
                    svc.rank_next(texts[0], texts[1:]), svc.run(MASK_DISTRIBUTIONS, texts), svc.sentiment(texts))

        before = answers()
        svc.attention(TEXT)
        assert svc.mlm.model.config._attn_implementation == "bertdemo-weights|sdpa"
        after = answers()
        assert before[:3] == after[:3]
        assert all(torch.equal(a, b) for a, b in zip(before[3], after[3], strict=True))
        assert before[4] == after[4]
        svc.close()


def test_pictures_are_escaped_and_complete(service: Any) -> None:
    from bertdemo import attention_view as view

    res = service.attention('<script>alert(1)</script> paris "is" & the capital.')
    n = len(res.tokens)
    grid = view.grid_html(res, 2, 1)
    assert grid.count("<img ") == res.layers * (res.heads + 1)
    assert grid.count('class="chosen"') == 1
    svg = view.heatmap_svg(res, 1, view.AVERAGE, token=2)
    assert svg.count('width="1" height="1"') == n * n
    page = view.page_html(res, 1, 1, 2, model="tiny")
    for text in (grid, svg, page):
        assert "<script" not in text and "alert(1)</script>" not in text
    assert "&lt;script&gt;" in page
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", page)  # every image inline
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "Jain" in page and "Wiegreffe" in page and "sums to 1" in page
    token = view.token_html(res, 1, 1, 2)
    assert "(token 2)" in token and "row sums to 1.000" in token
    np.testing.assert_allclose(view.matrix_of(res, 1, view.AVERAGE), res.array()[0].mean(0))


# ---- the app ------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def client(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from gradio_client import Client

    from bertdemo.service import ModelService
    from bertdemo.ui import build_app, launch_kwargs

    app_settings = settings.replace(output_dir=str(tmp_path_factory.mktemp("attn_out")))
    demo = build_app(app_settings, service=ModelService(app_settings))
    kwargs = launch_kwargs(app_settings)
    kwargs.update(server_name="127.0.0.1", server_port=free_port())
    demo.launch(prevent_thread_lock=True, quiet=True, **kwargs)
    yield Client(f"http://127.0.0.1:{kwargs['server_port']}/", verbose=False)
    demo.close()


def test_app_attention_and_export(client: Any, tiny_mlm_dir: Path) -> None:
    from gradio_client.exceptions import AppError

    grid, large, where, note, token = client.predict(TEXT, PAIR, 2, 1, 3, api_name="/attention")
    tokens, expected = direct_attentions(tiny_mlm_dir, TEXT, PAIR)
    layers, heads = expected.shape[:2]
    assert grid.count("<img ") == layers * (heads + 1)
    assert "Layer 2, head 1" in large and "<svg" in large
    assert f"<b>{tokens[3]}</b> (token 3)" in where
    assert f"**{len(tokens)} tokens**" in note and token["value"] == 3  # the token menu: its choices and value
    html_file, png_file = client.predict(TEXT, PAIR, 2, 1, 3, api_name="/attention_export")
    page = Path(html_file).read_text(encoding="utf-8")
    assert "Layer 2, head 1" in page and "<script" not in page
    assert Path(png_file).read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(AppError, match=r"Layer: must be a number from 1 to"):  # the slider's range, named
        client.predict(TEXT, "", 99, 0, 1, api_name="/attention")
    with pytest.raises(AppError, match="at most 64 tokens"):
        client.predict(" the" * 80, "", 1, 0, 1, api_name="/attention")
    assert "/attention" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]


# ---- bert-base shape ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bert_base_dir(tmp_path_factory: pytest.TempPathFactory, tiny_mlm_dir: Path) -> Path:
    """A bert-base-shaped (12 layers x 12 heads, hidden 768) random masked LM: speed depends on shape only."""
    from benchmarks.modelfactory import make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("bert_base"), "pretraining", "bert-base",
                           tokenizer_dir=tiny_mlm_dir, seed=0)


def test_tab_answers_at_bert_base_shape_within_a_fill_mask_time(bert_base_dir: Path, settings: Any) -> None:
    from bertdemo.service import ModelService
    from bertdemo.ui.common import AppContext
    from bertdemo.ui.tabs.attention import AttentionTab

    s = settings.replace(mlm_model=str(bert_base_dir))
    svc = ModelService(s)
    tab = AttentionTab(AppContext(svc, s))
    words = "the sky is blue today and paris is the capital of france".split()
    text = " ".join((words * 6)[:61]) + " [MASK]"
    assert len(svc.tokenize(text)) == 64  # the longest input the view reads
    svc.fill_mask(text)  # warm both paths once
    tab.attention(text, "", 1, 0, 1)
    fill, answer = [], []
    for _ in range(3):
        t = time.perf_counter()
        svc.fill_mask(text)
        fill.append(time.perf_counter() - t)
        tab._cache.clear()  # a new text: the forward pass and every picture
        t = time.perf_counter()
        grid, large, *_ = tab.attention(text, "", 12, 0, 5)
        answer.append(time.perf_counter() - t)
    assert grid.count("<img ") == 12 * 13 and "Layer 12, average of the heads" in large
    print(f"bert-base shape, 64 tokens: fill-mask {min(fill) * 1000:.0f} ms, attention tab answer {min(answer) * 1000:.0f} ms")
    # The same budget as a fill-mask answer, with room for a noisy shared machine (measured: about 1.2x).
    assert min(answer) < 2.5 * min(fill) + 0.3
    svc.close()


def test_tab_handlers_refuse_hostile_values_plainly(service: Any, settings: Any) -> None:
    import gradio as gr

    from bertdemo.ui.common import AppContext
    from bertdemo.ui.tabs.attention import AttentionTab

    tab = AttentionTab(AppContext(service, settings))
    for args, words in [((None, "", 1, 0, 1), "Text: is missing"), ((b"\xff", "", 1, 0, 1), "not valid UTF-8"),
                        ((TEXT, "", float("nan"), 0, 1), "layer"), ((TEXT, "", 1, "x", 1), "head"),
                        ((TEXT, "", 1, 0, -1), "token"), ((TEXT, 5, 1, 0, 1), "Second sentence"),
                        (("x" * 6000, "", 1, 0, 1), "at most 5,000")]:
        with pytest.raises(gr.Error) as err:
            tab.attention(*args)
        assert words in str(err.value.message), (args, err.value.message)
    *_, token = tab.attention(TEXT, "", 1, 0, "999")  # a token past the end (a shorter new text): the last one
    assert token["value"] == len(service.attention(TEXT).tokens) - 1
    *_, token = tab.select(TEXT, "", 2, 1, "3: the")  # the menu's own label, pasted
    assert token == 3


def test_building_the_app_loads_no_model(settings: Any) -> None:
    """Without warm-up (tests, stand-in services) the tab is built with placeholders and runs nothing."""
    from bertdemo.service import ModelService
    from bertdemo.ui import build_app

    svc = ModelService(settings)
    demo = build_app(settings, service=svc, warm_up=False)
    assert svc.describe()["loaded"] == {}
    tab = demo.bertdemo_tabs["attention"]
    grid, *_ = tab.attention(TEXT, "", 1, 0, 1)
    assert grid.count("<img ") > 0 and "pretraining" in svc.describe()["loaded"]
    svc.close()
