"""The one model service every face calls: the app, the CLI, the audit and the benchmarks.

Models load once (lazily, under a lock), concurrent single requests are grouped by a
micro-batcher into one forward pass, bulk calls (audit, CSV scoring) run in length-sorted
minibatches, and every input problem is a typed :class:`InputError` with a plain message.
User text is never logged unless the operator sets ``log_user_text``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from bertdemo.batching import Encoded, MicroBatcher, run_batched
from bertdemo.config import Settings, load_settings
from bertdemo.errors import InputError, ModelLoadError
from bertdemo.models import KIND_CLASSIFIER, KIND_PRETRAINING, LoadedModel, load_model
from bertdemo.tasks import attribution, fill_mask, forward, next_sentence, pll, sentiment
from bertdemo.textcheck import check_int, check_text_list, clean_text, normalize_masks

log = logging.getLogger(__name__)

Progress = Callable[[int], None]  # called with the number of items just finished


class ModelService:
    """Masked LM + next-sentence model and sentiment classifier behind one thread-safe API."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        self._lock = threading.Lock()
        self._models: dict[str, LoadedModel] = {}
        self._batchers: dict[str, MicroBatcher] = {}
        if self.settings.num_threads:
            import torch

            torch.set_num_threads(self.settings.num_threads)

    # ---- loading -------------------------------------------------------------------------
    def _get(self, kind: str) -> LoadedModel:
        model = self._models.get(kind)
        if model is not None:
            return model
        with self._lock:
            if kind not in self._models:
                source = self.settings.mlm_model if kind == KIND_PRETRAINING else self.settings.sentiment_model
                self._models[kind] = load_model(source, kind, self.settings.device, self.settings.precision)
            return self._models[kind]

    @property
    def mlm(self) -> LoadedModel:
        """The masked-LM + next-sentence model (loaded on first use)."""
        return self._get(KIND_PRETRAINING)

    @property
    def classifier(self) -> LoadedModel:
        """The sentiment classifier (loaded on first use)."""
        return self._get(KIND_CLASSIFIER)

    def warm_up(self, mlm: bool = True, classifier: bool = True) -> None:
        """Load models now (at server start-up) so no visitor waits for it."""
        if mlm:
            self.fill_mask(f"hello {self.mlm.tokenizer.mask_token}.", top_k=1)
        if classifier:
            self.sentiment(["hello"])

    def close(self) -> None:
        """Stop the batching threads and drop the models, so their memory can be freed."""
        with self._lock:
            for batcher in self._batchers.values():
                batcher.close()
            self._batchers.clear()
            self._models = {}

    def describe(self) -> dict[str, Any]:
        """What is loaded (About tab, audit manifest); does not trigger loading."""
        return {
            "settings": {"mlm_model": self.settings.mlm_model, "sentiment_model": self.settings.sentiment_model,
                         "device": self.settings.device, "precision": self.settings.precision},
            "loaded": {kind: m.describe() for kind, m in self._models.items()},
        }

    def _batcher(self, name: str, fn: Callable[[list[Encoded]], list[Any]]) -> MicroBatcher:
        batcher = self._batchers.get(name)
        if batcher is None:
            with self._lock:
                batcher = self._batchers.get(name)
                if batcher is None:
                    batcher = MicroBatcher(fn, self.settings.batch_size, self.settings.micro_batch_wait_ms,
                                           name=f"bertdemo-{name}")
                    self._batchers[name] = batcher
        return batcher

    def _bulk(self, model: LoadedModel, fn: Callable[[Any, list[Encoded]], list[Any]], items: Sequence[Encoded],
              progress: Progress | None = None) -> list[Any]:
        return run_batched(items, self.settings.batch_size, partial(fn, model, pack=self.settings.pack_batches),
                           on_batch=progress)

    def _log(self, task: str, text: str | None = None, **facts: Any) -> None:
        if self.settings.log_user_text and text is not None:
            log.info("%s text=%r %s", task, text, facts)
        else:
            log.debug("%s %s", task, facts)

    # ---- fill mask -----------------------------------------------------------------------
    def fill_mask(self, text: Any, top_k: Any = 5, targets: list[str] | None = None) -> dict[str, Any]:
        """Top-k candidates for each [MASK] in ``text`` (several masks, each predicted independently).

        Returns ``{"text", "predictions": [[{token, token_id, score, sequence}, ...] per mask], "filled"}``.
        """
        lm = self.mlm
        s = self.settings
        text = normalize_masks(clean_text(text, max_chars=s.max_chars), lm.tokenizer.mask_token)
        top_k = check_int(top_k, "top_k", 1, s.max_top_k)
        tids = fill_mask.target_ids(lm.tokenizer, targets)
        item = fill_mask.preprocess(lm.tokenizer, text, s.max_masks, lm.max_length)
        self._log("fill_mask", text, masks=len(item.positions))
        logp = self._batcher("mlm", lambda items: self._bulk(self.mlm, forward.mlm_log_probs, items))(item)
        preds = fill_mask.postprocess(lm.tokenizer, item, logp, top_k, tids)
        return {"text": text, "predictions": preds, "filled": fill_mask.best_sentence(lm.tokenizer, item, preds)}

    def mask_distributions(self, texts: Sequence[str], progress: Progress | None = None) -> list[Any]:
        """Full probability rows at the first [MASK] of each text (template probes of the audit)."""
        lm = self.mlm
        items = []
        for i, t in enumerate(texts):
            t = normalize_masks(clean_text(t, field=f"texts[{i}]", max_chars=self.settings.max_chars), lm.tokenizer.mask_token)
            items.append(fill_mask.preprocess(lm.tokenizer, t, 1, lm.max_length))
        return [lp[0].exp() for lp in self._bulk(lm, forward.mlm_log_probs, items, progress)]

    # ---- next sentence -------------------------------------------------------------------
    def _require_nsp(self) -> LoadedModel:
        lm = self.mlm
        if not lm.has_nsp:
            raise ModelLoadError(f"{lm.name} has no next-sentence head; next-sentence prediction is unavailable")
        return lm

    def next_sentence(self, first: Any, second: Any) -> dict[str, Any]:
        """Probability that ``second`` follows ``first`` (BERT's NSP head)."""
        lm = self._require_nsp()
        a = clean_text(first, "first", self.settings.max_chars)
        b = clean_text(second, "second", self.settings.max_chars)
        item = next_sentence.preprocess(lm.tokenizer, a, b, lm.max_length)
        self._log("next_sentence", a + " || " + b)
        p = self._batcher("nsp", lambda items: self._bulk(self.mlm, forward.nsp_probs, items))(item)
        return {"is_next": p}

    def rank_next(self, first: Any, candidates: Any) -> list[dict[str, Any]]:
        """``candidates`` ordered by the probability that each follows ``first``."""
        lm = self._require_nsp()
        a = clean_text(first, "first", self.settings.max_chars)
        cands = check_text_list(candidates, "candidates", self.settings.max_candidates, self.settings.max_chars)
        items = [next_sentence.preprocess(lm.tokenizer, a, c, lm.max_length) for c in cands]
        self._log("rank_next", a, candidates=len(cands))
        probs = self._bulk(lm, forward.nsp_probs, items)
        return next_sentence.rank(cands, probs)

    # ---- sentiment -----------------------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        return sentiment.labels_of(self.classifier.model.config)

    def sentiment(self, texts: Any, progress: Progress | None = None) -> list[dict[str, Any]]:
        """Label, top score and all class probabilities for each text (batched)."""
        clf = self.classifier
        s = self.settings
        cleaned = check_text_list(texts, "texts", s.max_batch_texts, s.max_chars)
        encoded = [sentiment.preprocess(clf.tokenizer, t, clf.max_length) for t in cleaned]
        items = [e for e, _ in encoded]
        self._log("sentiment", None, texts=len(items))
        if len(items) == 1 and progress is None:
            probs = [self._batcher("clf", lambda xs: self._bulk(self.classifier, forward.class_probs, xs))(items[0])]
        else:
            probs = self._bulk(clf, forward.class_probs, items, progress)
        labels = self.labels
        return [sentiment.postprocess(labels, p, trunc) for p, (_, trunc) in zip(probs, encoded, strict=True)]

    def explain_sentiment(self, text: Any, method: str = "integrated_gradients", steps: int = 16) -> dict[str, Any]:
        """The sentiment of ``text`` with per-word attributions toward the predicted label."""
        if method not in attribution.METHODS:
            raise InputError(f"must be one of {', '.join(attribution.METHODS)}", field="method")
        steps = check_int(steps, "steps", 1, 64)
        result = self.sentiment([text])[0]
        clf = self.classifier
        cleaned = clean_text(text, max_chars=self.settings.max_chars)
        item, _ = sentiment.preprocess(clf.tokenizer, cleaned, clf.max_length)
        target = self.labels.index(result["label"])
        scores = attribution.attribute(clf.grad_model, clf.tokenizer, item.input_ids, target, method, steps)
        words = attribution.to_words(clf.tokenizer, item.input_ids, scores)
        return {**result, "method": method, "attributions": words}

    # ---- pseudo-log-likelihood (bias audit) ----------------------------------------------
    def tokenize(self, text: Any) -> list[int]:
        """Token ids with [CLS]/[SEP], refusing text longer than the model reads."""
        lm = self.mlm
        t = clean_text(text, max_chars=self.settings.max_chars)
        return fill_mask.encode_checked(lm.tokenizer, t, lm.max_length).input_ids

    def token_logprobs(self, ids_list: Sequence[Sequence[int]], positions_list: Sequence[Sequence[int]],
                       progress: Progress | None = None) -> list[list[float]]:
        """log P(original token) at each given position, masking one position at a time.

        All masked copies of all sequences share minibatches; the result per sequence lists the
        positions in the given order.
        """
        lm = self.mlm
        mask_id = lm.tokenizer.mask_token_id
        copies: list[Encoded] = []
        owners: list[int] = []
        for n, (ids, positions) in enumerate(zip(ids_list, positions_list, strict=True)):
            for p in positions:
                if not 0 <= p < len(ids):
                    raise InputError(f"position {p} is outside a sequence of {len(ids)} tokens", field="positions")
            copies.extend(pll.masked_copies(ids, positions, mask_id))
            owners.extend([n] * len(positions))
        scores = self._bulk(lm, forward.mlm_log_probs, copies, progress)
        out: list[list[float]] = [[] for _ in ids_list]
        for owner, s in zip(owners, scores, strict=True):
            out[owner].append(float(s[0]))
        return out

    def pseudo_log_likelihood(self, texts: Any, progress: Progress | None = None) -> list[dict[str, Any]]:
        """PLL of each text: sum over its tokens of log P(token | the rest), one mask at a time."""
        cleaned = check_text_list(texts, "texts", self.settings.max_batch_texts * 10, self.settings.max_chars)
        tok = self.mlm.tokenizer
        ids_list = [self.tokenize(t) for t in cleaned]
        positions = [pll.scorable_positions(tok, ids) for ids in ids_list]
        scores = self.token_logprobs(ids_list, positions, progress)
        return [pll.summarize(s) for s in scores]


_default: ModelService | None = None
_default_lock = threading.Lock()


def get_service(settings: Settings | None = None) -> ModelService:
    """The process-wide service (one per process, so models load once)."""
    global _default
    with _default_lock:
        if _default is None or (settings is not None and settings != _default.settings):
            if _default is not None:
                _default.close()
            _default = ModelService(settings)
        return _default
