"""The About tab: what is loaded, its limits, and the privacy promise (operator values escaped)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gradio as gr

from bertdemo import compare
from bertdemo.buildinfo import BERT_BASE_PUBLISHED, BuildNumbers, build_numbers
from bertdemo.config import Settings
from bertdemo.ui import files
from bertdemo.ui.format import code, esc

SWITCH = ("To run on bert-base instead (where the hub is reachable, e.g. on a Hugging Face Space), set "
          "`BERTDEMO_MLM_MODEL=bert-base-uncased` and `BERTDEMO_SENTIMENT_MODEL=` an SST-2 BERT with safetensors "
          "weights, as environment variables or in the Space's *Settings > Variables*.")


def _count(n: Any) -> str:
    n = float(n or 0)
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f}"


def _p(x: float | None) -> str:
    return "not measured" if x is None else f"{100 * x:.1f} %"


def bundled_markdown(n: BuildNumbers | None) -> list[str]:
    """How good the bundled models are, measured by their own build, beside bert-base's published figures."""
    if n is None:
        return ["## How good are these models?", "", "The loaded checkpoints were not built by this project's "
                "`modelbuild`, so no figures of ours ship with them; see their own model cards.", ""]
    size = f"{n.mlm_params_m:.1f}M parameters" if n.mlm_params_m else "small"
    return [
        "## How good are these models?",
        "",
        f"The bundled models are small ({size}, against bert-base's {BERT_BASE_PUBLISHED['params']}) and were "
        f"trained for {f'about {n.train_minutes:.0f} minutes' if n.train_minutes else 'a short time'} on a 2-core CPU, "
        "so they know much less than bert-base. Measured by the "
        "build on hand-written sentences like the ones visitors type (never used in training):",
        "",
        "| measure | bundled model | bert-base-uncased |",
        "|---|---|---|",
        f"| fill mask: right word first ({n.cloze_items or '?'} everyday sentences) | {_p(n.cloze_top1)} | not published |",
        f"| fill mask: right word in the top 5 | {_p(n.cloze_top5)} | not published |",
        f"| next sentence: right verdict ({n.user_nsp_pairs or '?'} everyday pairs, half unrelated) | "
        f"{_p(n.user_nsp)} | {BERT_BASE_PUBLISHED['nsp']} on its own test data |",
        f"| next sentence on held-out book/news text | {_p(n.corpus_nsp)} | {BERT_BASE_PUBLISHED['nsp']} |",
        f"| sentiment: product reviews rated by people (a source it never saw) | {_p(n.sentiment_amazon)} | "
        f"{BERT_BASE_PUBLISHED['sst2']} |",
        f"| the app's own examples answered sensibly | {n.app_examples or 'not measured'} | - |",
        "",
        SWITCH + " The full figures and the rerun commands are in the model cards "
        "(`assets/models/*/README.md`).",
        "",
    ]


def compare_markdown(service: Any) -> list[str]:
    """Which models the Compare models tab offers, or how the operator turns it on."""
    tasks = compare.tasks_enabled(service)
    if not tasks:
        return ["## Comparing two models", "", compare.ENABLE, ""]
    kinds = dict.fromkeys(compare.TASKS[t] for t in tasks)
    pairs = "; ".join(" vs ".join(code(n) for n in service.model_names(k)) for k in kinds)
    return ["## Comparing two models", "", f"The **Compare models** tab (and `/compare TEXT` in Chat) answers "
            f"{', '.join(tasks)} with two models side by side: {pairs}. The operator chooses them "
            "(`BERTDEMO_COMPARE_MLM_MODEL`, `BERTDEMO_COMPARE_SENTIMENT_MODEL`); visitors pick between these only.", ""]


def precision_markdown(info: dict[str, Any]) -> list[str]:
    """Why each model runs in its precision (``auto``'s decision or the operator's), and the CPU it decided on."""
    loaded = info.get("loaded", {})
    if not loaded:
        return []
    roles = {"pretraining": "Fill mask + next sentence", "classifier": "Sentiment"}
    lines = ["**Precision.** " + esc(f"Requested: {info.get('settings', {}).get('precision', '')}; CPU: "
                                      f"{info.get('cpu_flags', '')}.")]
    for kind, m in loaded.items():
        lines.append(f"- {roles.get(kind) or esc(kind)}: **{esc(m.get('precision', ''))}**, "
                     f"{esc(m.get('precision_reason', ''))}")
    return lines


