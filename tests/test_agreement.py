"""The agreement engine against published values.

Sources:
- Krippendorff, K. (2011). "Computing Krippendorff's Alpha-Reliability", Annenberg School
  for Communication, University of Pennsylvania, section C (4 observers, 12 units, missing
  data): alpha nominal 0.743, ordinal 0.815, interval 0.849, ratio 0.797.
- Fleiss, J. L. (1971) example as tabulated in Wikipedia's "Fleiss' kappa" article (10
  subjects, 14 raters, 5 categories): P-bar 0.378, P-bar_e 0.213, kappa 0.210.
- Gwet, K. L. (2014). Handbook of Inter-Rater Reliability, 4th ed., the 3x3 abstractors
  table (data set `cont3x3abstractors` of the irrCAC R package; values from its vignette):
  Cohen's kappa 0.7964094, Scott's pi (= Fleiss' kappa for two raters) 0.7962397,
  Gwet's AC1 0.8493305, Krippendorff's alpha 0.7972585, percent agreement 0.89.
- Cohen's kappa textbook example (Wikipedia "Cohen's kappa", 50 grant proposals, yes/yes 20,
  yes/no 5, no/yes 10, no/no 15): p_o 0.70, p_e 0.50, kappa 0.40.
"""

from __future__ import annotations

import json
from itertools import combinations

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from app.agreement import coefficients as ag

NA = None
KRIPP_C = [  # observers x units, Krippendorff (2011) section C
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NA, NA, NA],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NA, 3],
    [NA, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NA],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NA],
]


def kripp_ratings(level: str) -> ag.Ratings:
    rows = [(u, o, v) for o, obs in enumerate(KRIPP_C) for u, v in enumerate(obs) if v is not None]
    return ag.Ratings.from_long(rows, level, [1, 2, 3, 4, 5])


@pytest.mark.parametrize(
    "level,published",
    [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)],
)
def test_krippendorff_alpha_matches_krippendorff_2011(level, published):
    r = kripp_ratings(level)
    res = ag.compute(r, n_boot=0)
    assert res.alpha.value == pytest.approx(published, abs=5e-4)
    # and the reference implementation on the same matrix
    data = np.array([[np.nan if v is None else v for v in obs] for obs in KRIPP_C], float)
    ref = krippendorff.alpha(
        reliability_data=data, level_of_measurement=level, value_domain=[1, 2, 3, 4, 5]
    )
    assert res.alpha.value == pytest.approx(ref, abs=1e-9)


WIKI_FLEISS = [  # subjects x categories: how many of 14 raters chose each
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def counts_to_ratings(table, level="nominal") -> ag.Ratings:
    n_raters = sum(table[0])
    codes = np.full((len(table), n_raters), -1)
    for i, row in enumerate(table):
        codes[i] = np.repeat(np.arange(len(row)), row)
    return ag.Ratings(codes, list(range(1, len(table[0]) + 1)), level)


def test_fleiss_kappa_matches_fleiss_1971_wikipedia_example():
    res = ag.compute(counts_to_ratings(WIKI_FLEISS), n_boot=0, pairs=False)
    assert res.coefficients["percent_agreement"].value == pytest.approx(0.378, abs=5e-4)
    assert res.coefficients["fleiss_kappa"].value == pytest.approx(0.210, abs=5e-4)
    assert res.coefficients["fleiss_kappa"].value == pytest.approx(
        sm_fleiss(np.array(WIKI_FLEISS), method="fleiss"), abs=1e-12
    )


ABSTRACTORS = [[13, 0, 0], [0, 20, 7], [0, 4, 56]]  # Gwet (2014), rater A rows x rater B cols


def table_to_ratings(table, level="nominal") -> ag.Ratings:
    rows = []
    item = 0
    for a, row in enumerate(table):
        for b, n in enumerate(row):
            for _ in range(n):
                rows.append((item, "A", a))
                rows.append((item, "B", b))
                item += 1
    return ag.Ratings.from_long(rows, level, list(range(len(table))))


def test_two_rater_coefficients_match_gwet_handbook_abstractors():
    res = ag.compute(table_to_ratings(ABSTRACTORS), n_boot=0)
    c = res.coefficients
    assert c["cohen_kappa"].value == pytest.approx(0.7964094, abs=1e-7)
    assert c["fleiss_kappa"].value == pytest.approx(0.7962397, abs=1e-7)  # Scott's pi
    assert c["gwet_ac1"].value == pytest.approx(0.8493305, abs=1e-7)
    assert c["krippendorff_alpha"].value == pytest.approx(0.7972585, abs=1e-7)
    assert c["percent_agreement"].value == pytest.approx(0.89, abs=1e-12)


def test_cohen_kappa_textbook_example_and_sklearn():
    table = [[20, 5], [10, 15]]
    res = ag.compute(table_to_ratings(table), n_boot=0)
    assert res.coefficients["cohen_kappa"].value == pytest.approx(0.40, abs=1e-12)
    assert res.pairwise["cohen_kappa"][0, 1] == pytest.approx(0.40, abs=1e-12)


def test_weighted_cohen_kappa_matches_sklearn_with_full_category_set():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 4, 200)
    b = np.clip(a + rng.integers(-1, 2, 200), 0, 4)  # category 4 used by b only
    rows = [(i, "a", int(x)) for i, x in enumerate(a)] + [(i, "b", int(x)) for i, x in enumerate(b)]
    r = ag.Ratings.from_long(rows, "ordinal", [0, 1, 2, 3, 4])
    res = ag.compute(r, n_boot=0)
    labels = [0, 1, 2, 3, 4]
    for name, weights in (
        ("cohen_kappa", None),
        ("cohen_kappa_linear", "linear"),
        ("cohen_kappa_quadratic", "quadratic"),
    ):
        ref = cohen_kappa_score(a, b, labels=labels, weights=weights)
        assert res.coefficients[name].value == pytest.approx(ref, abs=1e-12), name


