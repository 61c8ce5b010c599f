"""The task protocol: declared specs, ``ModelService.run``, typed results, and the injected seams."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from bertdemo import service as service_module
from bertdemo.service import ModelService, shared_models
from bertdemo.tasks.base import Result, Task, plain
from bertdemo.tasks.fill_mask import Candidate, FillMaskResult
from bertdemo.tasks.sentiment import SentimentResult

TASKS = [v for v in vars(service_module).values() if isinstance(v, Task)]


def test_every_task_declares_its_specs() -> None:
    assert {t.name for t in TASKS} >= {"fill_mask", "next_sentence", "rank_next", "sentiment", "explain_sentiment",
                                       "mask_distributions", "token_logprobs", "pseudo_log_likelihood"}
    for task in TASKS:
        assert task.model_kind in {"pretraining", "classifier"}, task.name
        assert task.input_spec and task.output_spec, task.name
        with pytest.raises(TypeError):
            task.input_spec["x"] = "y"  # type: ignore[index]  # read-only declarations


def test_run_is_the_named_method(service: ModelService) -> None:
    text = "paris is the [MASK] of france."
    via_run = service.run(service_module.FILL_MASK, text, top_k=3)
    assert via_run == service.fill_mask(text, top_k=3)
    assert service.run(service_module.SENTIMENT, ["i loved it"]) == service.sentiment(["i loved it"])


def test_results_are_typed_and_convert_to_the_documented_json(service: ModelService) -> None:
    res = service.fill_mask("paris is the [MASK] of france.", top_k=2)
    assert isinstance(res, FillMaskResult) and isinstance(res.predictions[0][0], Candidate)
    assert res.top_tokens == [res.predictions[0][0].token]
    d = json.loads(json.dumps(plain(res)))
    assert set(d) == {"text", "predictions", "filled"}
    assert set(d["predictions"][0][0]) == {"token", "token_id", "score", "sequence"}
    assert res["predictions"][0][0]["token"] == res.predictions[0][0].token  # the dict-era reading still works
    (s,) = service.sentiment(["i loved it"])
    assert isinstance(s, SentimentResult) and isinstance(s, Result)
    assert set(s.to_dict()) == {"label", "score", "scores", "truncated"}


def test_loader_and_batcher_are_injected(settings: Any, service: ModelService) -> None:
    from bertdemo.batching import MicroBatcher

    made: list[str] = []

    class Recording(MicroBatcher):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            made.append(kwargs["name"])
            super().__init__(*args, **kwargs)

    seen: list[int] = []
    svc = ModelService(settings, loader=shared_models(service), batcher_factory=Recording,
                       observers=[lambda model, items: seen.append(len(items))])
    try:
        assert svc.mlm is service.mlm  # the same weights, loaded once
        threads = [threading.Thread(target=svc.fill_mask, args=("the [MASK] is blue.",)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        svc.sentiment(["a", "b", "c"])  # bulk: no micro-batcher
        assert made == ["bertdemo-pretraining:mlm_log_probs"]
        assert sum(seen) == 3 + 3
    finally:
        svc.close()