def about_markdown(service: Any, settings: Settings) -> str:
    """The model card: what is loaded, its limits, the privacy promise (operator values escaped)."""
    info = service.describe()
    lines = ["## Loaded models", "", "| role | name | kind | parameters | precision | device | max tokens | weights sha256 |",
             "|---|---|---|---|---|---|---|---|"]
    roles = {"pretraining": "fill mask + next sentence", "classifier": "sentiment"}
    rows = [(roles.get(kind, kind), kind, m) for kind, m in info.get("loaded", {}).items()]
    if compare.tasks_enabled(service):  # the Compare models tab's second models, once loaded
        rows += [(f"{roles.get(kind, kind)} (compare)", kind, m)
                 for kind, m in service.second().describe().get("loaded", {}).items() if service.compare_source(kind)]
    for role, kind, m in rows:
        params = m.get("parameters") or 0
        lines.append(
            f"| {esc(role)} | {esc(Path(str(m.get('name', ''))).name or m.get('name', ''))} | "
            f"{esc(kind)} | {_count(params)} | {esc(m.get('precision', ''))} | {esc(m.get('device', ''))} | "
            f"{m.get('max_length', '')} | {code(str(m.get('weights_sha256', ''))[:12])} |")
    if not info.get("loaded"):
        lines.append("| - | (models load on first use) | | | | | | |")
    lines += ["", *precision_markdown(info)]
    s = info.get("settings", {})
    lines += ["", *bundled_markdown(build_numbers(str(settings.mlm_model), str(settings.sentiment_model)))]
    lines += [
        "",
        f"Sources are chosen by the operator (`BERTDEMO_MLM_MODEL`, `BERTDEMO_SENTIMENT_MODEL` or `bertdemo serve "
        f"--mlm-model/--sentiment-model`), never by visitors. Fill-mask/next-sentence source: "
        f"{code(Path(str(s.get('mlm_model', ''))).name)}; sentiment source: "
        f"{code(Path(str(s.get('sentiment_model', ''))).name)}.",
        "",
        *compare_markdown(service),
        "## Limitations",
        "- Fill-mask answers mirror word statistics of the training text, including its stereotypes; "
        "they are not facts. Compare group words (man/woman, he/she) in the *Fill mask* tab.",
        "- Next-sentence probabilities judge topical fit, not truth or logic.",
        "- The sentiment classifier reads at most the model's maximum tokens (longer text is truncated) and "
        "is English-only; sarcasm, negation and domain shift fool it. Word attributions are approximate.",
        "- Small models make a fast demo, not a production system: run the *Bias audit* before relying on it.",
        "",
        "## Privacy",
        "- What you type or upload is used to compute your answer and is **not stored or logged**"
        + (" (the operator has turned on logging of user text for debugging)." if settings.log_user_text else "."),
        "- " + files.promise(settings.file_ttl_s),
        "- The page loads nothing from other sites and sends no analytics.",
        "",
        "## Bias audit",
        "Use the **Bias audit** tab (or `/audit` in Chat, or `bertdemo audit` on the command line) to measure "
        "how the models treat group words, with a downloadable report (JSON, Markdown, HTML).",
        "",
        *mcp_markdown(settings),
    ]
    return "\n".join(lines)


def mcp_markdown(settings: Settings) -> list[str]:
    """How agents reach the app (MCP): whether it is on here, how to turn it on, and a client's config."""
    state = ("**on** in this app" if settings.mcp else
             "**off** in this app. The operator turns it on with `BERTDEMO_MCP=1` (or Gradio's own "
             "`GRADIO_MCP_SERVER=True`; ours wins when both are set) or `bertdemo serve --mcp`")
    return [
        "## Agents (MCP)",
        f"The app can serve its capabilities as tools for AI agents over the Model Context Protocol: {state}. "
        "The tools are `fill_mask`, `next_sentence`, `rank_next`, `sentiment`, `explain`, `attention` and "
        "`bias_audit` (the verdict, its numbers and the report files); each describes its inputs, limits and "
        "what its numbers mean. The endpoint is this app's address followed by `/gradio_api/mcp/` (streamable "
        "HTTP). A client's configuration (with the address this app was configured to serve on; behind a proxy "
        "or on a Space, use the address your browser shows):",
        "",
        '```json\n{"mcpServers": {"bertdemo": {"url": "' + mcp_url(settings) + '"}}}\n```',
    ]


def mcp_url(settings: Settings) -> str:
    """The MCP endpoint at the configured host and port; a placeholder where that is not an address a client can use."""
    host = settings.host
    if os.environ.get("SPACE_ID") or host in ("", "0.0.0.0", "::"):
        return "http://<this app's address>/gradio_api/mcp/"
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.port}/gradio_api/mcp/"


def build(service: Any, settings: Settings) -> gr.Column:
    with gr.Column() as tab:
        gr.Markdown(about_markdown(service, settings), elem_id="about-md")
    return tab
