"""Which numeric precision the models run in, and why: ``precision = "auto"`` and CPU bf16.

Why: on CPUs with native bf16 matrix units (``avx512_bf16``, AMX ``amx_bf16``) a BERT forward in bf16
runs about twice as fast as in fp32 (measured: bert-base, 1x16 tokens, 2 threads, AMD EPYC with
avx512_bf16: 46 ms fp32, 30 ms under autocast, 22 ms with bf16 weights), but bf16 keeps only ~3 significant
digits, so answers can change. ``auto`` therefore picks bf16 only when both hold:

- the CPU has native bf16 matrix support (without it bf16 is emulated and slower than fp32), and
- the configured checkpoint is one whose bf16 answers were measured against fp32 and qualified
  (``assets/models/precision.json``, written by ``bertdemo qualify-precision``), matched by the
  sha256 of its weights, so a replaced model never inherits another model's verdict.

Everything else gets fp32, with the reason, which the About tab shows.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bertdemo.config import MODELS_DIR

QUALIFICATION_FILE = MODELS_DIR / "precision.json"
BF16_MATRIX_FLAGS = ("amx_bf16", "avx512_bf16")  # either one: native bf16 dot products
REPORTED_FLAGS = ("amx_bf16", "amx_tile", "amx_int8", "avx512_bf16", "avx512_vnni", "avx512f")
# The qualification rule (issue 15): at least this top-1 agreement with fp32 on every task, and no
# disagreement on an item where fp32's top-1/top-2 probability margin is above MAX_FLIP_MARGIN.
MIN_AGREEMENT = 0.99
MAX_FLIP_MARGIN = 0.05


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision a model runs in, what was asked for, and why (shown on the About tab)."""

    precision: str
    requested: str
    reason: str


@functools.cache
def cpu_flags() -> dict[str, bool]:
    """The CPU flags that matter for bf16/int8 speed, from ``/proc/cpuinfo`` (Linux) or torch's own checks.

    Cached: the CPU does not change while the process runs, and the About tab asks on every render.
    """
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    out = {name: name in flags for name in REPORTED_FLAGS}
    try:  # torch's cpuinfo check, where /proc/cpuinfo is unavailable (macOS, containers that hide it)
        import torch

        out["avx512_bf16"] = out["avx512_bf16"] or bool(torch.cpu._is_avx512_bf16_supported())
        out["amx_tile"] = out["amx_tile"] or bool(torch.cpu._is_amx_tile_supported())
    except (ImportError, AttributeError):
        pass
    return out


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), recorded beside every figure measured on it."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def native_bf16(flags: dict[str, bool]) -> bool:
    """True if the CPU computes bf16 dot products natively (``amx_bf16`` or ``avx512_bf16``)."""
    return any(flags.get(name, False) for name in BF16_MATRIX_FLAGS)


def flag_summary(flags: dict[str, bool]) -> str:
    """``"avx512_bf16 avx512_vnni, no amx_bf16"``: what the CPU has of the flags that matter, for reports."""
    has = [n for n in REPORTED_FLAGS if flags.get(n)]
    lacks = [n for n in ("amx_bf16", "avx512_bf16", "avx512_vnni") if not flags.get(n)]
    return " ".join(has) + (f", no {' '.join(lacks)}" if lacks else "") if has else "none of " + " ".join(REPORTED_FLAGS)


def read_qualification(path: Path | str = QUALIFICATION_FILE) -> dict[str, Any] | None:
    """The committed qualification record, or ``None`` if there is none (or it cannot be read)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def decide_precision(requested: str, device: str, kind: str, weights_sha256: str,
                     flags: dict[str, bool], qualification: dict[str, Any] | None) -> PrecisionChoice:
    """Resolve ``requested`` (``auto`` or an explicit precision) for one model of ``kind`` on ``device``.

    Explicit values are kept as they are (the operator chose). ``auto``: bf16 only on a CPU with native bf16
    and only for weights the qualification file lists as eligible; fp32 otherwise, saying which condition failed.
    """
    if requested != "auto":
        return PrecisionChoice(requested, requested, f"asked for by name (precision={requested}), not chosen by auto")
    if device != "cpu":
        return PrecisionChoice("fp32", requested, f"auto: fp32 on {device} (bf16/fp16 on GPUs are opt-in)")
    if not native_bf16(flags):
        return PrecisionChoice("fp32", requested, "auto: fp32, this CPU has no native bf16 matrix support "
                                                  "(neither amx_bf16 nor avx512_bf16)")
    if qualification is None:
        return PrecisionChoice("fp32", requested, "auto: fp32, no bf16 qualification file "
                                                  f"({QUALIFICATION_FILE.name}; run bertdemo qualify-precision)")
    entry = (qualification.get("models") or {}).get(kind) or {}
    if not weights_sha256 or entry.get("weights_sha256") != weights_sha256:
        return PrecisionChoice("fp32", requested, "auto: fp32, bf16 was not qualified for these weights "
                                                  f"(sha256 {weights_sha256[:12] or 'unknown'} is not the qualified "
                                                  f"{str(entry.get('weights_sha256', 'none'))[:12]})")
    if not entry.get("eligible"):
        return PrecisionChoice("fp32", requested, f"auto: fp32, bf16 did not qualify on these weights: "
                                                  f"{entry.get('why', 'see ' + QUALIFICATION_FILE.name)}")
    agreement = ", ".join(f"{t} {100 * r['agreement']:.1f} %" for t, r in (entry.get("tasks") or {}).items())
    return PrecisionChoice("bf16", requested, f"auto: bf16, this CPU has native bf16 "
                                              f"({'amx_bf16' if flags.get('amx_bf16') else 'avx512_bf16'}) and these "
                                              f"weights qualified (top-1 agreement with fp32: {agreement})")


def judge(tasks: dict[str, dict[str, Any]]) -> tuple[bool, str]:
    """Apply the qualification rule to measured tasks; (eligible, why) in words."""
    failed = []
    for name, r in tasks.items():
        if r["agreement"] < MIN_AGREEMENT:
            failed.append(f"{name} agreement {100 * r['agreement']:.2f} % < {100 * MIN_AGREEMENT:.0f} %")
        wide = [d for d in r["disagreements"] if d["fp32_margin"] > MAX_FLIP_MARGIN]
        if wide:
            failed.append(f"{name}: {len(wide)} disagreement(s) where fp32's margin > {MAX_FLIP_MARGIN} "
                          f"(largest {max(d['fp32_margin'] for d in wide):.3f})")
    if failed:
        return False, "; ".join(failed)
    return True, (f"every task agrees >= {100 * MIN_AGREEMENT:.0f} % and no disagreement has fp32 margin > "
                  f"{MAX_FLIP_MARGIN}")
