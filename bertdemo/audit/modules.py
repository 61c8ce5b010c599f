"""Shared by the ``evaluate`` modules in ``bertdemo/audit/measurements``: which model service to use.

Each module's ``compute`` accepts ``service=`` (a :class:`ModelService`), or ``model=`` /
``sentiment_model=`` (folder or hub id); with neither, the bundled models (or ``BERTDEMO_*``).
Services are cached per model pair so repeated calls do not reload weights.
"""

from __future__ import annotations

import threading
from typing import Any

_cache: dict[tuple[str | None, str | None], Any] = {}
_lock = threading.Lock()


def service_for(service: Any = None, model: str | None = None, sentiment_model: str | None = None) -> Any:
    if service is not None:
        return service
    from bertdemo.config import load_settings
    from bertdemo.service import ModelService

    key = (model, sentiment_model)
    with _lock:
        if key not in _cache:
            _cache[key] = ModelService(load_settings(mlm_model=model, sentiment_model=sentiment_model))
        return _cache[key]


def measurement_info(description: str, citation: str, inputs_description: str, features: dict[str, str]) -> Any:
    """The ``evaluate.MeasurementInfo`` of a measurement whose inputs are plain columns (name -> dtype)."""
    import datasets
    import evaluate

    return evaluate.MeasurementInfo(
        module_type="measurement",
        description=description,
        citation=citation,
        inputs_description=inputs_description,
        features=datasets.Features({name: datasets.Value(dtype) for name, dtype in features.items()}),
    )
