"""All configuration in one place: defaults, environment variables, and CLI flags that map to them.

Precedence: explicit argument (CLI flag) > environment variable > default. Defaults work offline:
they point at the checkpoints bundled in ``assets/models``.
Importing this module also sets the offline-friendly environment (no analytics, no telemetry,
quiet loading) before transformers or gradio are imported anywhere.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = PROJECT_ROOT / "assets"
MODELS_DIR = ASSETS_DIR / "models"
DEFAULT_MLM_MODEL = str(MODELS_DIR / "bertdemo-mlm")
DEFAULT_SENTIMENT_MODEL = str(MODELS_DIR / "bertdemo-sentiment")

# Set before transformers / gradio / evaluate are imported (bertdemo/__init__ imports this module).
_QUIET_ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "HF_EVALUATE_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "DO_NOT_TRACK": "1",
}


def apply_environment() -> None:
    """Set the quiet/offline defaults without overriding what the operator set explicitly."""
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)


apply_environment()


def _env_bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Operator settings. Visitors of the app can never change these (e.g. which model loads)."""

    mlm_model: str = DEFAULT_MLM_MODEL  # BertForPreTraining-style: MLM + NSP heads
    sentiment_model: str = DEFAULT_SENTIMENT_MODEL  # BertForSequenceClassification
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # auto (bf16 on a CPU with native bf16 for qualified weights, else fp32; bertdemo.precision) | fp32 |
    # int8 (CPU dynamic quantization) | bf16 (CPU: bf16 encoder, fp32 heads; CUDA: all bf16) | fp16 (CUDA)
    precision: str = "auto"
    precision_qualification: str = ""  # the bf16 qualification record "auto" reads ("" = assets/models/precision.json)
    batch_size: int = 32  # forward minibatch size for batched calls
    num_threads: int = 0  # 0 = leave torch's default
    max_masks: int = 5  # most [MASK] tokens served in one sentence
    max_top_k: int = 50
    max_candidates: int = 50  # most next-sentence candidates ranked in one call
    max_chars: int = 5000  # texts longer than this are refused before tokenizing
    max_batch_texts: int = 1000  # most texts in one sentiment call
    attention_max_tokens: int = 64  # longest input (tokens, with [CLS]/[SEP]) the attention view reads
    micro_batch_wait_ms: float = 2.0  # how long the service waits to group concurrent requests
    pack_batches: bool = True  # pack short inputs of mixed lengths into shared rows (less padding)
    log_user_text: bool = False  # privacy: user text is never logged unless the operator opts in
    max_upload_bytes: int = 5_000_000
    max_upload_rows: int = 20_000  # the one row limit of an uploaded CSV (scored in chunks of max_batch_texts)
    max_request_bytes: int = 8_000_000  # any HTTP request body over this is refused (413) before it is read
    max_json_values: int = 100_000  # a JSON request body holding more values is refused (413) before parsing
    file_ttl_s: int = 3600  # uploads/results of callers that never close a page are deleted this long after writing
    attribution_concurrency: int = 1  # attribution (Explain) computations at once, all endpoints together
    # Audits in the app (tab, chat /audit, API), checked before an audit is queued:
    audit_max_group_columns: int = 20  # group columns one audit of a visitor's CSV may compare
    audit_max_work: int = 10_000  # work units: sample size per benchmark check + rows x group columns
    audit_max_waiting: int = 4  # audits waiting for their turn, all visitors together (one runs at a time)
    audit_per_address: int = 1  # audits waiting or running per client address; 0 = no per-address limit
    max_pending_per_address: int = 16  # requests of any kind waiting or running per client address; 0 = no limit
    # visitor sessions gradio keeps in memory (least recently used dropped first); each holds the config of every
    # component, about 280 KiB here, and an API call without a session_hash opens a new one every time
    max_sessions: int = 1000
    monitoring: bool = False  # gradio's /monitoring pages (their summary would be public)
    mcp: bool = False  # serve the agents' tools over MCP at /gradio_api/mcp/ (bertdemo.ui.tools)
    host: str = "127.0.0.1"
    port: int = 7860
    queue_concurrency: int = 2  # requests run at once per event (attention, explain, CSV, chat, ranking...)
    # fill mask, next sentence and sentiment: requests let through at once per event, so that concurrent
    # visitors reach the micro-batcher together and share one forward pass (at 2 the batch never exceeds 2)
    fast_concurrency: int = 16
    queue_max_size: int = 64
    output_dir: str = ""  # where the app writes reports for download; "" = a private temp dir
    audit_baseline: str = ""  # a report.json the Bias audit tab compares with by default ("" = none)
    # Compare models: a second checkpoint per kind, shown beside the first ("" = the Compare tab is hidden)
    compare_mlm_model: str = ""  # a second masked LM (+ next-sentence head), beside mlm_model
    compare_sentiment_model: str = ""  # a second classifier, beside sentiment_model
    audit_reports: str = ""  # folder of `bertdemo audit --out` reports; a model's numbers come from the one of its weights

    def replace(self, **changes: Any) -> Settings:
        """A copy with the given fields changed; ``None`` values are ignored (unset CLI flags)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


PRECISIONS = ("auto", "fp32", "bf16", "int8", "fp16")

# field name -> environment variable; one table, so the README and --help can list them.
ENV_VARS: dict[str, str] = {f.name: f"BERTDEMO_{f.name.upper()}" for f in dataclasses.fields(Settings)}
# Gradio's own names, read when the BERTDEMO_* one is unset: Gradio users and Spaces set these.
GRADIO_ENV_VARS: dict[str, str] = {"host": "GRADIO_SERVER_NAME", "port": "GRADIO_SERVER_PORT", "mcp": "GRADIO_MCP_SERVER"}


def _coerce(value: str, kind: Any) -> Any:
    if kind in (bool, "bool"):
        return _env_bool(value)
    if kind in (int, "int"):
        return int(value)
    if kind in (float, "float"):
        return float(value)
    return value


def load_settings(env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Defaults, then ``BERTDEMO_*`` environment variables, then explicit overrides."""
    from bertdemo.errors import InputError

    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        name = ENV_VARS[f.name]
        if not env.get(name) and env.get(GRADIO_ENV_VARS.get(f.name, "")):
            name = GRADIO_ENV_VARS[f.name]
        raw = env.get(name)
        if raw is None or raw == "":
            continue
        try:
            values[f.name] = _coerce(raw, f.type)
        except ValueError:
            raise InputError(f"cannot read {raw!r} as {f.type}", field=name) from None
    settings = Settings(**values).replace(**overrides)
    validate_settings(settings)
    return settings