def test_unused_categories_change_ac1():
    # AC1's chance agreement divides by q - 1: a 5-point scale with two categories used is
    # not the same as a 2-point scale (Gwet 2014, 2.4).
    table = [[40, 3], [2, 5]]
    two = ag.compute(table_to_ratings(table), n_boot=0).coefficients["gwet_ac1"].value
    rows = [(i, j, v) for (i, j, v) in ((x[0], x[1], x[2]) for x in _long(table))]
    five = (
        ag.compute(ag.Ratings.from_long(rows, "nominal", [0, 1, 2, 3, 4]), n_boot=0)
        .coefficients["gwet_ac1"]
        .value
    )
    assert two != pytest.approx(five, abs=1e-3)
    assert five > two


def _long(table):
    item = 0
    for a, row in enumerate(table):
        for b, n in enumerate(row):
            for _ in range(n):
                yield (item, "A", a)
                yield (item, "B", b)
                item += 1


def test_gwet_ac2_quadratic_without_disagreement_beyond_one_step():
    # Perfect agreement gives AC2 = 1 and every kappa = 1.
    rows = [(i, j, (i % 5) + 1) for i in range(30) for j in "abc"]
    res = ag.compute(ag.Ratings.from_long(rows, "ordinal", [1, 2, 3, 4, 5]), n_boot=50)
    for name in ("gwet_ac2", "gwet_ac1", "fleiss_kappa", "krippendorff_alpha", "cohen_kappa"):
        assert res.coefficients[name].value == pytest.approx(1.0), name


def test_bootstrap_interval_is_seeded_and_brackets_the_estimate():
    r = kripp_ratings("nominal")
    a = ag.compute(r, n_boot=1000, seed=7).alpha
    b = ag.compute(r, n_boot=1000, seed=7).alpha
    c = ag.compute(r, n_boot=1000, seed=8).alpha
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)
    assert a.ci_low < a.value < a.ci_high <= 1.0


def test_bootstrap_matches_a_python_loop_reference():
    # The vectorised bootstrap must equal resampling items one replicate at a time.
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, (60, 4))
    codes[rng.random((60, 4)) < 0.3] = -1
    r = ag.Ratings(codes, ["x", "y", "z"], "nominal")
    res = ag.compute(r, n_boot=200, seed=11)
    reps = []
    for w in ag.bootstrap_weights(r.n_items, 200, 11):
        for row in w:
            idx = np.repeat(np.arange(r.n_items), row.astype(int))
            sub = ag.Ratings(r.codes[idx], r.categories, "nominal")
            reps.append(ag.compute(sub, n_boot=0, pairs=False).alpha.value)
    reps = np.array([x for x in reps if x is not None])
    lo, hi = np.percentile(reps, [2.5, 97.5])
    assert res.alpha.ci_low == pytest.approx(lo, abs=1e-5)
    assert res.alpha.ci_high == pytest.approx(hi, abs=1e-5)


def test_edge_cases_return_documented_results():
    one_judge = ag.Ratings(np.array([[0], [1], [0]]), [0, 1], "nominal")
    res = ag.compute(one_judge, n_boot=100)
    assert res.alpha.value is None and res.alpha.note == "undefined: fewer than two judges"
    assert res.coefficients["cohen_kappa"].value is None

    no_variation = ag.Ratings(np.zeros((5, 3), int), [0, 1], "nominal")
    res = ag.compute(no_variation, n_boot=100)
    assert res.alpha.value is None and res.alpha.note == ag.NO_VARIATION
    assert res.coefficients["percent_agreement"].value == 1.0

    singletons = ag.Ratings(np.array([[0, -1], [-1, 1], [1, -1]]), [0, 1], "nominal")
    res = ag.compute(singletons, n_boot=100)
    assert res.alpha.value is None and res.alpha.note == ag.NO_PAIRS
    assert res.coefficients["percent_agreement"].value is None


