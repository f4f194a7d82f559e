"""Inter-judge agreement: the coefficients, their bootstrap intervals, and the edge cases.

Everything here works on a reliability matrix: items x judges, each cell a category index
or -1 where that judge did not rate that item. Every coefficient is a function of sums over
items of per-item features, so one routine computes the point estimate (all weights 1) and
the bootstrap replicates (multinomial item counts, one matrix product for all replicates).

Coefficients (the formulas, with sources):
- percent agreement: the mean over items with two or more ratings of the share of agreeing
  rater pairs (Fleiss 1971, eq. 2; Gwet 2014, Handbook of Inter-Rater Reliability, 4th ed.,
  §2.2).
- Krippendorff's alpha: 1 - D_o/D_e from the coincidence matrix with the level's difference
  function (nominal, ordinal, interval, ratio), pairable values only (Krippendorff 2011,
  "Computing Krippendorff's Alpha-Reliability"). Checked against the `krippendorff` package.
- Fleiss' kappa with missing ratings in Gwet's generalised form (Gwet 2014, eq. 2.6-2.8):
  p_a over items with two or more ratings, p_e from pi_k = mean over items of r_ik/r_i.
  With complete data it is Fleiss (1971).
- Gwet's AC1 (nominal) and AC2 with quadratic weights (ordinal) (Gwet 2008; 2014 §2.4).
- Cohen's kappa for every judge pair, on the items both rated, unweighted and on ordinal
  scales linearly and quadratically weighted (Cohen 1960, 1968). Checked against
  scikit-learn's `cohen_kappa_score`.

The full category set of the scale is always used: unused categories change the kappa
weights and AC1's chance agreement.

Edge cases never raise. A coefficient that is undefined comes back with `value=None` and a
`note` saying why: no pairable ratings (a single judge, or items with one rating each), or no
variation (every rating falls in one category, so expected disagreement is zero and the
ratio is 0/0).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from app.agreement import DEFAULT_BOOT, LEVELS  # noqa: F401 - re-exported
from app.workspace.errors import ChambersError

CONFIDENCE = 0.95


class AgreementError(ChambersError):
    pass


NO_PAIRS = "undefined: no item has ratings from two judges"
NO_VARIATION = "undefined: every rating is in the same category (no variation)"


def band(alpha: float | None) -> str:
    """Krippendorff's (2004, p. 241) reading of alpha."""
    if alpha is None:
        return "undefined"
    if alpha >= 0.800:
        return "reliable"
    if alpha >= 0.667:
        return "tentative"
    return "unreliable"


@dataclass
class Coefficient:
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": _round(self.value),
            "ci_low": _round(self.ci_low),
            "ci_high": _round(self.ci_high),
        }
        if self.note:
            out["note"] = self.note
        return out

    def fmt(self, digits: int = 3) -> str:
        if self.value is None:
            return "n/a"
        s = f"{self.value:.{digits}f}"
        if self.ci_low is not None and self.ci_high is not None:
            s += f" [{self.ci_low:.{digits}f}, {self.ci_high:.{digits}f}]"
        return s


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


