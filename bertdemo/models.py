"""Loading checkpoints: one ``from_pretrained`` path for local folders and hub ids.

Safetensors only, never remote code. Every way a checkpoint can be wrong (missing folder, no
weights, not a BERT, missing heads) becomes a :class:`ModelLoadError` naming the path and what
was expected, so an operator sees it at start-up rather than as a traceback on the first request.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertdemo.atomic import sha256_files
from bertdemo.errors import ModelLoadError

log = logging.getLogger(__name__)

KIND_PRETRAINING = "pretraining"  # masked LM + next-sentence heads (BertForPreTraining)
KIND_CLASSIFIER = "classifier"  # BertForSequenceClassification


@dataclass
class LoadedModel:
    """A model, its tokenizer, and the facts the UI and reports show about it."""

    model: Any
    tokenizer: Any
    name: str
    kind: str
    device: str
    precision: str
    num_parameters: int
    max_length: int
    has_nsp: bool = True
    grad_model: Any = None  # fp32 copy for gradient-based attributions when serving int8 or CPU bf16
    weights_sha256: str = ""
    precision_reason: str = ""  # why this precision (``auto``'s decision, or the operator's choice)
    info: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary (About tab, audit manifest, bench)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "device": self.device,
            "precision": self.precision,
            "precision_reason": self.precision_reason,
            "parameters": self.num_parameters,
            "max_length": self.max_length,
            "has_nsp_head": self.has_nsp,
            "weights_sha256": self.weights_sha256,
            **self.info,
        }


def resolve_device(device: str) -> str:
    """``auto`` picks CUDA when present, else the CPU."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} was requested but CUDA is not available here")
    return device


def _looks_like_path(source: str) -> bool:
    return source.startswith((".", "/", "~")) or Path(source).expanduser().exists() or "\\" in source


def model_label(source: str) -> str:
    """What visitors see for a checkpoint: a local folder's name (never its path), or the hub id."""
    return Path(source).expanduser().name if _looks_like_path(source) else source


def _check_local_folder(path: Path, expected: str) -> None:
    if not path.exists():
        raise ModelLoadError(f"model folder not found: {path} (expected {expected})")
    if not path.is_dir():
        raise ModelLoadError(f"model path is not a folder: {path} (expected {expected})")
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{path} has no config.json (expected {expected})")
    if not any(path.glob("*.safetensors")):
        raise ModelLoadError(
            f"{path} has no .safetensors weights (expected {expected}; only safetensors are loaded)"
        )
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"{path}/config.json is not valid JSON ({err})") from None
    if config.get("model_type") != "bert":
        raise ModelLoadError(
            f"{path} holds a {config.get('model_type')!r} model (expected {expected})"
        )


def weights_sha256(path: Path) -> str:
    """Hash of the weight files, so reports can name exactly which weights were audited."""
    return sha256_files(sorted(path.glob("*.safetensors")))