def test_items_with_one_rating_count_for_pi_not_for_agreement():
    # Gwet's generalised Fleiss: an item with one rating adds to pi_k but not to p_a.
    codes = np.array([[0, 0], [1, 1], [0, 1], [1, -1]])
    res = ag.compute(ag.Ratings(codes, [0, 1], "nominal"), n_boot=0, pairs=False)
    pa = (1 + 1 + 0) / 3
    pi1 = (0.5 * 0 + 1 + 0.5 + 1) / 4  # share of category 1 per item, averaged over 4 items
    pe = (1 - pi1) ** 2 + pi1**2
    assert res.coefficients["percent_agreement"].value == pytest.approx(pa)
    assert res.coefficients["fleiss_kappa"].value == pytest.approx((pa - pe) / (1 - pe))


def test_csv_long_format_and_line_numbered_errors(tmp_path):
    path = tmp_path / "labels.csv"
    lines = ["item,judge,value"]
    for o, obs in enumerate(KRIPP_C):
        for u, v in enumerate(obs):
            lines.append(f"u{u},obs{o},{'' if v is None else v}")
    path.write_text("\n".join(lines) + "\n")
    r = ag.ratings_from_csv(path, "interval")
    assert ag.compute(r, n_boot=0).alpha.value == pytest.approx(0.849, abs=5e-4)

    bad = tmp_path / "bad.csv"
    bad.write_text("item,judge,value\n1,a,3\n1,b,three\n")
    with pytest.raises(ag.AgreementError, match=r"bad.csv: line 3: field value: 'three'"):
        ag.ratings_from_csv(bad, "ordinal")
    header = tmp_path / "header.csv"
    header.write_text("unit,coder,label\n")
    with pytest.raises(ag.AgreementError, match="line 1: the header must be item,judge,value"):
        ag.ratings_from_csv(header, "nominal")
    outside = tmp_path / "outside.csv"
    outside.write_text("item,judge,value\n1,a,3\n1,b,7\n")
    with pytest.raises(ag.AgreementError, match="value 7 is not one of the categories"):
        ag.ratings_from_csv(outside, "ordinal", categories=["1", "2", "3", "4", "5"])


def test_result_json_shape():
    res = ag.compute(kripp_ratings("ordinal"), n_boot=100)
    out = json.loads(json.dumps(res.as_dict()))
    for key in (
        "percent_agreement",
        "krippendorff_alpha",
        "fleiss_kappa",
        "gwet_ac1",
        "cohen_kappa",
        "cohen_kappa_linear",
        "cohen_kappa_quadratic",
    ):
        assert set(out[key]) >= {"value", "ci_low", "ci_high"}, key
    assert out["n_items"] == 12 and out["n_judges"] == 4


@pytest.mark.parametrize(("n_cat", "level"), [(2, "nominal"), (3, "nominal"), (4, "ordinal")])
def test_pair_bootstrap_equals_a_per_resample_loop(n_cat, level):
    """The mean Cohen's kappas over judge pairs, per replicate, equal a loop that resamples the
    items of each replicate, counts each pair's contingency table with bincount and applies
    the kappa formulas (to 1e-12; ordinal weights of 1/3 included)."""
    rng = np.random.default_rng(5)
    n_items, n_judges, n_boot = 300, 5, 40
    codes = rng.integers(0, n_cat, (n_items, n_judges))
    codes[rng.random(codes.shape) < 0.35] = -1
    r = ag.Ratings(codes, list(range(n_cat)), level)
    pairs = list(combinations(range(n_judges), 2))
    pf = ag._PairFeatures(r, pairs)
    w = ag.resample_weights(n_items, n_boot, seed=3)
    draws = np.random.default_rng(3).integers(0, n_items, size=(n_boot, n_items))
    flat = (np.arange(n_boot)[:, None] * n_items + draws).ravel()  # the counts of those draws
    assert np.array_equal(w, np.bincount(flat, minlength=w.size).reshape(w.shape))
    got = ag._pair_boot(pf, pairs, w)
    expected: dict[str, list[float]] = {}
    for row in w:
        idx = np.repeat(np.arange(n_items), row.astype(int))
        tables = np.zeros((len(pairs), n_cat, n_cat))
        for p, (a, b) in enumerate(pairs):
            x, y = codes[idx, a], codes[idx, b]
            both = (x >= 0) & (y >= 0)
            cells = np.bincount(x[both] * n_cat + y[both], minlength=n_cat * n_cat)
            tables[p] = cells.reshape(n_cat, n_cat)
        for name, kappas in pf._from_tables(tables[None]).items():
            expected.setdefault(name, []).append(np.nanmean(kappas[0]))
    assert set(got) == set(expected)
    for name, values in expected.items():
        np.testing.assert_allclose(got[name][0], values, rtol=0, atol=1e-12)
