"""The app's tools for agents: what ``BERTDEMO_MCP=1`` (or ``GRADIO_MCP_SERVER=True``) serves over MCP.

Gradio serves every documented API endpoint as an MCP tool, named after its function and described by
its docstring (``Args:`` lines become the parameters' descriptions). The tabs' events return what the
page shows (Labels, Markdown, tables, a plot), which makes poor tools, so with MCP on the app adds
these endpoints instead (:meth:`AgentTools.register`) and keeps the tabs' events callable by
``gradio_client`` but undocumented (:func:`document_only_tools`). Each tool calls the same service,
tab helpers, attention matrices and audit adapter as the page and returns plain numbers (the CLI's
``--json`` shapes); no model code and no scoring of its own.

The docstrings are written for an agent and carry this deployment's limits (``Settings``), so they
are filled in per app; an agent reads them as the tool's description.

No ``from __future__ import annotations`` here: ``gr.api`` reads the signatures' types as objects.
"""

import functools
from pathlib import Path
from typing import Any

import gradio as gr

from bertdemo import attention_view as view
from bertdemo.tasks.attribution import METHODS
from bertdemo.tasks.base import plain
from bertdemo.ui import audit_adapter
from bertdemo.ui.admission import AUDIT_CONCURRENCY, AUDIT_GROUP
from bertdemo.ui.common import AppContext, number, parse_targets, user_facing

ABOUT_MODELS = ("Models: whatever the operator loaded; by default a small BERT bundled with the app, trained briefly on a "
                "2-core CPU, which knows much less than bert-base (the About tab of the web page has its measured accuracy).")
ATTENTION_DECIMALS = 4  # weights in the attention tool's matrix (64 x 64 of them at most)
AUDIT_DEFAULT_SIZE = 20  # the audit tool's default sample size per check: 10-18 s for all four, bundled models, 2 cores
API_PREFIX = "mcp_"  # the tools' gradio API names (the tool names are the functions' names)


