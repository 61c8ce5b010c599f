"""What every task is: declared inputs and outputs, and sanitize -> preprocess -> forward -> postprocess.

The shape is transformers' ``Pipeline`` (the service, like the pipeline base class, owns batching,
devices and progress; a task only turns inputs into :class:`Encoded` items and model outputs into a
typed result) with LIT's declared ``input_spec`` / ``output_spec``, so a face can list what a task
takes and returns without reading its code. Adding a task is one module with one subclass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar, Generic, TypeVar

from bertdemo.batching import Encoded
from bertdemo.errors import ModelLoadError

R = TypeVar("R")


def plain(value: Any) -> Any:
    """``value`` with every :class:`Result` turned into its dict (JSON output, Gradio payloads)."""
    if isinstance(value, Result):
        return value.to_dict()
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


class Result:
    """Base of the typed results (dataclasses): attributes for code, ``to_dict()`` for JSON.

    ``result["key"]`` reads the same dict, read-only, so scripts written when the service returned
    plain dicts keep working; new code uses the attributes.
    """

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    def keys(self) -> Iterator[str]:
        return iter(self.to_dict())


def spec(**fields: str) -> Mapping[str, str]:
    """A declared input or output: field name -> type and range in words (read-only)."""
    return MappingProxyType(fields)


Forward = Callable[[Any, Sequence[Encoded], bool], list[Any]]  # (loaded model, items, pack) -> one output per item


class Task(Generic[R]):
    """One capability of the service. Subclasses set the class attributes and the four steps.

    ``sanitize`` validates and normalizes (raising :class:`~bertdemo.errors.InputError`) and returns
    the cleaned inputs and params; ``preprocess`` encodes them; the service runs ``forward`` in
    length-sorted minibatches (or through the micro-batcher, for a lone request of a task with
    ``micro_batch``); ``postprocess`` builds the result.
    """

    name: ClassVar[str]
    model_kind: ClassVar[str]
    input_spec: ClassVar[Mapping[str, str]]
    output_spec: ClassVar[Mapping[str, str]]
    forward_fn: ClassVar[Forward]
    micro_batch: ClassVar[bool] = False  # a lone request may share a forward with concurrent ones
    needs_nsp: ClassVar[bool] = False

    def check_model(self, model: Any) -> None:
        if self.needs_nsp and not model.has_nsp:
            raise ModelLoadError(f"{model.name} has no next-sentence head; next-sentence prediction is unavailable")

    def sanitize(self, model: Any, settings: Any, inputs: Any, **params: Any) -> tuple[Any, dict[str, Any]]:
        raise NotImplementedError

    def preprocess(self, model: Any, inputs: Any, params: dict[str, Any]) -> list[Encoded]:
        raise NotImplementedError

    def forward(self, model: Any, items: Sequence[Encoded], params: dict[str, Any], pack: bool) -> list[Any]:
        """One output per item; the default calls the task's ``forward_fn`` (see :mod:`bertdemo.tasks.forward`)."""
        return type(self).forward_fn(model, items, pack)

    def postprocess(self, model: Any, inputs: Any, items: list[Encoded], outputs: list[Any], params: dict[str, Any]) -> R:
        raise NotImplementedError

    def log_text(self, inputs: Any) -> str | None:
        """The user text to log when the operator allows it (never by default)."""
        return inputs if isinstance(inputs, str) else None

    @property
    def batch_key(self) -> str:
        """Requests of tasks with the same model and forward share a micro-batcher."""
        return f"{self.model_kind}:{type(self).forward_fn.__name__}"
