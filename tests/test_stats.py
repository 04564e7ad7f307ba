"""abm.stats, the one statistics path of summary.csv and the report: t-intervals at small n,
NaN where an interval is undefined, paired differences, and the scipy bootstrap of risk shares."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from abm import stats

# Two-sided 95% Student-t quantiles (tables; e.g. Student's t table, df = n - 1).
T975 = {2: 12.706204736174707, 3: 4.302652729749464, 5: 2.7764451051977987,
        10: 2.2621571627409915}


@pytest.mark.parametrize("n", sorted(T975))
def test_t_quantile_matches_the_table(n):
    assert stats.t_quantile(n) == pytest.approx(T975[n], rel=1e-9)


def test_interval_at_n3_is_the_t_interval_not_the_normal_one():
    x = [10.0, 12.0, 17.0]
    d = stats.describe(x)
    sd = float(np.std(x, ddof=1))
    half = T975[3] * sd / math.sqrt(3)
    assert d["n"] == 3 and d["mean"] == pytest.approx(13.0) and d["sd"] == pytest.approx(sd)
    assert d["ci_low"] == pytest.approx(13.0 - half) and d["ci_high"] == pytest.approx(13.0 + half)
    normal_half = 1.959963984540054 * sd / math.sqrt(3)
    assert (d["ci_high"] - d["ci_low"]) / (2 * normal_half) == pytest.approx(2.195, abs=1e-3)


def test_small_n_coverage_is_95_percent():
    """Simulated coverage at n = 3 of normal data: the t-interval covers ~95% (the 1.96
    normal approximation would cover ~81%)."""
    rng = np.random.default_rng(12)
    trials = 4000
    hits = 0
    for _ in range(trials):
        d = stats.describe(rng.normal(5.0, 2.0, size=3))
        hits += d["ci_low"] <= 5.0 <= d["ci_high"]
    coverage = hits / trials
    assert abs(coverage - 0.95) < 0.015, coverage


@pytest.mark.parametrize("values", [[4.2], [4.2, np.nan], [np.inf, 4.2]])
def test_one_value_gives_a_mean_and_nan_interval(values):
    d = stats.describe(values)
    assert d == {**d, "mean": 4.2, "n": 1}
    assert math.isnan(d["sd"]) and math.isnan(d["ci_low"]) and math.isnan(d["ci_high"])
    m, lo, hi, n = stats.mean_ci(values)
    assert (m, n) == (4.2, 1) and math.isnan(lo) and math.isnan(hi)


def test_no_values_give_nan():
    d = stats.describe([])
    assert d["n"] == 0 and all(math.isnan(d[k]) for k in ("mean", "sd", "ci_low", "ci_high"))
    assert math.isnan(stats.t_quantile(1))


def test_paired_difference_uses_the_pairs():
    """Shared noise cancels: the paired interval is the t-interval of the differences, far
    narrower than either sample's own; a pair with a missing value is dropped whole."""
    noise = np.array([100.0, -80.0, 35.0, -20.0, 60.0])
    base = 1000 + noise
    arm = base + np.array([5.0, 5.2, 4.9, 5.1, 4.8])
    d = stats.paired_difference(arm, base)
    diffs = arm - base
    half = T975[5] * diffs.std(ddof=1) / math.sqrt(5)
    assert d["n"] == 5 and d["diff_mean"] == pytest.approx(diffs.mean())
    assert d["diff_ci_low"] == pytest.approx(diffs.mean() - half)
    assert d["diff_ci_high"] == pytest.approx(diffs.mean() + half)
    unpaired = stats.describe(arm)
    assert (d["diff_ci_high"] - d["diff_ci_low"]) < 0.01 * (unpaired["ci_high"] - unpaired["ci_low"])
    arm_gap = arm.copy()
    arm_gap[1] = np.nan
    assert stats.paired_difference(arm_gap, base)["n"] == 4
    one = stats.paired_difference([2.0, np.nan], [1.0, 1.0])
    assert one["diff_mean"] == 1.0 and math.isnan(one["diff_ci_low"])
    with pytest.raises(ValueError, match="differ in length"):
        stats.paired_difference([1.0, 2.0], [1.0])