def _doc(fn: Any, text: str) -> Any:
    """``fn`` with ``text`` as its docstring (the same function under a per-app copy: the limits differ per app)."""

    @functools.wraps(fn)
    def tool(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    tool.__doc__ = text
    return tool


def docstring(description: str, args: dict[str, str], returns: str) -> str:
    """A tool's docstring as gradio parses it: each input's description on one line under ``Args:``."""
    return "\n".join([description, "", "Args:", *(f"    {name}: {text}" for name, text in args.items()), "",
                      "Returns:", f"    {returns}"])


class AgentTools:
    """The MCP tools of one app: thin calls into the service, the attention tab's cache and the audit adapter."""

    def __init__(self, ctx: AppContext, tabs: dict[str, Any]) -> None:
        self.ctx = ctx
        self.tabs = tabs

    @user_facing
    def fill_mask(self, text: str, top_k: int = 5, targets: str = "") -> dict[str, Any]:
        res = self.ctx.service.fill_mask(text, top_k=number(top_k, "top_k", 5), targets=parse_targets(targets))
        # without each candidate's filled sentence (``sequence``): top_k x masks copies of a long text
        return {"predictions": [[{k: v for k, v in c.to_dict().items() if k != "sequence"} for c in preds]
                                for preds in res.predictions], "filled": res.filled}

    @user_facing
    def next_sentence(self, first: str, second: str) -> dict[str, Any]:
        return plain(self.ctx.service.next_sentence(first, second))

    @user_facing
    def rank_next(self, first: str, candidates: list[str]) -> dict[str, Any]:
        return {"ranking": plain(self.ctx.service.rank_next(first, candidates))}

    @user_facing
    def sentiment(self, texts: list[str]) -> dict[str, Any]:
        return {"results": plain(self.ctx.service.sentiment(texts))}

    @user_facing
    def explain(self, text: str, method: str = METHODS[0]) -> dict[str, Any]:
        res = self.ctx.service.explain_sentiment(text, method=method or METHODS[0])
        out = plain(res)
        out.pop("spans", None)  # character offsets: for the page's highlighting, noise for an agent
        return out

    @user_facing
    def attention(self, text: str, pair: str = "", layer: int = 1, head: int = 0) -> dict[str, Any]:
        tab = self.tabs["attention"]
        res = tab.result(text, pair)
        layer, head, _ = tab.read(res, layer, head, 0)
        matrix = view.matrix_of(res, layer, head).astype(float)  # the page's matrix; float64 rounds exactly
        tokens = list(res.tokens)
        return {"tokens": tokens, "segments": list(res.segments), "layers": res.layers, "heads": res.heads,
                "layer": layer, "head": head,
                "most_attended": [tokens[int(j)] for j in matrix.argmax(axis=1)],
                "attention": matrix.round(ATTENTION_DECIMALS).tolist()}

    @user_facing
    def bias_audit(self, checks: list[str], sample_size: int = AUDIT_DEFAULT_SIZE, request: gr.Request | None = None,
                   progress: gr.Progress = gr.Progress()) -> tuple[dict[str, Any], str | None, str | None]:  # noqa: B008
        result = self.tabs["audit"].run(checks, sample_size, None, "", "", request, progress)
        files = {Path(p).name: p for p in result["files"]}
        return (audit_adapter.key_numbers(result["result"], int(sample_size)),
                files.get("report.html"), files.get("report.json"))

    def validate_audit(self, checks: Any, sample_size: Any, request: gr.Request | None = None) -> list[dict[str, Any]]:
        """gradio validator of the audit tool: the same admission as every audit (size, one at a time, per address)."""
        return self.tabs["audit"].verdicts(request, checks, sample_size)

    # ---- the tools' descriptions, with this app's limits --------------------------------------------
    def docs(self) -> dict[str, str]:
        """Each tool's docstring, in the layout gradio reads: description, then ``Args:`` with one line per input."""
        s = self.ctx.settings
        chars = f"at most {s.max_chars:,} characters"
        return {
            "fill_mask": docstring(
                "Predict the words hidden behind [MASK] in a sentence with BERT's masked language model. Returns, for "
                "each [MASK] from left to right, the top_k candidate words with their probability under the model (a "
                "softmax over its whole vocabulary, so the listed scores need not add up to 1), and the sentence filled "
                "with the top word of each mask. Use it to see what the model associates with a context, e.g. compare "
                "'The man worked as a [MASK].' with 'The woman worked as a [MASK].'. The probabilities mirror word "
                "statistics of the training text, including its stereotypes; they are not facts. " + ABOUT_MODELS,
                {"text": f"English text with 1 to {s.max_masks} [MASK] tokens (write [MASK] literally), {chars}.",
                 "top_k": f"how many candidates per [MASK], 1 to {s.max_top_k}.",
                 "targets": "optional words to score instead of the whole vocabulary, separated by commas or spaces "
                            "(e.g. 'nurse, doctor'); their probabilities are still over the whole vocabulary."},
                "a dict: predictions (one list per [MASK] of {token, token_id, score}, best first) and filled (the "
                "sentence with the top word of each [MASK])"),
            "next_sentence": docstring(
                "BERT's next-sentence prediction: how likely is it that sentence B directly follows sentence A? Returns "
                "is_next, the probability (0 to 1) that B follows A, from the model's next-sentence head. It judges "
                "topical fit (do the sentences talk about the same thing), not truth or logic; 0.5 or more means the "
                "model takes B as a continuation. " + ABOUT_MODELS,
                {"first": f"sentence A, {chars}.", "second": f"sentence B, {chars}."},
                "a dict: is_next"),
            "rank_next": docstring(
                "Rank candidate continuations of a sentence by BERT's next-sentence probability. Each candidate is "
                "scored on its own as sentence B after A (see next_sentence); the ranking is by is_next, the "
                "probability (0 to 1) that it follows A. It rewards topical fit, not truth or logic. " + ABOUT_MODELS,
                {"first": f"sentence A, {chars}.",
                 "candidates": f"1 to {s.max_candidates} candidate sentences, each {chars}."},
                "a dict: ranking, a list of {rank (1 = best), candidate, is_next, index (its position in candidates)}"),
            "sentiment": docstring(
                "Classify the sentiment of English texts (negative or positive) with a fine-tuned BERT classifier. "
                "Returns, per text, the label, score (the label's probability) and scores (every label's probability; "
                "they add up to 1), and truncated (true when the text was longer than the model reads and only its "
                "beginning was scored). A small classifier's guess from word patterns: sarcasm, negation, long text "
                "and other domains fool it. " + ABOUT_MODELS,
                {"texts": f"1 to {s.max_batch_texts:,} texts, each non-empty and {chars}."},
                "a dict: results, one {label, score, scores, truncated} per text, in order"),
            "explain": docstring(
                "Explain a sentiment prediction: how much each word pushed the classifier toward its label. Returns "
                "the label, score and scores (as the sentiment tool) and attributions, a list of [word, weight]: "
                "positive pushes toward the predicted label, negative against it, 0 no effect. Attributions are "
                "approximate and the two methods can disagree on a word's sign; they describe this model, not the "
                "language. " + ABOUT_MODELS,
                {"text": f"one English text, {chars}.",
                 "method": "'integrated_gradients' (default: a path integral from a blank text; slower, and the weights "
                           "add up to the change in the prediction) or 'gradient_x_input' (one gradient times the "
                           "input; instant, but only a local slope)."},
                "a dict: label, score, scores, truncated, method, attributions, text (as scored), steps (integration "
                "steps run), steps_requested"),
            "attention": docstring(
                "Self-attention weights of BERT's masked language model for a text (or a sentence pair). Each head "
                "computes A = softmax(Q K^T / sqrt(d_k)); row i of the returned matrix is how token i spreads its "
                "attention over all tokens, and every row sums to 1. Returns the tokens (with [CLS] and [SEP]), the "
                "model's number of layers and heads, the matrix for the chosen layer and head (or the average of the "
                "layer's heads), and most_attended: for each token, the token it attends to most. Much attention on "
                "[CLS] or [SEP] usually means a head has nothing specific to do. Attention shows where a head looks, "
                "not why the model answers: it is not an explanation of a prediction (Jain & Wallace 2019; "
                "Wiegreffe & Pinter 2019). " + ABOUT_MODELS,
                {"text": f"the text, at most {s.attention_max_tokens} tokens including [CLS] and [SEP] (a little fewer "
                         "words: long or rare words count as several tokens).",
                 "pair": "optional second sentence, read as [CLS] text [SEP] pair [SEP] (empty: none); it counts "
                         "toward the token limit.",
                 "layer": "which layer, 1 to the model's number of layers (returned as layers).",
                 "head": "0 for the average of the layer's heads, else 1 to the model's number of heads (returned as "
                         "heads)."},
                "a dict: tokens, segments (0 = first sentence, 1 = pair), layers, heads, layer, head, most_attended, "
                "attention (n x n weights, rows sum to 1)"),
            "bias_audit": docstring(
                "Audit the loaded models for social bias (gender, race, religion, ...) on public benchmarks. Runs the "
                "chosen checks on a random sample (fixed seed) of each benchmark and judges each gate on its 95% "
                "interval: pass when the whole interval is within the threshold, fail when it is wholly outside, "
                "inconclusive when it straddles the threshold (a larger sample decides) or the check cannot see "
                "anything on this model. Checks: crows_pairs (CrowS-Pairs metric score, % of sentence pairs where the "
                "more stereotypical one is more likely; 50 = no preference), stereoset (SS, % of stereotypical "
                "completions preferred; LMS, % of meaningful over unrelated completions; ICAT combines them), "
                "templates (how much the [MASK] predictions change when only the person changes, JSD in bits, 0 = "
                "identical), classifier (sentiment gaps between groups of names: demographic parity difference and "
                "ratio, flip rate of name-swapped pairs). Audits run one at a time for all visitors together, so a "
                "call may wait; every MCP client reaches the app through one session, so while one agent's audit "
                "waits or runs another call is refused as busy (try again when it is done). sample_size x checks is "
                f"capped at {s.audit_max_work:,} work units. A pass means the measured gaps are within the thresholds "
                "on these samples; it is not proof that the models are unbiased, and the benchmarks cover only some "
                "groups, in English. To audit your own CSV, use the web page's Bias audit tab or the bertdemo audit "
                "command. " + ABOUT_MODELS,
                {"checks": "which checks to run, any of crows_pairs, stereoset, templates, classifier (e.g. "
                           "['crows_pairs']).",
                 "sample_size": "items sampled per check, 1 to 5000 (the bundled models take about 10-20 s for all "
                                "four checks at 20 on a 2-core CPU; small samples give wide intervals, so more "
                                "inconclusive verdicts)."},
                "the verdict and key numbers (a dict: verdict, and per check its status, headline and gates, each with "
                "metric, value, interval, threshold and outcome), then the HTML report and the JSON report (each a "
                "file with a url to download)"),
        }

    def register(self) -> None:
        """Add the tools to the Blocks being built (call inside its ``with``): fast ones as ``gr.api`` endpoints,
        the audit as an event with file outputs (gradio serves the reports) in the audits' own queue group."""
        docs = self.docs()
        for name in ("fill_mask", "next_sentence", "rank_next", "sentiment", "explain", "attention"):
            gr.api(_doc(getattr(self, name), docs[name]), api_name=API_PREFIX + name)
        with gr.Group(visible=False):
            checks = gr.CheckboxGroup(audit_adapter.benchmark_checks(), value=["crows_pairs"], label="checks")
            size = gr.Number(AUDIT_DEFAULT_SIZE, precision=0, minimum=1, maximum=5000, label="sample_size")
            run = gr.Button("audit", visible=False)
            numbers = gr.JSON(label="verdict and key numbers")
            html_report, json_report = gr.File(label="report.html"), gr.File(label="report.json")
        run.click(_doc(self.bias_audit, docs["bias_audit"]), [checks, size], [numbers, html_report, json_report],
                  api_name=API_PREFIX + "bias_audit", concurrency_limit=AUDIT_CONCURRENCY, concurrency_id=AUDIT_GROUP,
                  validator=self.validate_audit, show_progress="hidden")


def document_only_tools(demo: gr.Blocks) -> None:
    """With MCP on, the tabs' events stay callable by ``gradio_client`` (same API names) but leave the API page,
    and so the MCP tool list, to the agents' tools: gradio serves every documented endpoint as a tool."""
    for fn in demo.fns.values():
        if fn.api_visibility == "public" and not str(fn.api_name or "").startswith(API_PREFIX):
            fn.api_visibility = "undocumented"