@dataclass
class Ratings:
    """A reliability matrix: codes[i, j] indexes `categories`, -1 where missing."""

    codes: np.ndarray
    categories: list[Any]
    level: str
    items: list[Any] = field(default_factory=list)
    judges: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise AgreementError(f"level must be one of {', '.join(LEVELS)}, not {self.level!r}")
        if len(self.categories) < 1:
            raise AgreementError("a scale needs at least one category")
        self.codes = np.asarray(self.codes, dtype=np.int16)
        if self.codes.ndim != 2:
            raise AgreementError("ratings must be an items x judges matrix")
        if not self.items:
            self.items = list(range(self.codes.shape[0]))
        if not self.judges:
            self.judges = list(range(self.codes.shape[1]))

    @property
    def n_items(self) -> int:
        return self.codes.shape[0]

    @property
    def n_judges(self) -> int:
        return self.codes.shape[1]

    @classmethod
    def from_long(
        cls,
        rows: Iterable[tuple[Any, Any, Any]],
        level: str,
        categories: Sequence[Any] | None = None,
        items: Sequence[Any] | None = None,
        judges: Sequence[Any] | None = None,
    ) -> Ratings:
        """From (item, judge, value) triples; categories default to the sorted values seen,
        items and judges to the order first seen (a given item list drops other items' rows)."""
        rows = list(rows)
        items = list(items) if items is not None else list(dict.fromkeys(r[0] for r in rows))
        judges = list(judges) if judges is not None else list(dict.fromkeys(r[1] for r in rows))
        if categories is None:
            categories = sorted({r[2] for r in rows}, key=_sort_key)
        cats = list(categories)
        index = {c: k for k, c in enumerate(cats)}
        item_ix = {x: i for i, x in enumerate(items)}
        judge_ix = {x: j for j, x in enumerate(judges)}
        codes = np.full((len(items), len(judges)), -1, dtype=np.int16)
        for item, judge, value in rows:
            if item not in item_ix:
                continue
            if value not in index:
                raise AgreementError(
                    f"item {item!r}, judge {judge!r}: value {value!r} is not one of the "
                    f"categories {cats}"
                )
            i, j = item_ix[item], judge_ix[judge]
            if codes[i, j] != -1 and codes[i, j] != index[value]:
                raise AgreementError(f"item {item!r}, judge {judge!r}: rated twice")
            codes[i, j] = index[value]
        return cls(codes, cats, level, items, judges)

    def value_counts(self) -> np.ndarray:
        """items x categories: how many judges put each item in each category."""
        n_cat = len(self.categories)
        rated = self.codes >= 0
        flat = (np.nonzero(rated)[0].astype(np.int64) * n_cat + self.codes[rated]).astype(np.int64)
        counts = np.bincount(flat, minlength=self.n_items * n_cat)
        return counts.reshape(self.n_items, n_cat).astype(np.float64)


def _sort_key(v: Any) -> tuple[int, Any]:
    return (0, v) if isinstance(v, int | float) else (1, str(v))


def _numeric(categories: Sequence[Any], level: str) -> np.ndarray:
    if level in ("interval", "ratio"):
        try:
            return np.array([float(c) for c in categories])
        except (TypeError, ValueError) as exc:
            raise AgreementError(
                f"{level} level needs numeric categories, got {categories}"
            ) from exc
    return np.arange(len(categories), dtype=np.float64)


