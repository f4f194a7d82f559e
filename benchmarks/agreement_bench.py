"""Agreement engine speed against one `krippendorff.alpha` call, side by side in one run.

    python benchmarks/agreement_bench.py [--items 50000] [--judges 20] [--criteria 8]
                                          [--missing 0.4] [--bootstrap 1000]

Data: items x judges x criteria with 40% of ratings missing; criteria cycle through binary,
ordinal 1-4, ordinal 1-5 and nominal with 5 categories, each judge noisy around a true label.
For each criterion, on the same prepared matrix:
- the reference: one `krippendorff.alpha` call (value counts given the full value domain);
- point estimates: every coefficient (percent agreement, alpha, Fleiss/Gwet, AC1/AC2, Cohen's
  kappa for all 190 judge pairs, weighted on ordinal scales), no intervals;
- the full report: the same plus 95% bootstrap intervals for every coefficient, resampling
  items (the resampling weights are drawn once and shared by the criteria, as the workspace
  report does; their cost is counted in the total).
Targets (issue #4): point estimates within 2x of the reference, the full report within 30x.
"""

from __future__ import annotations

import argparse
import time

import krippendorff
import numpy as np

from app.agreement import coefficients as ag

SCALES = [
    ("binary", 2, "nominal"),
    ("ordinal4", 4, "ordinal"),
    ("ordinal5", 5, "ordinal"),
    ("nominal5", 5, "nominal"),
]


def make(items: int, judges: int, n_cat: int, missing: float, rng) -> np.ndarray:
    truth = rng.integers(0, n_cat, items)
    noise = rng.random((items, judges)) < 0.3
    codes = np.where(noise, rng.integers(0, n_cat, (items, judges)), truth[:, None])
    codes[rng.random((items, judges)) < missing] = -1
    return codes.astype(np.int16)


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--items", type=int, default=50_000)
    p.add_argument("--judges", type=int, default=20)
    p.add_argument("--criteria", type=int, default=8)
    p.add_argument("--missing", type=float, default=0.4)
    p.add_argument("--bootstrap", type=int, default=1000)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    print(
        f"{a.items:,} items x {a.judges} judges x {a.criteria} criteria, "
        f"{a.missing:.0%} missing, {a.bootstrap} bootstrap resamples"
    )
    t = time.perf_counter()
    weights = ag.resample_weights(a.items, a.bootstrap, seed=0)
    t_weights = time.perf_counter() - t
    print(f"drawing the shared resampling weights: {t_weights:.2f} s (once for all criteria)")
    print(
        f"{'criterion':<12} {'alpha call':>10} {'point':>9} {'ratio':>6} {'full':>9} "
        f"{'ratio':>6}  alpha (ours / krippendorff)"
    )
    tot_ref = tot_point = tot_full = 0.0
    worst_point = worst_full = 0.0
    for c in range(a.criteria):
        name, n_cat, level = SCALES[c % len(SCALES)]
        codes = make(a.items, a.judges, n_cat, a.missing, rng)
        r = ag.Ratings(codes, list(range(1, n_cat + 1)), level)
        matrix = np.where(codes >= 0, codes + 1, np.nan).T.astype(float)  # judges x items
        domain = list(range(1, n_cat + 1))
        ref_value = krippendorff.alpha(
            reliability_data=matrix, level_of_measurement=level, value_domain=domain
        )
        t_ref = best_of(
            lambda m=matrix, lv=level, d=domain: krippendorff.alpha(
                reliability_data=m, level_of_measurement=lv, value_domain=d
            )
        )
        t_point = best_of(lambda r=r: ag.compute(r, n_boot=0))
        t = time.perf_counter()
        res = ag.compute(r, n_boot=a.bootstrap, weights=weights)
        t_full = time.perf_counter() - t
        assert abs(res.alpha.value - ref_value) < 1e-9, (res.alpha.value, ref_value)
        tot_ref += t_ref
        tot_point += t_point
        tot_full += t_full
        worst_point = max(worst_point, t_point / t_ref)
        worst_full = max(worst_full, (t_full + t_weights / a.criteria) / t_ref)
        print(
            f"{name + str(c):<12} {t_ref * 1e3:>8.1f}ms {t_point * 1e3:>7.1f}ms "
            f"{t_point / t_ref:>5.2f}x {t_full:>8.2f}s {t_full / t_ref:>5.1f}x  "
            f"{res.alpha.value:.6f} / {ref_value:.6f}"
        )
    full_total = tot_full + t_weights
    print(
        f"\ntotal: alpha calls {tot_ref:.2f} s, point estimates {tot_point:.2f} s "
        f"({tot_point / tot_ref:.2f}x), full report {full_total:.1f} s "
        f"({full_total / tot_ref:.1f}x)"
    )
    print(
        f"worst criterion: point {worst_point:.2f}x (target <= 2x), "
        f"full {worst_full:.1f}x (target <= 30x)"
    )


if __name__ == "__main__":
    main()