def validate_settings(s: Settings) -> None:
    """Refuse settings that would make the service misbehave, naming the setting."""
    from bertdemo.errors import InputError

    if s.device != "auto" and s.device != "cpu" and not s.device.startswith("cuda"):
        raise InputError("must be auto, cpu, cuda or cuda:N", field="device")
    if s.precision not in PRECISIONS:
        raise InputError("must be one of " + ", ".join(PRECISIONS), field="precision")
    for name in ("batch_size", "max_masks", "max_top_k", "max_candidates", "max_chars",
                 "max_batch_texts", "queue_concurrency", "fast_concurrency", "queue_max_size", "max_upload_rows",
                 "max_upload_bytes", "audit_max_group_columns", "audit_max_work", "audit_max_waiting",
                 "file_ttl_s", "attribution_concurrency", "max_json_values", "max_sessions"):
        if getattr(s, name) < 1:
            raise InputError("must be at least 1", field=name)
    if s.max_request_bytes <= s.max_upload_bytes:
        raise InputError(f"must be larger than max_upload_bytes ({s.max_upload_bytes}): an upload is one request",
                         field="max_request_bytes")
    if s.attention_max_tokens < 3:
        raise InputError("must be at least 3 ([CLS], one token, [SEP])", field="attention_max_tokens")
    if s.max_pending_per_address < 0:
        raise InputError("must be 0 (no per-address limit) or a positive number", field="max_pending_per_address")
    if s.audit_per_address < 0:
        raise InputError("must be 0 (no per-address limit) or a positive number", field="audit_per_address")
    if s.num_threads < 0:
        raise InputError("must be 0 (default) or a positive number", field="num_threads")
    if s.micro_batch_wait_ms < 0:
        raise InputError("must be >= 0", field="micro_batch_wait_ms")
    if s.audit_reports and not Path(s.audit_reports).expanduser().is_dir():
        raise InputError("must be a folder of audit reports (what `bertdemo audit --out` writes)", field="audit_reports")