def _alpha_delta(level: str, values: np.ndarray, marg: np.ndarray) -> np.ndarray:
    """Squared difference matrices, one per row of marginals `marg` (B x C) -> B x C x C."""
    n_cat = len(values)
    b = marg.shape[0]
    if level == "nominal":
        d = 1.0 - np.eye(n_cat)
        return np.broadcast_to(d, (b, n_cat, n_cat))
    if level == "interval":
        d = (values[:, None] - values[None, :]) ** 2
        return np.broadcast_to(d, (b, n_cat, n_cat))
    if level == "ratio":
        s = values[:, None] + values[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(s == 0, 0.0, ((values[:, None] - values[None, :]) / s) ** 2)
        return np.broadcast_to(d, (b, n_cat, n_cat))
    # ordinal: (sum_{g=c..k} n_g - (n_c + n_k)/2)^2, depends on the marginals
    cs = np.cumsum(marg, axis=1)
    prev = cs - marg
    lo = np.minimum.outer(np.arange(n_cat), np.arange(n_cat))
    hi = np.maximum.outer(np.arange(n_cat), np.arange(n_cat))
    span = cs[:, hi] - prev[:, lo]
    return (span - (marg[:, :, None] + marg[:, None, :]) / 2.0) ** 2


class _Features:
    """Per-item features whose column sums determine every coefficient."""

    def __init__(self, r: Ratings):
        self.r = r
        n_cat = len(r.categories)
        self.n_cat = n_cat
        vc = r.value_counts()
        m = vc.sum(axis=1)
        self.m = m
        pairable = m >= 2
        mm1 = np.where(pairable, m - 1, 1.0)
        # coincidences per item (Krippendorff): (n_ic n_ik - [c=k] n_ic) / (m_i - 1)
        coin = vc[:, :, None] * vc[:, None, :]
        coin[:, np.arange(n_cat), np.arange(n_cat)] -= vc
        coin /= mm1[:, None, None]
        coin[~pairable] = 0.0
        # Fleiss / Gwet: agreement per item (pairable items), classification shares
        denom = np.where(pairable, m * (m - 1), 1.0)
        pa = np.where(pairable, (vc * (vc - 1)).sum(axis=1) / denom, 0.0)
        weights = self.quad_weights()
        vstar = vc @ weights.T
        pa_w = np.where(pairable, (vc * (vstar - 1)).sum(axis=1) / denom, 0.0)
        rated = m >= 1
        pi = np.where(rated[:, None], vc / np.where(rated, m, 1.0)[:, None], 0.0)
        cols = [
            coin.reshape(len(m), -1),
            pa[:, None],
            pa_w[:, None],
            pairable[:, None],
            pi,
            rated[:, None],
        ]
        self.matrix = np.hstack([c.astype(np.float64) for c in cols])
        k = n_cat * n_cat
        self.sl_coin = slice(0, k)
        self.i_pa, self.i_paw, self.i_n2 = k, k + 1, k + 2
        self.sl_pi = slice(k + 3, k + 3 + n_cat)
        self.i_n1 = k + 3 + n_cat

    def quad_weights(self) -> np.ndarray:
        n = self.n_cat
        if n < 2:
            return np.ones((1, 1))
        idx = np.arange(n)
        return 1.0 - ((idx[:, None] - idx[None, :]) / (n - 1)) ** 2

    def stats(self, sums: np.ndarray) -> dict[str, np.ndarray]:
        """Coefficients for each row of column sums (B x K) -> name: (B,) arrays (nan = undefined)."""
        r, n_cat = self.r, self.n_cat
        b = sums.shape[0]
        out: dict[str, np.ndarray] = {}
        coin = sums[:, self.sl_coin].reshape(b, n_cat, n_cat)
        marg = coin.sum(axis=2)
        n = marg.sum(axis=1)
        delta = _alpha_delta(r.level, _numeric(r.categories, r.level), marg)
        d_o = (coin * delta).sum(axis=(1, 2))
        d_e = (marg[:, :, None] * marg[:, None, :] * delta).sum(axis=(1, 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = 1.0 - (n - 1) * d_o / d_e
        alpha[(n < 2) | (d_e <= 1e-12 * np.maximum(n, 1) ** 2)] = np.nan
        out["krippendorff_alpha"] = alpha
        n2, n1 = sums[:, self.i_n2], sums[:, self.i_n1]
        with np.errstate(divide="ignore", invalid="ignore"):
            pa = sums[:, self.i_pa] / n2
            pa_w = sums[:, self.i_paw] / n2
            pi = sums[:, self.sl_pi] / n1[:, None]
        pa[n2 == 0] = np.nan
        pa_w[n2 == 0] = np.nan
        out["percent_agreement"] = pa
        pe_f = (pi**2).sum(axis=1)
        out["fleiss_kappa"] = _chance_corrected(pa, pe_f)
        if n_cat >= 2:
            pe_g = (pi * (1 - pi)).sum(axis=1) / (n_cat - 1)
            out["gwet_ac1"] = _chance_corrected(pa, pe_g)
            if r.level != "nominal":
                t_w = self.quad_weights().sum()
                pe_gw = t_w / (n_cat * (n_cat - 1)) * (pi * (1 - pi)).sum(axis=1)
                out["gwet_ac2"] = _chance_corrected(pa_w, pe_gw)
        else:
            out["gwet_ac1"] = np.full(b, np.nan)
        return out


def _chance_corrected(po: np.ndarray, pe: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        k = (po - pe) / (1.0 - pe)
    k[~np.isfinite(k) | (pe >= 1.0 - 1e-12)] = np.nan
    return k


class _PairFeatures:
    """Cohen's kappa for judge pairs.

    Point estimates come from one Gram matrix of the one-hot ratings (items x judges*C),
    whose (a, b) block is the pair's confusion table. Bootstrap replicates need, per pair,
    sums over items of: both rated, agreeing, the two marginals on common items (C-1 columns
    each: the last follows from the count), and on ordinal scales the linear and quadratic
    disagreement; a block of pairs' features times the resampling weights gives them all.
    """

    def __init__(self, r: Ratings, pairs: list[tuple[int, int]]):
        self.r = r
        self.pairs = pairs
        self.n_cat = len(r.categories)
        self.ordinal = r.level != "nominal" and self.n_cat > 2
        self.width = 2 + 2 * (self.n_cat - 1) + (2 if self.ordinal else 0)
        idx = np.arange(self.n_cat)
        self.w_lin = np.abs(idx[:, None] - idx[None, :]) / max(self.n_cat - 1, 1)
        self.w_quad = self.w_lin**2

    def point(self) -> dict[str, np.ndarray]:
        """name -> (1, n_pairs) from confusion tables."""
        r, n_cat = self.r, self.n_cat
        onehot = np.zeros((r.n_items, r.n_judges * n_cat), dtype=np.float64)
        rows, cols = np.nonzero(r.codes >= 0)
        onehot[rows, cols * n_cat + r.codes[rows, cols]] = 1.0
        gram = (onehot.T @ onehot).reshape(r.n_judges, n_cat, r.n_judges, n_cat)
        a_idx = np.array([a for a, _ in self.pairs])
        b_idx = np.array([b for _, b in self.pairs])
        tables = gram[a_idx, :, b_idx, :]  # pairs x C x C
        return self._from_tables(tables[None])

    def _from_tables(self, t: np.ndarray) -> dict[str, np.ndarray]:
        n = t.sum(axis=(2, 3))
        with np.errstate(divide="ignore", invalid="ignore"):
            po = np.trace(t, axis1=2, axis2=3) / n
            ma = t.sum(axis=3) / n[..., None]
            mb = t.sum(axis=2) / n[..., None]
            out = self._kappas(
                n,
                po,
                ma,
                mb,
                (t * self.w_lin).sum(axis=(2, 3)) / n,
                (t * self.w_quad).sum(axis=(2, 3)) / n,
            )
        return out

    def _kappas(self, n, po, ma, mb, d_lin, d_quad) -> dict[str, np.ndarray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            pe = (ma * mb).sum(axis=-1)
            kappa = (po - pe) / (1 - pe)
        kappa[(n < 2) | (pe >= 1 - 1e-12) | ~np.isfinite(kappa)] = np.nan
        out = {"cohen_kappa": kappa}
        if self.ordinal:
            for name, w, do in (
                ("cohen_kappa_linear", self.w_lin, d_lin),
                ("cohen_kappa_quadratic", self.w_quad, d_quad),
            ):
                with np.errstate(divide="ignore", invalid="ignore"):
                    de = np.einsum("...c,ck,...k->...", ma, w, mb)
                    kw = 1.0 - do / de
                kw[(n < 2) | (de <= 1e-12) | ~np.isfinite(kw)] = np.nan
                out[name] = kw
        return out

    def features(self, block: Sequence[tuple[int, int]]) -> np.ndarray:
        """(len(block) * width) x items float32 features for the bootstrap, built row by row
        from the two judges' codes. Every feature is an integer (the ordinal disagreements are
        |x - y| and (x - y)^2, scaled in from_sums), so the sums over resampled items are exact
        in float32 (below 2^24) whatever order the matrix product adds them in."""
        codes = self.r.codes.T  # judges x items
        a = codes[[p[0] for p in block]]
        b = codes[[p[1] for p in block]]
        both = (a >= 0) & (b >= 0)
        out = np.empty((len(block), self.width, codes.shape[1]), dtype=np.float32)
        out[:, 0] = both
        out[:, 1] = both & (a == b)
        for x in range(self.n_cat - 1):
            out[:, 2 + x] = both & (a == x)
            out[:, 1 + self.n_cat + x] = both & (b == x)
        if self.ordinal:
            d = np.abs(a - b).astype(np.float32) * both
            out[:, self.width - 2] = d
            out[:, self.width - 1] = d * d
        return out.reshape(len(block) * self.width, -1)

    def from_sums(self, sums: np.ndarray, n_pairs: int) -> dict[str, np.ndarray]:
        """sums: B x (n_pairs*width) -> name: B x n_pairs."""
        b = sums.shape[0]
        s = sums.reshape(b, n_pairs, self.width).astype(np.float64)
        n_cat = self.n_cat
        n = s[:, :, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            ma = s[:, :, 2 : 1 + n_cat]
            mb = s[:, :, 1 + n_cat : 2 * n_cat]
            ma = np.concatenate([ma, (n - ma.sum(axis=2))[:, :, None]], axis=2) / n[:, :, None]
            mb = np.concatenate([mb, (n - mb.sum(axis=2))[:, :, None]], axis=2) / n[:, :, None]
            po = s[:, :, 1] / n
            steps = max(n_cat - 1, 1)
            d_lin = s[:, :, self.width - 2] / (n * steps) if self.ordinal else None
            d_quad = s[:, :, self.width - 1] / (n * steps**2) if self.ordinal else None
        return self._kappas(n, po, ma, mb, d_lin, d_quad)


def resample_weights(n_items: int, n_boot: int, seed: int) -> np.ndarray:
    """Multinomial resampling counts for every replicate: n_boot x n_items float32, seeded.
    Replicate k resamples n_items items with replacement; entry (k, i) counts item i."""
    out = np.zeros((max(n_boot, 0), n_items), dtype=np.float32)
    if n_boot <= 0 or n_items == 0:
        return out[:0]
    done = 0
    for block in bootstrap_weights(n_items, n_boot, seed):
        out[done : done + len(block)] = block
        done += len(block)
    return out


def bootstrap_weights(n_items: int, n_boot: int, seed: int, chunk: int = 100):
    """Yield multinomial resampling counts (chunk x n_items, float32), seeded: each row counts
    n_items draws with replacement (one bincount per row: no flat index array to build)."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_boot:
        k = min(chunk, n_boot - done)
        idx = rng.integers(0, n_items, size=(k, n_items))
        counts = np.empty((k, n_items), dtype=np.float32)
        for j in range(k):
            counts[j] = np.bincount(idx[j], minlength=n_items)
        yield counts
        done += k


@dataclass
class Result:
    n_items: int
    n_judges: int
    level: str
    categories: list[Any]
    coefficients: dict[str, Coefficient]
    judges: list[Any]
    pairwise: dict[str, np.ndarray]  # name -> judges x judges (nan on diagonal/undefined)
    n_boot: int = 0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n_items": self.n_items, "n_judges": self.n_judges}
        out.update({k: v.as_dict() for k, v in self.coefficients.items()})
        return out

    @property
    def alpha(self) -> Coefficient:
        return self.coefficients["krippendorff_alpha"]


def compute(
    r: Ratings,
    n_boot: int = DEFAULT_BOOT,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    pairs: bool = True,
    weights: np.ndarray | None = None,
) -> Result:
    """All coefficients for one reliability matrix, with percentile bootstrap intervals.

    `weights` may pass precomputed resampling counts (`resample_weights`, B x n_items) so
    several criteria over the same items share one resampling.
    """
    # Only items someone rated count (unless the caller's weights fix the item set).
    rated_items = (r.codes >= 0).any(axis=1)
    if not rated_items.all() and weights is None:
        r = Ratings(
            r.codes[rated_items],
            r.categories,
            r.level,
            [x for x, k in zip(r.items, rated_items, strict=True) if k],
            r.judges,
        )
    feats = _Features(r)
    point = feats.stats(feats.matrix.sum(axis=0)[None, :])
    judge_pairs = list(combinations(range(r.n_judges), 2)) if pairs else []
    pf = _PairFeatures(r, judge_pairs) if judge_pairs else None
    pair_point = pf.point() if pf is not None else {}
    boots: dict[str, list[np.ndarray]] = {}
    if n_boot > 0 and r.n_items > 1:
        w = weights if weights is not None else resample_weights(r.n_items, n_boot, seed)
        fmat = feats.matrix.astype(np.float32)
        for k, v in feats.stats((w @ fmat).astype(np.float64)).items():
            boots[k] = [v]
        if pf is not None:
            boots.update(_pair_boot(pf, judge_pairs, w))
    coefficients: dict[str, Coefficient] = {}
    names = ["percent_agreement", "krippendorff_alpha", "fleiss_kappa", "gwet_ac1"]
    if "gwet_ac2" in point:
        names.append("gwet_ac2")
    for name in names:
        coefficients[name] = _coef(point[name][0], boots.get(name), confidence, name, r)
    if pf is not None:
        for name in ("cohen_kappa", "cohen_kappa_linear", "cohen_kappa_quadratic"):
            if name in pair_point:
                mean = float(_row_nanmean(pair_point[name])[0])
                coefficients[name] = _coef(mean, boots.get(name), confidence, name, r)
    else:
        coefficients["cohen_kappa"] = Coefficient(None, note="undefined: fewer than two judges")
    pairwise = {}
    for name, vals in pair_point.items():
        mat = np.full((r.n_judges, r.n_judges), np.nan)
        for (a, b), v in zip(judge_pairs, vals[0], strict=True):
            mat[a, b] = mat[b, a] = v
        pairwise[name] = mat
    return Result(
        r.n_items,
        r.n_judges,
        r.level,
        list(r.categories),
        coefficients,
        list(r.judges),
        pairwise,
        n_boot if boots else 0,
    )


_PAIR_BLOCK_BYTES = 128 << 20  # feature block size for the pairs' bootstrap


def _pair_boot(pf: _PairFeatures, judge_pairs, w: np.ndarray) -> dict[str, list[np.ndarray]]:
    """Mean over pairs of each kappa, per bootstrap replicate: one matrix product per block
    of pairs (resampling weights B x items times the block's features items x columns)."""
    per_pair = max(1, _PAIR_BLOCK_BYTES // (4 * pf.width * max(pf.r.n_items, 1)))
    totals: dict[str, np.ndarray] = {}
    counts: dict[str, np.ndarray] = {}
    for start in range(0, len(judge_pairs), per_pair):
        block = judge_pairs[start : start + per_pair]
        for k, v in pf.from_sums(w @ pf.features(block).T, len(block)).items():
            ok = np.isfinite(v)
            totals[k] = totals.get(k, 0.0) + np.where(ok, v, 0.0).sum(axis=1)
            counts[k] = counts.get(k, 0) + ok.sum(axis=1)
    return {
        k: [np.where(counts[k] > 0, totals[k] / np.maximum(counts[k], 1), np.nan)] for k in totals
    }


def _row_nanmean(v: np.ndarray) -> np.ndarray:
    """Mean over pairs per replicate, nan where no pair is defined (no warning)."""
    ok = np.isfinite(v)
    count = ok.sum(axis=1)
    total = np.where(ok, v, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _coef(
    value: float, boots: list[np.ndarray] | None, confidence: float, name: str, r: Ratings
) -> Coefficient:
    if not math.isfinite(value):
        return Coefficient(None, note=_why_undefined(r, name))
    lo = hi = None
    if boots:
        reps = np.concatenate(boots)
        reps = reps[np.isfinite(reps)]
        if len(reps) >= 0.5 * sum(len(b) for b in boots):
            tail = (1 - confidence) / 2 * 100
            lo, hi = (float(x) for x in np.percentile(reps, [tail, 100 - tail]))
    return Coefficient(float(value), lo, hi)


def _why_undefined(r: Ratings, name: str) -> str:
    per_item = (r.codes >= 0).sum(axis=1)
    if r.n_judges < 2:
        return "undefined: fewer than two judges"
    if not (per_item >= 2).any():
        return NO_PAIRS
    used = np.unique(r.codes[r.codes >= 0])
    if len(used) <= 1:
        return NO_VARIATION
    if name.startswith("cohen"):
        return "undefined: no judge pair shares two items with variation"
    return "undefined: expected disagreement is zero"


# ---------------------------------------------------------------------------------------
# Long-format CSV (item,judge,value) for labels from any other tool


def ratings_from_csv(
    path: str | Path, level: str, categories: Sequence[Any] | None = None
) -> Ratings:
    path = Path(path)
    if level not in LEVELS:
        raise AgreementError(f"--level must be one of {', '.join(LEVELS)}")
    numeric = level in ("interval", "ratio", "ordinal")
    cats: list[Any] | None = None
    if categories is not None:
        cats = [_parse_value(str(c), numeric) for c in categories]
    try:
        fh = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise AgreementError(f"{path}: cannot read ({exc.strerror})") from exc
    rows = []
    with fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise AgreementError(f"{path}: the file is empty") from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise AgreementError(f"{path}: line 1: not a UTF-8 CSV file ({exc})") from None
        if header[:3] != ["item", "judge", "value"]:
            raise AgreementError(
                f"{path}: line 1: the header must be item,judge,value (got {','.join(header)})"
            )
        try:
            for line in reader:
                n = reader.line_num
                if not line or all(not c.strip() for c in line):
                    continue
                if len(line) < 3:
                    raise AgreementError(f"{path}: line {n}: expected 3 fields, got {len(line)}")
                item, judge, raw = (c.strip() for c in line[:3])
                if raw == "" or raw.upper() in ("NA", "NAN"):
                    continue  # a missing rating
                try:
                    value = _parse_value(raw, numeric)
                except ValueError:
                    raise AgreementError(
                        f"{path}: line {n}: field value: {raw!r} is not a number ({level} level)"
                    ) from None
                rows.append((item, judge, value))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise AgreementError(f"{path}: line {reader.line_num}: unreadable ({exc})") from None
    if not rows:
        raise AgreementError(f"{path}: no ratings")
    try:
        return Ratings.from_long(rows, level, cats)
    except AgreementError as exc:
        raise AgreementError(f"{path}: {exc}") from None


def _parse_value(raw: str, numeric: bool) -> Any:
    if not numeric:
        return raw
    x = float(raw)
    return int(x) if x.is_integer() else x
