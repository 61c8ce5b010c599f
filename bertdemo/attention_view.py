"""Pictures of an :class:`~bertdemo.tasks.attention.AttentionResult`, rendered on the server.

- :func:`grid_html`: every layer x head as a small heatmap (plus the head average of each layer),
  each a tiny PNG inlined as a ``data:`` URI (n x n pixels, scaled up by the browser without smoothing);
- :func:`heatmap_svg`: one large heatmap with token labels and a tooltip per cell;
- :func:`token_html`: where one token attends, as shaded tokens and a top-5 list;
- :func:`page_html`: all of it as one self-contained HTML file (no scripts, no external resources,
  a Content-Security-Policy that forbids loading anything) and :func:`figure_png` a PNG of the large views.

No gradio and no model here: the app, the CLI and the tests share these functions. Every piece of
user text is HTML-escaped. Colour: white (0) to dark blue (1), on a square-root scale so that the
small weights of a diffuse head still show; the exact numbers are in the tooltips and the JSON.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np

# Colour stops (matplotlib's "Blues" ends and middle) at sqrt(weight) = 0, 0.5, 1.
STOPS = np.array([[247, 251, 255], [107, 174, 214], [8, 48, 107]], dtype=np.float64)
SPECIAL = {"[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]"}
GRID_CELL = 40  # px per small heatmap
LARGE = 480  # px for the cells of the large heatmap (labels come on top)
AVERAGE = 0  # head number meaning "the average of the layer's heads"

EXPLANATION_HTML = """
<h3>What the picture shows</h3>
<p>Each layer of BERT has several attention <em>heads</em>. A head projects every token's vector into a
query q, a key k and a value v, and computes</p>
<p class="formula">A = softmax(Q K<sup>T</sup> / &radic;d<sub>k</sub>)</p>
<p>(d<sub>k</sub> = hidden size / heads: 64 in bert-base). Entry A[i, j] is how much token i
(row, the <em>query</em>) takes from token j (column, the <em>key</em>) when it builds its next vector
as the weighted sum of the value vectors: new<sub>i</sub> = &Sigma;<sub>j</sub> A[i, j] v<sub>j</sub>.
The softmax runs along each row, so <strong>every row sums to 1</strong>; columns do not. The
<em>head average</em> is the mean of a layer's heads (its rows still sum to 1).</p>
<h3>[CLS] and [SEP]</h3>
<p>[CLS] starts every input; its final vector feeds the next-sentence head and a fine-tuned classifier,
so the [CLS] row shows what that summary collects. [SEP] ends each sentence. Many heads of trained
BERTs send most of their weight to [SEP] (or [CLS]) in the middle layers: Clark et al. (2019, "What does
BERT look at?") read this as a head's "no-op", a place to park attention when the head's pattern does not
apply, not as these tokens being important. A bright [SEP] column is therefore normal.</p>
<h3>Attention weights are not explanations</h3>
<p>Jain &amp; Wallace (2019, "Attention is not Explanation") found that attention weights often disagree
with gradient-based measures of importance, and that quite different attention can give the same
prediction. Wiegreffe &amp; Pinter (2019, "Attention is not not Explanation") answered that attention can
be <em>one</em> plausible account, but is not by itself a faithful explanation of a prediction. Add to
this that from layer 2 on, token j's vector already mixes the whole sentence, and that the weights ignore
how large the value vectors are. Read the heatmaps as "where this head looks", not "why the model
answered". For which words move a prediction, use the Sentiment tab's attributions (integrated gradients).</p>
"""


# ---- colours and small images ----------------------------------------------------------------------
def shade(weights: np.ndarray) -> np.ndarray:
    """RGB uint8 colours for weights in [0, 1] (square-root scale, white to dark blue)."""
    t = np.sqrt(np.clip(np.asarray(weights, dtype=np.float64), 0.0, 1.0))[..., None]
    low = STOPS[0] + (STOPS[1] - STOPS[0]) * np.clip(2 * t, 0, 1)
    high = STOPS[1] + (STOPS[2] - STOPS[1]) * np.clip(2 * t - 1, 0, 1)
    return np.rint(np.where(t <= 0.5, low, high)).astype(np.uint8)


def hex_colour(weight: float) -> str:
    r, g, b = (int(c) for c in shade(np.array(weight)))
    return f"#{r:02x}{g:02x}{b:02x}"


PALETTE = shade(np.linspace(0.0, 1.0, 256) ** 2).tobytes()  # index k = sqrt(weight) * 255


def matrix_png(matrix: np.ndarray) -> bytes:
    """An n x n palette PNG of one attention matrix (one pixel per weight, 256 shades)."""
    from PIL import Image

    index = np.rint(np.sqrt(np.clip(matrix, 0.0, 1.0)) * 255).astype(np.uint8)
    img = Image.frombytes("P", (index.shape[1], index.shape[0]), np.ascontiguousarray(index).tobytes())
    img.putpalette(PALETTE)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def matrix_of(res: Any, layer: int, head: int) -> np.ndarray:
    """The (n, n) matrix of ``layer`` (1-based) and ``head`` (1-based; 0 = the average of the layer's heads)."""
    arr = res.array()
    return arr[layer - 1].mean(axis=0) if head == AVERAGE else arr[layer - 1, head - 1]


def head_name(layer: int, head: int) -> str:
    return f"layer {layer}, " + ("average of the heads" if head == AVERAGE else f"head {head}")


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def token_label(tokens: list[str], i: int) -> str:
    return f"{i}: {tokens[i]}"


# ---- the grid ------------------------------------------------------------------------------------
def grid_html(res: Any, layer: int = 1, head: int = AVERAGE, mark: bool = True, cell: int = GRID_CELL) -> str:
    """Layers (rows) x heads (columns) of small heatmaps (``cell`` px), the head average last; the chosen one
    outlined (``mark``)."""
    arr = res.array()
    cols = "".join(f"<th>{h}</th>" for h in range(1, res.heads + 1)) + "<th>avg</th>"
    rows = []
    for lay in range(1, res.layers + 1):
        cells = []
        for h in [*range(1, res.heads + 1), AVERAGE]:
            m = arr[lay - 1].mean(axis=0) if h == AVERAGE else arr[lay - 1, h - 1]
            chosen = mark and lay == layer and h == head
            cls = ' class="chosen"' if chosen else ""
            cells.append(f'<td{cls}><img src="{data_uri(matrix_png(m))}" width="{cell}" height="{cell}" '
                         f'alt="{_e(head_name(lay, h))}" title="{_e(head_name(lay, h))}" '
                         f'data-layer="{lay}" data-head="{h}"></td>')
        rows.append(f"<tr><th>{lay}</th>{''.join(cells)}</tr>")
    return (f'<div class="attn-grid"><table><thead><tr><th title="layer \\ head">L\\H</th>{cols}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
            f'<p class="attn-legend">{res.layers} layers x {res.heads} heads; each square is one head\'s '
            f"{len(res.tokens)} x {len(res.tokens)} matrix (row = token attending, column = token attended to); "
            f"last column: the layer's head average. Outlined: the head shown large. "
            f"{legend_html()}</p></div>")


def legend_html() -> str:
    stops = "".join(f'<span style="background:{hex_colour(w)}" title="{w:g}"></span>' for w in (0, .05, .1, .25, .5, .75, 1))
    return f'<span class="attn-scale">0 {stops} 1</span> (square-root scale)'


# ---- the large heatmap -----------------------------------------------------------------------------
def _token_style(tokens: list[str], segments: list[int], i: int) -> str:
    if tokens[i] in SPECIAL:
        return "fill:#777;font-style:italic"
    return "fill:#6a3d9a" if segments[i] == 1 else "fill:#222"


def heatmap_svg(res: Any, layer: int = 1, head: int = AVERAGE, token: int | None = None, size: int = LARGE) -> str:
    """One matrix with token labels (rows attend to columns), a tooltip per cell, the chosen token's row outlined."""
    m = matrix_of(res, layer, head)
    tokens, n = res.tokens, len(res.tokens)
    cell = max(6.0, min(32.0, size / n))
    font = max(6.0, min(13.0, cell * 0.8))
    longest = max(len(t) for t in tokens)
    pad = 14 + font * 0.62 * min(longest, 14)  # room for labels
    side = cell * n
    w, h = pad + side + pad * 0.55, pad + side + 4  # rotated column labels reach right of the last cell
    colours = shade(m)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="attn-heatmap" viewBox="0 0 {w:.0f} {h:.0f}" '
             f'width="{w:.0f}" height="{h:.0f}" role="img" aria-label="{_e(head_name(layer, head))}" '
             f'font-family="sans-serif" font-size="{font:.1f}">']
    for i in range(n):
        st = _token_style(tokens, res.segments, i)
        y = pad + cell * (i + 0.5)
        x = pad + cell * (i + 0.5)
        parts.append(f'<text x="{pad - 4:.1f}" y="{y:.1f}" text-anchor="end" dominant-baseline="central" '
                     f'style="{st}" data-token="{i}">{_e(tokens[i][:14])}</text>')
        parts.append(f'<text transform="translate({x:.1f},{pad - 4:.1f}) rotate(-60)" dominant-baseline="central" '
                     f'style="{st}" data-token="{i}">{_e(tokens[i][:14])}</text>')
    show_numbers = cell >= 26
    # Cells in their own coordinates (one unit per cell) keep the markup short: n^2 of them, each with a tooltip.
    parts.append(f'<g transform="translate({pad:.1f},{pad:.1f}) scale({cell:.3f})">')
    names = [_e(t) for t in tokens]
    for i in range(n):
        for j in range(n):
            r, g, b = colours[i, j]
            parts.append(f'<rect x="{j}" y="{i}" width="1" height="1" fill="#{r:02x}{g:02x}{b:02x}">'
                         f"<title>{names[i]} -&gt; {names[j]}: {m[i, j]:.3f}</title></rect>")
    parts.append("</g>")
    for i in range(n):
        for j in range(n):
            x, y = pad + cell * j, pad + cell * i
            if show_numbers and m[i, j] >= 0.1:
                fg = "#fff" if m[i, j] > 0.3 else "#000"
                parts.append(f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2:.1f}" text-anchor="middle" '
                             f'dominant-baseline="central" font-size="{font * 0.75:.1f}" fill="{fg}" '
                             f'pointer-events="none">{round(100 * m[i, j])}</text>')
    if token is not None and 0 <= token < n:
        parts.append(f'<rect x="{pad:.1f}" y="{pad + cell * token:.1f}" width="{side:.1f}" height="{cell:.2f}" '
                     f'fill="none" stroke="#e6550d" stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)


def large_html(res: Any, layer: int = 1, head: int = AVERAGE, token: int | None = None, size: int = LARGE) -> str:
    numbers = " Numbers in the cells are percentages (10 % and more)." if size / len(res.tokens) >= 26 else ""
    return (f'<div class="attn-large"><h4>{_e(head_name(layer, head).capitalize())}</h4>'
            f"{heatmap_svg(res, layer, head, token, size)}"
            f'<p class="attn-legend">Rows: the token attending (query); columns: the token attended to (key); each row '
            f"sums to 1. Hover a cell for its weight.{numbers} {legend_html()}</p></div>")


# ---- one token -------------------------------------------------------------------------------------
def token_html(res: Any, layer: int = 1, head: int = AVERAGE, token: int = 1, top: int = 5) -> str:
    """Where ``token`` attends in the chosen layer and head: every token shaded by its weight, and the top few."""
    m = matrix_of(res, layer, head)
    row = m[token]
    chips = []
    for j, t in enumerate(res.tokens):
        fg = "#fff" if row[j] > 0.3 else "#000"
        border = "border:2px solid #e6550d;" if j == token else ""
        chips.append(f'<span class="attn-chip" style="background:{hex_colour(float(row[j]))};color:{fg};{border}" '
                     f'title="{_e(f"{t}: {row[j]:.3f}")}">{_e(t)}</span>')
    best = np.argsort(-row, kind="stable")[:top]
    tops = ", ".join(f"<b>{_e(res.tokens[j])}</b> ({j}) {100 * row[j]:.1f}%" for j in best)
    return (f'<div class="attn-token"><p>Where <b>{_e(res.tokens[token])}</b> (token {token}) attends in '
            f"{_e(head_name(layer, head))}:</p><p class=\"attn-chips\">{''.join(chips)}</p>"
            f"<p>Most: {tops}. (The row sums to {row.sum():.3f}.)</p></div>")


# ---- export ----------------------------------------------------------------------------------------
CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}
.attn-grid table{border-collapse:collapse}.attn-grid th{font-size:11px;font-weight:normal;color:#555;padding:0 2px}
.attn-grid td{padding:1px}.attn-grid td.chosen img{outline:3px solid #e6550d;outline-offset:-1px}
.attn-grid img{display:block;image-rendering:pixelated;border:1px solid #ddd}
.attn-legend{font-size:12px;color:#555}.attn-scale span{display:inline-block;width:14px;height:10px;border:1px solid #ccc}
.attn-chip{display:inline-block;padding:1px 4px;margin:2px;border-radius:3px;border:1px solid #ddd}
.formula{font-size:1.2em}.row{display:flex;flex-wrap:wrap;gap:2em;align-items:flex-start}
"""
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def page_html(res: Any, layer: int = 1, head: int = AVERAGE, token: int = 1, model: str = "") -> str:
    """A self-contained HTML page: inputs, grid, the chosen head and the layer average, one token, the explanation."""
    pair = f"<p><b>Second sentence:</b> {_e(res.pair)}</p>" if res.pair else ""
    model_line = f"<p><b>Model:</b> {_e(model)}</p>" if model else ""
    second = large_html(res, layer, AVERAGE, token) if head != AVERAGE else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>BERT attention: {_e(res.text[:60])}</title><style>{CSS}</style></head><body>"
        f"<h1>BERT attention</h1><p><b>Text:</b> {_e(res.text)}</p>{pair}{model_line}"
        f"<p>{len(res.tokens)} tokens, {res.layers} layers x {res.heads} heads. Exported by bertdemo.</p>"
        f"<h2>All layers and heads</h2>{grid_html(res, layer, head)}"
        f'<h2>Large view</h2><div class="row">{large_html(res, layer, head, token)}{second}</div>'
        f"<h2>One token</h2>{token_html(res, layer, head, token)}"
        f"{EXPLANATION_HTML}</body></html>\n"
    )


def figure_png(res: Any, layer: int = 1, head: int = AVERAGE, token: int | None = None, model: str = "") -> bytes:
    """A PNG of the chosen head and the layer's head average, with token labels (matplotlib, no display)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from bertdemo.drawing import release_fonts

    n = len(res.tokens)
    panels = [(layer, head)] + ([(layer, AVERAGE)] if head != AVERAGE else [])
    side = max(4.5, min(9.0, 2.5 + 0.16 * n))
    fig = Figure(figsize=(side * len(panels) + 0.8, side + 0.7), dpi=100, layout="constrained")
    labels = [t[:14] for t in res.tokens]
    for k, (lay, h) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        im = ax.imshow(np.sqrt(matrix_of(res, lay, h)), cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(head_name(lay, h), fontsize=11)
        fs = max(4, min(10, 220 / n))
        ax.set_xticks(range(n), labels, rotation=90, fontsize=fs)
        ax.set_yticks(range(n), labels, fontsize=fs)
        ax.set_xlabel("attended to (key)")
        ax.set_ylabel("attending (query); rows sum to 1")
        if token is not None and 0 <= token < n:
            ax.add_patch(Rectangle((-0.5, token - 0.5), n, 1, fill=False, edgecolor="#e6550d", lw=1.5))
        cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        ticks = [0, .05, .25, .5, 1]
        cbar.set_ticks([t ** 0.5 for t in ticks], labels=[f"{t:g}" for t in ticks])
    title = "BERT attention" + (f" ({model})" if model else "") + " - where each head looks, not why the model answers"
    fig.suptitle(title, fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    release_fonts()
    return buf.getvalue()
