"""The one model service every face calls: the app, the CLI, the audit and the benchmarks.

:meth:`ModelService.run` is the only path from a request to a model: it loads the task's model
once (lazily, under a lock), lets the task sanitize and encode the inputs, runs the forward pass
(a lone interactive request through a micro-batcher that groups concurrent requests, anything
else in length-sorted minibatches) and lets the task build its typed result. The named methods
(``fill_mask``, ``sentiment``, ...) are one-line calls of ``run``. Model loading and the batcher
are injected, so benchmarks and tests swap them through the constructor, not by patching.
User text is never logged unless the operator sets ``log_user_text``.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from bertdemo.batching import Encoded, MicroBatcher, run_batched
from bertdemo.config import Settings, load_settings
from bertdemo.errors import InputError
from bertdemo.models import KIND_CLASSIFIER, KIND_PRETRAINING, LoadedModel, load_for_settings, model_label
from bertdemo.tasks import attention, attribution, fill_mask, next_sentence, pll, sentiment
from bertdemo.tasks.base import Task
from bertdemo.textcheck import clean_text

log = logging.getLogger(__name__)

R = TypeVar("R")
Progress = Callable[[int], None]  # called with the number of items just finished
ModelLoader = Callable[[str, Settings], LoadedModel]  # (kind, settings) -> loaded model
BatcherFactory = Callable[..., MicroBatcher]  # like MicroBatcher(fn, max_batch, wait_ms, name=...)
BatchObserver = Callable[[LoadedModel, Sequence[Encoded]], None]  # sees every batch before its forward

FILL_MASK = fill_mask.FillMask()
MASK_DISTRIBUTIONS = fill_mask.MaskDistributions()
NEXT_SENTENCE = next_sentence.NextSentence()
RANK_NEXT = next_sentence.RankNext()
SENTIMENT = sentiment.Sentiment()
EXPLAIN = attribution.Explain()
TOKEN_LOGPROBS = pll.TokenLogprobs()
PSEUDO_LOG_LIKELIHOOD = pll.PseudoLogLikelihood()
ATTENTION = attention.Attention()


def release_memory() -> None:
    """Give freed heap back to the OS (glibc ``malloc_trim``); a no-op where there is no glibc.

    Attributions run a forward and backward pass per integrated-gradients step over texts up to
    5,000 characters; glibc keeps the freed arenas, so without this a server's RSS stays at its
    peak (measured: 763 MiB warm, 960 MiB after 20 maximum-length Explain calls and 20 s idle).
    """
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


_LIBC: Any = None


@dataclass
class BatchStats:
    """Micro-batches of one task since start-up: how many, how many requests, the largest.

    Why: whether concurrent visitors really share forward passes depends on everything in front of the
    service (gradio's per-event concurrency, the thread pool); this is where it shows.
    """

    batches: int = 0
    requests: int = 0
    largest: int = 0

    @property
    def mean(self) -> float:
        return self.requests / self.batches if self.batches else 0.0

    def add(self, size: int) -> None:
        self.batches += 1
        self.requests += size
        self.largest = max(self.largest, size)


class ModelService:
    """Masked LM + next-sentence model and sentiment classifier behind one thread-safe API.

    ``loader`` builds a model of a kind from the settings (default: :func:`bertdemo.models.load_for_settings`;
    pass ``shared_models(other)`` to reuse another service's weights); ``batcher_factory`` builds
    the micro-batchers (default :class:`~bertdemo.batching.MicroBatcher`); ``observers`` are
    called with every batch before its forward pass (the benchmark counts padding this way).
    """

    def __init__(self, settings: Settings | None = None, *, loader: ModelLoader | None = None,
                 batcher_factory: BatcherFactory | None = None, observers: Sequence[BatchObserver] = ()) -> None:
        self.settings = settings or load_settings()
        self.loader: ModelLoader = loader or load_for_settings
        self.batcher_factory: BatcherFactory = batcher_factory or MicroBatcher
        self.observers: list[BatchObserver] = list(observers)
        self._lock = threading.Lock()
        self._models: dict[str, LoadedModel] = {}
        self._batchers: dict[str, MicroBatcher] = {}
        self._batch_stats: dict[str, BatchStats] = {}
        # Attributions hold a forward and backward pass per step over texts up to max_chars: one shared
        # limit for every face (tab, chat, API), so concurrent visitors queue instead of multiplying memory.
        self._attribution_slots = threading.BoundedSemaphore(self.settings.attribution_concurrency)
        self._second: ModelService | None = None  # answers with the compare models (see ``for_model``)
        if self.settings.num_threads:
            import torch

            torch.set_num_threads(self.settings.num_threads)

    # ---- models ----------------------------------------------------------------------------
    def model(self, kind: str) -> LoadedModel:
        """The loaded model of ``kind`` (loaded once, on first use, thread-safe)."""
        model = self._models.get(kind)
        if model is not None:
            return model
        with self._lock:
            if kind not in self._models:
                self._models[kind] = self.loader(kind, self.settings)
            return self._models[kind]

    @property
    def mlm(self) -> LoadedModel:
        """The masked-LM + next-sentence model (loaded on first use)."""
        return self.model(KIND_PRETRAINING)

    @property
    def classifier(self) -> LoadedModel:
        """The sentiment classifier (loaded on first use)."""
        return self.model(KIND_CLASSIFIER)

    @property
    def labels(self) -> list[str]:
        return sentiment.labels_of(self.classifier.model.config)

    def warm_up(self, mlm: bool = True, classifier: bool = True) -> None:
        """Load models now (at server start-up) so no visitor waits for it, the compare models too."""
        if mlm:
            self.fill_mask(f"hello {self.mlm.tokenizer.mask_token}.", top_k=1)
        if classifier:
            self.sentiment(["hello"])
        second = self.second()
        if second is not None:
            second.warm_up(mlm=mlm and bool(self.settings.compare_mlm_model),
                           classifier=classifier and bool(self.settings.compare_sentiment_model))

    def close(self) -> None:
        """Stop the batching threads and drop the models, so their memory can be freed."""
        with self._lock:
            for batcher in self._batchers.values():
                batcher.close()
            self._batchers.clear()
            self._models = {}
            second, self._second = self._second, None
        if second is not None:
            second.close()

    # ---- a second model per kind (the Compare tab, chat /compare) ------------------------------
    def compare_source(self, kind: str) -> str:
        """The operator's second checkpoint of ``kind`` ("" when none is configured)."""
        s = self.settings
        return s.compare_mlm_model if kind == KIND_PRETRAINING else s.compare_sentiment_model

    def second(self) -> ModelService | None:
        """The service that answers with the compare models (``None`` when none is configured).

        Made like this one (same loader, batching and observers) from the same settings with the
        compare sources in place of the main ones; a kind without a compare model is this service's
        own model, never loaded twice.
        """
        if not (self.compare_source(KIND_PRETRAINING) or self.compare_source(KIND_CLASSIFIER)):
            return None
        with self._lock:
            if self._second is None:
                def loader(kind: str, settings: Settings) -> LoadedModel:
                    return self.loader(kind, settings) if self.compare_source(kind) else self.model(kind)

                s = self.settings
                settings = s.replace(mlm_model=s.compare_mlm_model or s.mlm_model,
                                     sentiment_model=s.compare_sentiment_model or s.sentiment_model,
                                     compare_mlm_model="", compare_sentiment_model="")
                self._second = ModelService(settings, loader=loader, batcher_factory=self.batcher_factory,
                                            observers=self.observers)
                self._second._attribution_slots = self._attribution_slots  # one limit for both
            return self._second

    def model_names(self, kind: str) -> list[str]:
        """The names a visitor may choose for ``kind``: the main model's, then the compare model's.

        Names are folder names or hub ids (never a path); the second gets " (compare)" when both are alike.
        """
        main = model_label(self.settings.mlm_model if kind == KIND_PRETRAINING else self.settings.sentiment_model)
        source = self.compare_source(kind)
        if not source:
            return [main]
        other = model_label(source)
        return [main, other if other != main else f"{other} (compare)"]

    def for_model(self, kind: str, name: Any) -> ModelService:
        """The service answering with the ``kind`` model called ``name``; any other name (a path) is refused."""
        names = self.model_names(kind)
        if name not in names:
            raise InputError("must be one of the models this server offers: " + ", ".join(names), field="model")
        if name == names[0]:
            return self
        second = self.second()
        assert second is not None  # a second name exists only with a compare source
        return second

    def batch_stats(self) -> dict[str, BatchStats]:
        """Per micro-batcher (``pretraining:mlm_log_probs`` = fill mask, ``pretraining:nsp_probs`` = next sentence,
        ``classifier:class_probs`` = sentiment): a copy of its batch counts."""
        return {key: BatchStats(s.batches, s.requests, s.largest) for key, s in self._batch_stats.items()}

    def describe(self) -> dict[str, Any]:
        """What is loaded (About tab, audit manifest); does not trigger loading."""
        from bertdemo.precision import cpu_flags, flag_summary

        return {
            "settings": {"mlm_model": self.settings.mlm_model, "sentiment_model": self.settings.sentiment_model,
                         "device": self.settings.device, "precision": self.settings.precision},
            "loaded": {kind: m.describe() for kind, m in self._models.items()},
            "cpu_flags": flag_summary(cpu_flags()),  # what precision=auto decided on
        }

    # ---- running a task ----------------------------------------------------------------------
    def run(self, task: Task[R], inputs: Any, progress: Progress | None = None, **params: Any) -> R:
        """Validate, encode, forward and postprocess ``inputs`` with ``task``; the typed result."""
        model = self.model(task.model_kind)
        task.check_model(model)
        inputs, clean = task.sanitize(model, self.settings, inputs, **params)
        items = task.preprocess(model, inputs, clean)
        self._log(task.name, task.log_text(inputs), items=len(items))
        if len(items) == 1 and progress is None and task.micro_batch:
            outputs = [self._batcher(task)(items[0])]
        else:
            outputs = self._bulk(task, model, items, clean, progress)
        return task.postprocess(model, inputs, items, outputs, clean)

    def _bulk(self, task: Task[Any], model: LoadedModel, items: Sequence[Encoded], params: dict[str, Any],
              progress: Progress | None = None) -> list[Any]:
        def forward(batch: list[Encoded]) -> list[Any]:
            for observe in self.observers:
                observe(model, batch)
            return task.forward(model, batch, params, self.settings.pack_batches)

        return run_batched(items, self.settings.batch_size, forward, on_batch=progress)

    def _batcher(self, task: Task[Any]) -> MicroBatcher:
        key = task.batch_key
        batcher = self._batchers.get(key)
        if batcher is None:
            with self._lock:
                batcher = self._batchers.get(key)
                if batcher is None:
                    stats = self._batch_stats.setdefault(key, BatchStats())

                    def fn(items: list[Encoded]) -> list[Any]:
                        stats.add(len(items))  # only this batcher's worker thread writes it
                        return self._bulk(task, self.model(task.model_kind), items, {})

                    batcher = self.batcher_factory(fn, self.settings.batch_size, self.settings.micro_batch_wait_ms,
                                                   name=f"bertdemo-{key}")
                    self._batchers[key] = batcher
        return batcher

    def _log(self, task: str, text: str | None = None, **facts: Any) -> None:
        if self.settings.log_user_text and text is not None:
            log.info("%s text=%r %s", task, text, facts)
        else:
            log.debug("%s %s", task, facts)

    # ---- the named tasks (one line each) -----------------------------------------------------
    def fill_mask(self, text: Any, top_k: Any = 5, targets: list[str] | None = None) -> fill_mask.FillMaskResult:
        """Top-k candidates for each [MASK] in ``text`` (several masks, each predicted independently)."""
        return self.run(FILL_MASK, text, top_k=top_k, targets=targets)

    def mask_distributions(self, texts: Sequence[str], progress: Progress | None = None) -> list[Any]:
        """Full probability rows at the first [MASK] of each text (template probes of the audit)."""
        return self.run(MASK_DISTRIBUTIONS, texts, progress)

    def next_sentence(self, first: Any, second: Any) -> next_sentence.NextSentenceResult:
        """Probability that ``second`` follows ``first`` (BERT's NSP head)."""
        return self.run(NEXT_SENTENCE, (first, second))

    def rank_next(self, first: Any, candidates: Any) -> list[next_sentence.RankedCandidate]:
        """``candidates`` ordered by the probability that each follows ``first``."""
        return self.run(RANK_NEXT, (first, candidates))

    def sentiment(self, texts: Any, progress: Progress | None = None) -> list[sentiment.SentimentResult]:
        """Label, top score and all class probabilities for each text (batched)."""
        return self.run(SENTIMENT, texts, progress)

    def explain_sentiment(self, text: Any, method: str = "integrated_gradients", steps: int = 16) -> attribution.Explanation:
        """The sentiment of ``text`` with per-word attributions toward the predicted label."""
        with self._attribution_slots:
            try:
                return self.run(EXPLAIN, text, method=method, steps=steps)
            finally:
                release_memory()  # the backward passes leave freed arenas glibc would otherwise keep

    def token_logprobs(self, ids_list: Sequence[Sequence[int]], positions_list: Sequence[Sequence[int]],
                       progress: Progress | None = None) -> list[list[float]]:
        """log P(original token) at each given position, masking one position at a time."""
        return self.run(TOKEN_LOGPROBS, (ids_list, positions_list), progress)

    def pseudo_log_likelihood(self, texts: Any, progress: Progress | None = None) -> list[pll.PLLResult]:
        """PLL of each text: sum over its tokens of log P(token | the rest), one mask at a time."""
        return self.run(PSEUDO_LOG_LIKELIHOOD, texts, progress)

    def attention(self, text: Any, pair: Any = None) -> attention.AttentionResult:
        """Attention weights of every layer and head for ``text`` (or the pair ``text``, ``pair``), from the masked LM."""
        return self.run(ATTENTION, (text, pair))

    def tokenize(self, text: Any) -> list[int]:
        """Token ids with [CLS]/[SEP], refusing text longer than the model reads."""
        lm = self.mlm
        return fill_mask.encode_checked(lm.tokenizer, clean_text(text, max_chars=self.settings.max_chars),
                                        lm.max_length).input_ids


def shared_models(other: ModelService) -> ModelLoader:
    """A loader that reuses ``other``'s loaded weights (a second service with other batching settings)."""
    return lambda kind, settings: other.model(kind)


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
