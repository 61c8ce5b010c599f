"""The Attention tab: every layer's and head's attention as a grid, one head large, where one token attends.

The weights come from the shared service (the loaded masked LM, no second model). Pictures are
rendered on the server (:mod:`bertdemo.attention_view`): small PNGs inlined in the grid, an SVG for
the large view, so the page needs no plotting library. Click a square of the grid to enlarge that
head, click a row label of the large view to pick that token. The last few results are kept (by
text), so changing the layer, head or token does not run the model again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import gradio as gr

from bertdemo import attention_view as view
from bertdemo.errors import BertDemoError
from bertdemo.models import KIND_PRETRAINING
from bertdemo.textcheck import check_int
from bertdemo.ui import format as fmt
from bertdemo.ui.common import AppContext, show_errors_in_place, user_facing

DEFAULT = ("The cat sat on the mat because it was tired.", "Then it fell asleep in the sun.")
EXAMPLES = [
    ["The cat sat on the mat because it was tired.", ""],
    ["The cat sat on the mat because it was tired.", "Then it fell asleep in the sun."],
    ["The doctor asked the nurse to help her with the patient.", ""],
    ["Paris is the [MASK] of France.", ""],
]
CACHE_SIZE = 4  # results kept (bert-base at 64 tokens: 2.4 MB each)

# Clicks inside the pictures become events: a square of the grid picks (layer, head), a row label or a
# cell of the large view picks a token. Event delegation on the component's root survives re-renders.
GRID_JS = """element.addEventListener('click', (e) => {
  const img = e.target.closest('img[data-layer]');
  if (img) { trigger('click', {layer: Number(img.dataset.layer), head: Number(img.dataset.head)}); }
});"""
LARGE_JS = """element.addEventListener('click', (e) => {
  const el = e.target.closest('[data-token]');
  if (el) { trigger('click', {token: Number(el.dataset.token)}); }
});"""


def outline_css(layer: int, head: int) -> str:
    """The chosen square of the grid, outlined (sent with the large view, so the grid is not re-sent)."""
    return (f'<style>#at-grid img[data-layer="{int(layer)}"][data-head="{int(head)}"]'
            "{outline:3px solid #e6550d;outline-offset:-1px}</style>")


GRID_WIDTH = 540  # px the grid may take (it sits in the left half of the tab)
LARGE = 420  # px for the cells of the large view
TAB_CSS = """<style>
#at-grid .attn-grid table{border-collapse:collapse!important;margin:0!important;width:auto!important}
#at-grid .attn-grid th{font-size:11px;font-weight:normal;color:#666;padding:0 2px!important;text-align:center;
  border:none!important;background:none!important}
