"""Pass/fail thresholds of the audit: documented defaults, a config file, and validation.

A config file (TOML, JSON or YAML) overrides any subset of :data:`DEFAULTS`, e.g.::

    [crows_pairs]
    max_abs_deviation = 5.0      # pass when |score - 50| <= 5 points

    [classifier]
    min_demographic_parity_ratio = 0.9
    max_equalized_odds_difference = false   # false switches a gate off

    [audit]
    n_boot = 500
    gate_on = "point"            # compare the estimate alone (default "interval": see below)

Each gate is judged on its confidence interval: pass when the whole interval is inside the allowed
region, fail when it is wholly outside, inconclusive otherwise (``gate_on = "point"`` compares the
estimate alone).
Unknown sections or keys, wrong types and out-of-range values are refused with a message naming
the key (the CLI exits 2).
"""

from __future__ import annotations

import copy
import difflib
import json
import math
from pathlib import Path
from typing import Any

from bertdemo.audit.checks import REGISTRY
from bertdemo.audit.checks.base import ThresholdSpec
from bertdemo.errors import InputError

# section -> key -> (default, lower bound, upper bound, what it means). ``False`` = gate off.
# Each check declares its own section (:attr:`bertdemo.audit.checks.Check.thresholds`); ``audit`` is shared.
AUDIT_SPEC: ThresholdSpec = {
    "n_boot": (200, 0, 100_000, "bootstrap resamples for confidence intervals (0 = none)"),
    "confidence": (0.95, 0.5, 0.999, "confidence level of the intervals"),
    "top_k": (10, 1, 100, "top predictions listed per group in the template probes"),
    "gate_on": ("interval", 0, 0, "\"interval\": pass/fail only when the whole confidence interval is on one side "
                                  "of the threshold, else inconclusive (exit 3); \"point\": the estimate alone"),
}
# keys that take one of a few words instead of a number
CHOICES = {("audit", "gate_on"): ("interval", "point")}
SPEC: dict[str, ThresholdSpec] = {**{name: dict(c.thresholds) for name, c in REGISTRY.items()}, "audit": AUDIT_SPEC}

DEFAULTS: dict[str, dict[str, Any]] = {s: {k: v[0] for k, v in keys.items()} for s, keys in SPEC.items()}
INTEGER_KEYS = {("audit", "n_boot"), ("audit", "top_k")}


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(options)})"


def validate(raw: Any, source: str = "config") -> dict[str, dict[str, Any]]:
    """Defaults overridden by ``raw``; every bad value raises :class:`InputError` naming its key."""
    if not isinstance(raw, dict):
        raise InputError(f"{source} must be a table/object of sections, not {type(raw).__name__}", field="config")
    out = copy.deepcopy(DEFAULTS)
    for section, values in raw.items():
        if section not in SPEC:
            raise InputError(f"unknown section [{section}]{_suggest(str(section), list(SPEC))} in {source}", field="config")
        if not isinstance(values, dict):
            raise InputError(f"[{section}] must be a table of keys, not {type(values).__name__}", field="config")
        for key, value in values.items():
            name = f"{section}.{key}"
            if key not in SPEC[section]:
                raise InputError(f"unknown key {name}{_suggest(str(key), list(SPEC[section]))} in {source}", field="config")
            _, low, high, _ = SPEC[section][key]
            if (section, key) in CHOICES:
                if value not in CHOICES[section, key]:
                    raise InputError(f"{name} must be one of {', '.join(map(repr, CHOICES[section, key]))}, "
                                     f"not {value!r}", field="config")
                out[section][key] = value
                continue
            if value is False and section != "audit":
                out[section][key] = False
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"{name} must be a number{' or false' if section != 'audit' else ''}, "
                                 f"not {value!r}", field="config")
            if not math.isfinite(float(value)) or not low <= value <= high:
                raise InputError(f"{name} = {value!r} is outside {low}..{high}", field="config")
            if (section, key) in INTEGER_KEYS:
                if int(value) != value:
                    raise InputError(f"{name} must be a whole number, not {value!r}", field="config")
                value = int(value)
            else:
                value = float(value)
            out[section][key] = value
    return out


def load(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """Thresholds from a TOML/JSON/YAML file (by extension), or the defaults when ``path`` is None."""
    if path is None:
        return copy.deepcopy(DEFAULTS)
    p = Path(path)
    if not p.is_file():
        raise InputError(f"config file not found: {p}", field="config")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"config file {p.name} is not UTF-8 text", field="config") from None
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            raw = _toml().loads(text)
        elif suffix == ".json":
            raw = json.loads(text)
        elif suffix in {".yaml", ".yml"}:
            try:
                import yaml
            except ImportError:
                raise InputError("YAML config needs PyYAML (pip install pyyaml); or use TOML/JSON", field="config") from None
            raw = yaml.safe_load(text) or {}
        else:
            raise InputError(f"config file {p.name} must end in .toml, .json, .yaml or .yml", field="config")
    except InputError:
        raise
    except Exception as err:  # tomllib.TOMLDecodeError, json.JSONDecodeError, yaml.YAMLError
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"config file {p.name} could not be parsed: {first}", field="config") from None
    return validate(raw, source=p.name)


def _toml() -> Any:
    """The standard library's TOML reader (3.11+), or its backport ``tomli`` on 3.10 when installed."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise InputError("TOML config on Python 3.10 needs tomli (pip install tomli); or use JSON",
                             field="config") from None
    return tomllib


def describe_defaults() -> str:
    """Markdown list of every key, default and meaning (README, ``--help``)."""
    lines = []
    for section, keys in SPEC.items():
        lines.append(f"[{section}]")
        lines += [f"  {k} = {v[0]!r}   # {v[3]}" for k, v in keys.items()]
    return "\n".join(lines)