def quantize_int8(model: Any) -> Any:
    """Dynamic int8 quantization of Linear layers for CPU serving (opt-in: precision=int8).

    Kept behind this one function because torch.ao.quantization is deprecated upstream.
    """
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def _fp32_inputs(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Forward pre-hook: floating-point inputs of an fp32 head are cast to fp32 (they come from a bf16 body)."""
    import torch

    def up(x: Any) -> Any:
        return x.float() if isinstance(x, torch.Tensor) and x.is_floating_point() else x

    return tuple(up(a) for a in args), {k: up(v) for k, v in kwargs.items()}


def to_cpu_bf16(model: Any) -> Any:
    """bf16 weights for the embeddings and the encoder (where the FLOPs are); the heads stay fp32.

    Why bf16 weights rather than ``torch.autocast``: measured on bert-base, 2 threads, avx512_bf16, they were
    faster at every batch size (1x16 tokens: 22 ms vs autocast 30 ms vs fp32 46 ms; 16x32: 241 vs 253 vs
    498 ms), because autocast re-casts every weight on every forward. The pooler and the task heads (MLM
    vocabulary projection, NSP, classifier) run on a few positions only, so keeping them fp32 costs little
    and keeps the logits, and the softmax over them, in fp32.
    """
    import torch

    decoder = getattr(getattr(getattr(model, "cls", None), "predictions", None), "decoder", None)
    if decoder is not None:  # tied to the word embeddings, which turn bf16: the head keeps its own fp32 copy
        decoder.weight = torch.nn.Parameter(decoder.weight.detach().clone(), requires_grad=False)
    bert = model.bert
    bert.embeddings.to(torch.bfloat16)
    bert.encoder.to(torch.bfloat16)
    # the hooks sit on the modules the tasks call (bertdemo.tasks.forward calls cls.predictions directly)
    heads = [getattr(bert, "pooler", None), getattr(model, "classifier", None),
             *(getattr(model, "cls", None) or torch.nn.Module()).children()]
    for head in heads:
        if head is not None:
            head.register_forward_pre_hook(_fp32_inputs, with_kwargs=True)
    return model


def _apply_precision(model: Any, precision: str, device: str) -> Any:
    import torch

    if precision == "int8":
        if device != "cpu":
            raise ModelLoadError("precision int8 is a CPU mode; use fp16 or bf16 on CUDA")
        return quantize_int8(model)
    if precision == "bf16" and device == "cpu":
        return to_cpu_bf16(model)
    if precision in {"fp16", "bf16"}:
        if device == "cpu":
            raise ModelLoadError("precision fp16 needs CUDA; use fp32, bf16 or int8 on the CPU")
        return model.to(torch.float16 if precision == "fp16" else torch.bfloat16)
    return model


def load_model(source: str, kind: str, device: str = "auto", precision: str = "fp32",
               qualification: str | Path = "") -> LoadedModel:
    """Load a checkpoint of ``kind`` from a local folder or a hub id, ready for inference.

    ``precision="auto"`` is resolved here, once the weights' hash is known
    (:func:`bertdemo.precision.decide_precision`, reading the ``qualification`` file, default
    ``assets/models/precision.json``).
    """
    import copy

    import torch
    from transformers import AutoTokenizer, BertForPreTraining, BertForSequenceClassification

    from bertdemo import precision as prec

    expected = (
        "a BERT checkpoint with masked-LM and next-sentence heads (BertForPreTraining)"
        if kind == KIND_PRETRAINING
        else "a BERT sequence-classification checkpoint (BertForSequenceClassification)"
    )
    local = _looks_like_path(source)
    path = Path(source).expanduser()
    if local:
        _check_local_folder(path, expected)
    cls = BertForPreTraining if kind == KIND_PRETRAINING else BertForSequenceClassification
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path) if local else source, trust_remote_code=False)
        model, loading_info = cls.from_pretrained(
            str(path) if local else source,
            use_safetensors=True,
            trust_remote_code=False,
            output_loading_info=True,
            dtype=torch.float32,  # weights may be stored in half precision; compute starts from fp32
        )
    except ModelLoadError:
        raise
    except Exception as err:  # transformers raises OSError/ValueError/... with long messages
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(f"could not load {source} as {expected}: {first_line}") from None
    if getattr(model.config, "model_type", None) != "bert":
        raise ModelLoadError(f"{source} is a {model.config.model_type!r} model (expected {expected})")
    missing = list(loading_info.get("missing_keys", []))
    has_nsp = True
    if kind == KIND_PRETRAINING:
        if any(k.startswith("cls.predictions") for k in missing):
            raise ModelLoadError(f"{source} has no masked-LM head (expected {expected})")
        has_nsp = not any(k.startswith("cls.seq_relationship") for k in missing)
        if not has_nsp:
            log.warning("%s has no next-sentence head; next-sentence features are disabled", source)
    elif any(k.startswith("classifier") for k in missing):
        raise ModelLoadError(f"{source} has no trained classification head (expected {expected})")
    if tokenizer.mask_token is None or tokenizer.cls_token is None:
        raise ModelLoadError(f"{source}: tokenizer has no [MASK]/[CLS] tokens (expected {expected})")

    resolved = resolve_device(device)
    num_parameters = int(sum(p.numel() for p in model.parameters()))
    model.eval()
    model.to(resolved)
    sha = weights_sha256(path) if local else ""
    choice = prec.decide_precision(precision, resolved, kind, sha, prec.cpu_flags() if precision == "auto" else {},
                                   prec.read_qualification(qualification or prec.QUALIFICATION_FILE)
                                   if precision == "auto" else None)
    precision = choice.precision
    # attributions need gradients in fp32: int8 has none, bf16's are too coarse (only the classifier explains)
    cpu_bf16 = precision == "bf16" and resolved == "cpu"
    fp32_model = copy.deepcopy(model) if cpu_bf16 and kind == KIND_CLASSIFIER else model
    model = _apply_precision(model, precision, resolved)
    limit = int(getattr(model.config, "max_position_embeddings", 512))
    tok_limit = getattr(tokenizer, "model_max_length", limit) or limit
    max_length = int(min(limit, tok_limit if tok_limit < 10**6 else limit))
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        name=source,
        kind=kind,
        device=resolved,
        precision=precision,
        num_parameters=num_parameters,
        max_length=max_length,
        has_nsp=has_nsp,
        grad_model=fp32_model if precision == "int8" or cpu_bf16 else model,
        weights_sha256=sha,
        precision_reason=choice.reason,
        info={"source": "local folder" if local else "Hugging Face hub", "torch_threads": torch.get_num_threads()},
    )


def load_for_settings(kind: str, settings: Any) -> LoadedModel:
    """The service's default loader: the checkpoint ``settings`` name for ``kind``."""
    source = settings.mlm_model if kind == KIND_PRETRAINING else settings.sentiment_model
    return load_model(source, kind, settings.device, settings.precision, settings.precision_qualification)