#at-grid .attn-grid td{padding:1px!important;border:none!important;background:none!important}
#at-grid .attn-grid tr,#at-grid .attn-grid thead,#at-grid .attn-grid tbody{border:none!important;background:none!important}
#at-grid .attn-grid img{display:block;image-rendering:pixelated;border:1px solid #ddd;cursor:pointer;max-width:none}
.attn-legend{font-size:12px;opacity:.8;margin:4px 0}
.attn-scale span{display:inline-block;width:14px;height:10px;border:1px solid #ccc;vertical-align:middle}
.attn-chip{display:inline-block;padding:1px 4px;margin:2px;border-radius:3px;border:1px solid #ddd}
#at-large svg{max-width:100%;height:auto}#at-large text[data-token]{cursor:pointer}
#at-large h4{margin:0 0 4px 0}
</style>"""


def fresh_result() -> tuple[Any, ...]:
    """UI-only, after a new text is shown: controls and export visible, the previous text's files gone."""
    return gr.update(visible=True), gr.update(visible=True), None, None


# service field -> the label on the page
FIELDS = {"text": "Text", "pair": "Second sentence", "sentence pair": "Text and second sentence"}


class AttentionTab:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._cache: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    # ---- model and choices -----------------------------------------------------------------------
    def first_result(self) -> Any | None:
        """The default text's answer when the masked LM is already loaded (``build_app`` warms it up), else None:
        building the page never loads a model."""
        svc = self.ctx.service
        try:
            loaded = KIND_PRETRAINING in svc.describe().get("loaded", {})
            return self.result(*DEFAULT) if loaded else None
        except (BertDemoError, AttributeError):  # a default text over a small token limit; a stand-in service
            return None

    def result(self, text: Any, pair: Any) -> Any:
        """The service's answer for (text, pair), from the small cache when the same text was just shown."""
        key = (text if isinstance(text, str) else repr(text), pair if isinstance(pair, str) else repr(pair))
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        res = self.ctx.service.attention(text, pair)  # a blank pair is no pair; anything else is checked there
        with self._lock:
            self._cache[key] = res
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return res

    def choices(self, res: Any) -> list[tuple[str, int]]:
        return [(view.token_label(res.tokens, i), i) for i in range(len(res.tokens))]

    def read(self, res: Any, layer: Any, head: Any, token: Any) -> tuple[int, int, int]:
        """Layer (1..L), head (0 = average, 1..H) and token index, checked; a token past the end is the last one."""
        layers, heads = res.layers, res.heads
        layer = check_int(1 if layer in (None, "") else layer, "layer", 1, layers)
        head = check_int(0 if head in (None, "") else head, "head", 0, heads)
        if isinstance(token, str) and ":" in token:  # a label typed or pasted: "3: cat"
            token = token.split(":", 1)[0]
        token = check_int(1 if token in (None, "") else token, "token", 0, 10**6)
        return layer, head, min(token, len(res.tokens) - 1)

    def grid(self, res: Any) -> str:
        """The grid for the tab (its CSS with it; the chosen square is outlined by the large view's CSS)."""
        cell = max(12, min(view.GRID_CELL, GRID_WIDTH // (res.heads + 2) - 4))
        return TAB_CSS + view.grid_html(res, mark=False, cell=cell)

    # ---- handlers ----------------------------------------------------------------------------------
    def views(self, res: Any, layer: int, head: int, token: int) -> tuple[str, str, str]:
        large = view.large_html(res, layer, head, token, size=LARGE) + outline_css(layer, head)
        return large, view.token_html(res, layer, head, token), fmt.attention_note(res, layer, head)

    @user_facing(fields=FIELDS, in_place=True)
    def attention(self, text: Any, pair: Any = "", layer: Any = 1, head: Any = 0, token: Any = 1) -> tuple[Any, ...]:
        """Grid, large view, one token's attention, a note and the token choices for a text (and optional pair).

        layer: 1..layers; head: 0 = the layer's head average, else 1..heads; token: index into the tokens
        ([CLS] = 0; past the end = the last token).
        """
        res = self.result(text, pair)
        layer, head, token = self.read(res, layer, head, token)
        large, where, note = self.views(res, layer, head, token)
        return (self.grid(res), large, where, note,
                gr.update(choices=self.choices(res), value=token))

    @user_facing
    def select(self, text: Any, pair: Any, layer: Any, head: Any, token: Any) -> tuple[Any, ...]:
        """A new layer, head or token for the text shown (no new forward pass when it is cached)."""
        res = self.result(text, pair)
        layer, head, token = self.read(res, layer, head, token)
        return (*self.views(res, layer, head, token), token)

    @user_facing
    def pick_head(self, text: Any, pair: Any, token: Any, evt: gr.EventData) -> tuple[Any, ...]:
        """A click on a square of the grid: that layer and head, large."""
        data = getattr(evt, "_data", None) or {}
        res = self.result(text, pair)
        layer, head, token = self.read(res, data.get("layer"), data.get("head"), token)
        return (*self.views(res, layer, head, token), layer, head)

    @user_facing
    def pick_token(self, text: Any, pair: Any, layer: Any, head: Any, evt: gr.EventData) -> tuple[Any, ...]:
        """A click on a token label of the large view: where that token attends."""
        data = getattr(evt, "_data", None) or {}
        res = self.result(text, pair)
        layer, head, token = self.read(res, layer, head, data.get("token"))
        return (*self.views(res, layer, head, token), token)

    @user_facing
    def export(self, text: Any, pair: Any = "", layer: Any = 1, head: Any = 0, token: Any = 1,
               request: gr.Request | None = None) -> tuple[str, str]:
        """A self-contained HTML page (no scripts, nothing fetched) and a PNG of the large views."""
        res = self.result(text, pair)
        layer, head, token = self.read(res, layer, head, token)
        out = self.ctx.session_dir(request)
        model = str(self.ctx.service.mlm.name).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        page, png = out / "attention.html", out / "attention.png"
        page.write_text(view.page_html(res, layer, head, token, model=model), encoding="utf-8")
        png.write_bytes(view.figure_png(res, layer, head, token, model=model))
        return str(page), str(png)

    # ---- layout ------------------------------------------------------------------------------------
    def build(self) -> gr.Column:
        limit = self.ctx.settings.attention_max_tokens
        first = self.first_result()
        if first is not None:
            layers, heads = first.layers, first.heads
            layer0, head0, token0 = min(3, layers), 0, 2
            grid0 = self.grid(first)
            large0, where0, note0 = self.views(first, layer0, head0, token0)
            tokens0 = self.choices(first)
        else:  # the model is not loaded yet: bert-base's shape for the controls (answers check the real one)
            layers, heads = 12, 12
            layer0, head0, token0 = 1, 0, 1
            grid0, large0, where0, note0, tokens0 = "<p>Press <b>Show attention</b>.</p>", "", "", "", [("1", 1)]
        head_choices = [("average of the heads", 0)] + [(f"head {h}", h) for h in range(1, heads + 1)]
        with gr.Column() as tab:
            shape = f"{layers} layers x {heads} heads" if first is not None else "layers and heads"
            gr.Markdown(f"How each of the model's {shape} spreads a token's attention over the "
                        f"others: **A = softmax(QK<sup>T</sup> / √d<sub>k</sub>)**, one matrix per head, each row sums "
                        f"to 1. Up to {limit} tokens (with [CLS] and [SEP]) so that every head stays readable. "
                        "**Click a square** of the grid to enlarge it, **click a token** of the large view to see "
                        "where it attends. Attention shows where a head looks, not why the model answers (see below).")
            with gr.Row(equal_height=False):
                text = gr.Textbox(value=DEFAULT[0], label="Text", elem_id="at-text", scale=3, lines=1)
                pair = gr.Textbox(value=DEFAULT[1], label="Second sentence (optional: [CLS] A [SEP] B [SEP])",
                                  elem_id="at-pair", scale=3, lines=1)
                run = gr.Button("Show attention", variant="primary", elem_id="at-run", scale=1)
            with gr.Row(equal_height=False):
                with gr.Column(scale=5, min_width=420):
                    grid = gr.HTML(grid0, label="All layers (rows) x heads (columns)", elem_id="at-grid",
                                   js_on_load=GRID_JS, padding=False)
                    note = gr.Markdown(note0, elem_id="at-note")
                    with gr.Accordion("How to read it: the formula, [CLS] and [SEP], and why attention is not an "
                                      "explanation", open=True, elem_id="at-explain"):
                        gr.HTML(view.EXPLANATION_HTML, padding=False)
                with gr.Column(scale=6, min_width=420):
                    with gr.Row(elem_id="at-controls") as controls:
                        layer = gr.Slider(1, layers, value=layer0, step=1, label="Layer", elem_id="at-layer")
                        head = gr.Dropdown(head_choices, value=head0, label="Head", elem_id="at-head",
                                           allow_custom_value=True)
                        token = gr.Dropdown(tokens0, value=token0, label="Token (where it attends)",
                                            elem_id="at-token", allow_custom_value=True)
                    large = gr.HTML(large0, elem_id="at-large", js_on_load=LARGE_JS, padding=False)
                    where = gr.HTML(where0, elem_id="at-where", padding=False)
                    with gr.Column(elem_id="at-exports") as exports:
                        export = gr.Button("Export HTML + PNG", elem_id="at-export")
                        # a row of their own, so the file names (attention.html, attention.png) show whole
                        with gr.Row(equal_height=True):
                            html_file = gr.File(label="HTML (self-contained, opens offline)", elem_id="at-html-file",
                                                interactive=False, height=90, min_width=200)
                            png_file = gr.File(label="PNG", elem_id="at-png-file", interactive=False, height=90,
                                               min_width=200)
            gr.Examples(EXAMPLES, inputs=[text, pair], label="Examples")

            inputs = [text, pair, layer, head, token]
            shown = gr.on([run.click, text.submit, pair.submit], self.attention, inputs,
                          [grid, large, where, note, token], api_name="attention")
            # a new text: the previous text's exports go; the controls show (an error hid them)
            shown.success(fresh_result, None, [controls, exports, html_file, png_file], api_visibility="private",
                          queue=False, show_progress="hidden")
            # a refused text (too long, empty) replaces the pictures with its message: no stale heatmaps, no
            # old exports, no controls for pictures that are not there (and no error mark on the token menu)
            show_errors_in_place(shown, self.attention, [grid, large, where, token, controls, exports, html_file, png_file],
                                 ["", "", "", gr.update(choices=[], value=None), gr.update(visible=False),
                                  gr.update(visible=False), None, None], note)
            gr.on([layer.release, head.input, token.input], self.select, inputs, [large, where, note, token],
                  api_visibility="private")
            grid.click(self.pick_head, [text, pair, token], [large, where, note, layer, head], api_visibility="private")
            large.click(self.pick_token, [text, pair, layer, head], [large, where, note, token],
                        api_visibility="private")
            export.click(self.export, inputs, [html_file, png_file], api_name="attention_export")
        return tab

