"""Small statistics shared by the checks: Wilson intervals, seeded bootstrap, seeded sampling."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

Z_95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a proportion, in percent (0..100). ``(nan, nan)`` when ``n == 0``."""
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (100.0 * max(0.0, centre - half), 100.0 * min(1.0, centre + half))


def z_for(confidence: float) -> float:
    """Two-sided normal quantile for a confidence level (0.95 -> 1.96)."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def bootstrap(stat: Callable[[np.ndarray], Any], n: int, n_boot: int, seed: int,
              confidence: float = 0.95, strata: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap of ``stat(indices)`` over ``n`` rows resampled with replacement.

    ``stat`` gets an index array and returns a float or a 1-D array of floats; resamples where a
    statistic is undefined (nan) are ignored for that statistic. With ``strata`` (a label per row)
    rows are resampled within each stratum, so every group keeps its size in every resample (a
    group that vanished from a resample would otherwise bias a between-group gap). Returns (low, high).
    """
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(strata == s) for s in np.unique(strata)] if strata is not None else None

    def draw() -> np.ndarray:
        if members is None:
            return rng.integers(0, n, n)
        return np.concatenate([m[rng.integers(0, len(m), len(m))] for m in members])

    draws = [np.atleast_1d(np.asarray(stat(draw()), dtype=float)) for _ in range(n_boot)]
    arr = np.vstack(draws)
    alpha = (1.0 - confidence) / 2.0
    with np.errstate(all="ignore"):
        low = np.array([np.nanquantile(c, alpha) if np.isfinite(c).any() else np.nan for c in arr.T])
        high = np.array([np.nanquantile(c, 1 - alpha) if np.isfinite(c).any() else np.nan for c in arr.T])
    return low, high


def sample_indices(n: int, limit: int | None, seed: int) -> list[int]:
    """All of ``range(n)``, or ``limit`` of them drawn without replacement (seeded), in order."""
    if limit is None or limit >= n:
        return list(range(n))
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(n, size=limit, replace=False))


def finite(x: Any) -> float | None:
    """A JSON-safe float: ``None`` for nan/inf."""
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None