def _money(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    cost = 1000 + 50 * rng.standard_normal(n)
    noise = 10 * rng.standard_normal(n)
    results = np.column_stack([np.full(n, -1000.0), 1000 - 0.3 * cost + noise, np.zeros(n),
                               -0.7 * cost - noise, np.zeros(n)])
    return cost, results


def test_risk_share_bootstrap_is_scipys_percentile_interval():
    """The interval is scipy.stats.bootstrap's (percentile, replicates resampled with their
    costs and results together), reproducible from its seed, and brackets the estimate."""
    from scipy.stats import bootstrap as scipy_bootstrap
    cost, results = _money(12)
    est = stats.risk_shares(cost, results)
    lo, hi, sd = stats.risk_share_interval(cost, results, seed=5)
    again = stats.risk_share_interval(cost, results, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip((lo, hi, sd), again))
    assert (lo <= est + 1e-12).all() and (est <= hi + 1e-12).all()
    assert lo[0] == hi[0] == 0.0 and lo[1] < est[1] < hi[1]
    ref = scipy_bootstrap((np.arange(12),), lambda i, axis=-1: stats.risk_shares(
        cost[i], results[i])[..., 1], vectorized=True, n_resamples=stats.BOOTSTRAP_RESAMPLES,
        method="percentile", rng=np.random.default_rng(5))
    # same resampling scheme, independent code: the same interval up to Monte Carlo noise
    assert lo[1] == pytest.approx(ref.confidence_interval.low, abs=0.05)
    assert hi[1] == pytest.approx(ref.confidence_interval.high, abs=0.05)


def test_risk_share_difference_is_paired():
    """Identical arrangements differ by exactly zero in every resample (pairs drawn together);
    an unpaired bootstrap would give a wide interval around zero."""
    cost, results = _money(10)
    lo, hi, sd = stats.risk_share_difference_interval(cost, results, cost, results, seed=2)
    assert np.array_equal(lo, np.zeros(5)) and np.array_equal(hi, np.zeros(5))
    shifted = results.copy()
    shifted[:, 1] -= 0.2 * (cost - cost.mean())   # commissioner bears 0.2 more ...
    shifted[:, 3] += 0.2 * (cost - cost.mean())   # ... providers 0.2 less
    lo, hi, _ = stats.risk_share_difference_interval(cost, shifted, cost, results, seed=2)
    assert lo[1] == pytest.approx(0.2) and hi[1] == pytest.approx(0.2)
    assert lo[3] == pytest.approx(-0.2) and hi[3] == pytest.approx(-0.2)


def test_bootstrap_skips_undefined_resamples():
    """At n = 5 some resamples draw one replicate five times (Var(C) = 0): those are left out,
    instead of turning the whole interval into NaN."""
    cost, results = _money(5, seed=3)
    lo, hi, sd = stats.risk_share_interval(cost, results, seed=3, n_resamples=4000)
    assert np.isfinite(lo).all() and np.isfinite(hi).all() and np.isfinite(sd).all()
    lo, hi, sd = stats.risk_share_interval(np.ones(5), results, seed=3)
    assert np.isnan(lo).all() and np.isnan(hi).all()


def test_summary_and_report_give_the_same_intervals(tmp_path):
    """summary.csv's describe and the report's fallback (from results.parquet) are one path."""
    from abm import summary
    from abm.report import _data
    assert summary.describe is stats.describe and _data.mean_ci is stats.mean_ci
    rows = [("fragmented", r, r, step, "m", float(step + 3 * r)) for r in range(3)
            for step in range(13)]
    res = pd.DataFrame(rows, columns=["arrangement", "replicate", "seed", "step", "metric",
                                      "value"])
    fin = _data.final_values(res)
    m, lo, hi, n = stats.mean_ci(fin["value"])
    d = summary.describe(fin["value"])
    assert (d["mean"], d["ci_low"], d["ci_high"], d["n"]) == (m, lo, hi, n) and n == 3
