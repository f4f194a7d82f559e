"""Statistics of evaluations and blind comparisons: bootstrap intervals over items, paired
differences, win rate with ties, position bias and Bradley-Terry strengths.

Intervals are percentile bootstrap intervals with items as the resampling unit (every
verdict or score of one item moves together), seeded so a report is reproducible. The
Bradley-Terry fit is Hunter's (2004) MM algorithm ("MM algorithms for generalized
Bradley-Terry models", Ann. Statist. 32(1)), with a tie counted as half a win each way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

N_BOOT = 2000
CONFIDENCE = 0.95


@dataclass
class Estimate:
    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0

    def as_dict(self) -> dict[str, Any]:
        r = lambda x: None if x is None else round(float(x), 4)  # noqa: E731
        return {"value": r(self.value), "low": r(self.low), "high": r(self.high), "n": self.n}

    def fmt(self, digits: int = 3) -> str:
        if self.value is None:
            return "n/a"
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def _indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _interval(reps: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.nanpercentile(reps, [tail, 100 - tail])
    return float(lo), float(hi)


def mean_ci(
    values: Sequence[float], n_boot: int = N_BOOT, seed: int = 0, confidence: float = CONFIDENCE
) -> Estimate:
    """The mean with a percentile bootstrap interval."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return Estimate(None)
    if v.size == 1:
        return Estimate(float(v[0]), float(v[0]), float(v[0]), 1)
    reps = v[_indices(v.size, n_boot, seed)].mean(axis=1)
    return Estimate(float(v.mean()), *_interval(reps, confidence), int(v.size))


def ratio_ci(
    num: Sequence[float],
    den: Sequence[float],
    n_boot: int = N_BOOT,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> Estimate:
    """sum(num) / sum(den) over items (a share of verdicts clustered by item)."""
    a, b = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if a.size == 0 or b.sum() == 0:
        return Estimate(None, n=int(a.size))
    point = float(a.sum() / b.sum())
    if a.size == 1:
        return Estimate(point, point, point, 1)
    idx = _indices(a.size, n_boot, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        reps = a[idx].sum(axis=1) / b[idx].sum(axis=1)
    return Estimate(point, *_interval(reps, confidence), int(a.size))


# ---------------------------------------------------------------------------------------------
# Bradley-Terry


def bt_fit(wins: np.ndarray, iters: int = 10_000, tol: float = 1e-10) -> np.ndarray:
    """Strengths p (summing to 1) from wins[i, j] = times i beat j (ties as 0.5 each way).
    Hunter's MM update: p_i <- W_i / sum_j n_ij / (p_i + p_j)."""
    w = np.asarray(wins, dtype=float)
    m = w.shape[0]
    n = w + w.T
    total = w.sum(axis=1)
    p = np.full(m, 1.0 / m)
    for _ in range(iters):
        denom = (n / (p[:, None] + p[None, :])).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            new = np.where(denom > 0, total / denom, p)
        new = np.maximum(new, 1e-12)
        new /= new.sum()
        if np.abs(new - p).max() < tol:
            p = new
            break
        p = new
    return p


def bradley_terry(
    comparisons: Sequence[tuple[Any, str, str, float]],
    n_boot: int = 500,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> dict[str, Estimate]:
    """comparisons: (item, model_a, model_b, score of a: 1, 0.5 or 0). Strengths are log p
    centred to mean 0 (differences are log-odds of winning), with bootstrap intervals over
    items."""
    models = sorted({c[1] for c in comparisons} | {c[2] for c in comparisons})
    ix = {m: k for k, m in enumerate(models)}
    items = list(dict.fromkeys(c[0] for c in comparisons))
    item_ix = {x: k for k, x in enumerate(items)}
    per_item = np.zeros((len(items), len(models), len(models)))
    for item, a, b, s in comparisons:
        k = item_ix[item]
        per_item[k, ix[a], ix[b]] += s
        per_item[k, ix[b], ix[a]] += 1 - s

    def strengths(w: np.ndarray) -> np.ndarray:
        lp = np.log(bt_fit(w))
        return lp - lp.mean()

    point = strengths(per_item.sum(axis=0))
    out = {m: Estimate(float(point[ix[m]]), n=len(items)) for m in models}
    if len(items) > 1 and n_boot > 0:
        reps = np.array(
            [strengths(per_item[idx].sum(axis=0)) for idx in _indices(len(items), n_boot, seed)]
        )
        for m in models:
            out[m].low, out[m].high = _interval(reps[:, ix[m]], confidence)
    return out
