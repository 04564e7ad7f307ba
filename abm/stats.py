"""The one statistics path: intervals over replicates for summary.csv and the report alike.

- Means and paired differences: two-sided Student-t intervals (`scipy.stats.t`). With fewer
  than two finite values an interval is undefined and is NaN; there is no normal-approximation
  fallback (at n = 3 the 1.96 interval is 2.2 times too narrow and covers about 81%, not 95%).
- Bootstraps (risk shares, expected shortfall): `scipy.stats.bootstrap`, percentile intervals
  over resamples of replicates, paired when arrangements are compared (the same replicates are
  drawn for both, as common random numbers pair them).
- Proportions (probability of failure): the exact Clopper-Pearson interval
  (`scipy.stats.binomtest(...).proportion_ci(method="exact")`), which stays inside [0, 1] and
  is honest at 0 of n; NaN below n = 2 as for means.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, Sequence

import numpy as np
from scipy import stats as _st

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000


def _finite(values) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    return x[np.isfinite(x)]


def t_quantile(n: int, confidence: float = CONFIDENCE) -> float:
    """Two-sided Student-t quantile for a mean of n values (NaN for n < 2)."""
    if n < 2:
        return math.nan
    return float(_st.t.ppf(0.5 + confidence / 2, n - 1))


def describe(values, confidence: float = CONFIDENCE) -> dict:
    """mean, sd, t-interval (ci_low, ci_high) and n of the finite values.

    n = 0: everything NaN; n = 1: the mean, and NaN for sd and the interval."""
    x = _finite(values)
    n = len(x)
    if n == 0:
        return {"mean": math.nan, "sd": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0}
    mean = float(x.mean())
    if n < 2:
        return {"mean": mean, "sd": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": n}
    sd = float(x.std(ddof=1))
    half = t_quantile(n, confidence) * sd / math.sqrt(n)
    return {"mean": mean, "sd": sd, "ci_low": mean - half, "ci_high": mean + half, "n": n}


def mean_ci(values, confidence: float = CONFIDENCE) -> tuple[float, float, float, int]:
    """(mean, ci_low, ci_high, n): the t-interval of :func:`describe` as a tuple."""
    d = describe(values, confidence)
    return d["mean"], d["ci_low"], d["ci_high"], d["n"]


def paired_difference(values, baseline, confidence: float = CONFIDENCE) -> dict:
    """Mean of values[i] - baseline[i] with its t-interval, over pairs where both are finite.

    Returns diff_mean, diff_ci_low, diff_ci_high and n (the number of pairs used)."""
    a = np.asarray(values, dtype=float).ravel()
    b = np.asarray(baseline, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length ({len(a)} and {len(b)})")
    d = describe(a - b, confidence)
    return {"diff_mean": d["mean"], "diff_ci_low": d["ci_low"], "diff_ci_high": d["ci_high"],
            "n": d["n"]}


# --------------------------------------------------------------------------- risk shares
def risk_shares(cost, results) -> np.ndarray:
    """-Cov(R_p, C)/Var(C) for each column of `results` (shape n×P, or B×n×P for a bootstrap);
    NaN where Var(C) is 0."""
    c = np.asarray(cost, dtype=float)
    r = np.asarray(results, dtype=float)
    dc = c - c.mean(axis=-1, keepdims=True)
    dr = r - r.mean(axis=-2, keepdims=True)
    var = (dc * dc).mean(axis=-1)
    cov = (dr * dc[..., None]).mean(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = -cov / var[..., None]
    return np.where((var > 0)[..., None], out + 0.0, np.nan)  # +0.0: no "-0.0" in CSVs


def _shares_last_axis(cost, results, axis: int = -1) -> np.ndarray:
    """risk_shares in scipy.stats.bootstrap's layout: cost (..., n), results (P, ..., n) with
    replicates on the last axis; returns (P, ...)."""
    assert axis == -1
    c = np.asarray(cost, dtype=float)
    r = np.asarray(results, dtype=float)
    dc = c - c.mean(axis=-1, keepdims=True)
    dr = r - r.mean(axis=-1, keepdims=True)
    var = (dc * dc).mean(axis=-1)
    cov = (dr * dc).mean(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = -cov / var
    return np.where(var > 0, out + 0.0, np.nan)


def bootstrap(samples: Sequence, statistic: Callable, *, seed, paired: bool = True,
              n_resamples: int = BOOTSTRAP_RESAMPLES,
              confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ci_low, ci_high, sd) of a vectorised statistic by `scipy.stats.bootstrap` (percentile
    method), resampling the last axis of every sample (replicates), paired by default.

    `statistic(*samples, axis=-1)` may return one value or a vector per resample. Resamples in
    which the statistic is undefined (NaN: e.g. every drawn replicate the same, so Var(C) = 0)
    are left out of the percentiles and the sd; where none is defined the result is NaN.
    """
    samples = [np.asarray(s, dtype=float) for s in samples]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", _st.DegenerateDataWarning)  # NaN resamples: see below
        res = _st.bootstrap(samples, statistic, n_resamples=n_resamples, vectorized=True,
                            paired=paired, axis=-1, confidence_level=confidence,
                            method="percentile", rng=np.random.default_rng(seed))
    low = np.atleast_1d(np.asarray(res.confidence_interval.low, dtype=float)).copy()
    high = np.atleast_1d(np.asarray(res.confidence_interval.high, dtype=float)).copy()
    dist = np.asarray(res.bootstrap_distribution, dtype=float).reshape(len(low), -1)
    sd = np.full(len(low), np.nan)
    alpha = (1 - confidence) / 2
    for j in range(len(low)):
        b = dist[j][np.isfinite(dist[j])]
        if len(b) > 1:
            sd[j] = float(b.std(ddof=1))
        if not (np.isfinite(low[j]) and np.isfinite(high[j])):
            # scipy's percentiles are NaN when any resample is; take them over defined ones
            low[j], high[j] = ((float(np.quantile(b, alpha)), float(np.quantile(b, 1 - alpha)))
                               if len(b) else (np.nan, np.nan))
    return low, high, sd


def risk_share_interval(cost, results, *, seed, n_resamples: int = BOOTSTRAP_RESAMPLES,
                        confidence: float = CONFIDENCE):
    """Bootstrap (ci_low, ci_high, sd) per party of -Cov(R_p, C)/Var(C); cost (n,), results
    (n, P), resampling replicates (each draw keeps a replicate's cost and results together)."""
    r = np.asarray(results, dtype=float)
    return bootstrap([np.asarray(cost, dtype=float), r.T], _shares_last_axis, seed=seed,
                     n_resamples=n_resamples, confidence=confidence)


def risk_share_difference_interval(cost, results, base_cost, base_results, *, seed,
                                   n_resamples: int = BOOTSTRAP_RESAMPLES,
                                   confidence: float = CONFIDENCE):
    """Paired bootstrap (ci_low, ci_high, sd) per party of share(arrangement) - share(baseline):
    replicate i is drawn for both at once (same seed, common random numbers)."""

    def diff(c, r, bc, br, axis=-1):
        return _shares_last_axis(c, r) - _shares_last_axis(bc, br)

    return bootstrap([np.asarray(cost, dtype=float), np.asarray(results, dtype=float).T,
                      np.asarray(base_cost, dtype=float), np.asarray(base_results, dtype=float).T],
                     diff, seed=seed, n_resamples=n_resamples, confidence=confidence)


# --------------------------------------------------------------------------- tail risk
def proportion(k: int, n: int, confidence: float = CONFIDENCE) -> dict:
    """k events in n runs: the share k/n and its exact (Clopper-Pearson) interval; NaN interval
    below n = 2 and everything NaN at n = 0."""
    k, n = int(k), int(n)
    if n <= 0:
        return {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0}
    if not 0 <= k <= n:
        raise ValueError(f"{k} events in {n} runs")
    out = {"mean": k / n, "ci_low": math.nan, "ci_high": math.nan, "n": n}
    if n >= 2:
        ci = _st.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
        out["ci_low"], out["ci_high"] = float(ci.low), float(ci.high)
    return out


def expected_shortfall(values, alpha: float = 0.05, axis: int = -1) -> np.ndarray | float:
    """Lower-tail expected shortfall: the mean of the worst alpha share of outcomes (results,
    where low is bad), with the boundary outcome weighted fractionally (Acerbi and Tasche 2002,
    "On the coherence of expected shortfall"), along `axis` (vectorised for the bootstrap).
    With fewer than 1/alpha values this is the single worst value."""
    x = np.sort(np.asarray(values, dtype=float), axis=axis)
    x = np.moveaxis(x, axis, -1)
    n = x.shape[-1]
    if n == 0:
        return math.nan
    k = alpha * n
    whole = int(math.floor(k))
    weights = np.zeros(n)
    weights[:whole] = 1.0
    if whole < n:
        weights[whole] = k - whole
    if k < 1:
        weights[:] = 0.0
        weights[0] = 1.0
        k = 1.0
    out = (x * weights).sum(axis=-1) / k
    return float(out) if np.ndim(out) == 0 else out


def expected_shortfall_interval(values, *, seed, alpha: float = 0.05,
                                n_resamples: int = BOOTSTRAP_RESAMPLES,
                                confidence: float = CONFIDENCE):
    """Bootstrap (ci_low, ci_high, sd) of :func:`expected_shortfall`, resampling runs."""
    def stat(x, axis=-1):
        return expected_shortfall(x, alpha, axis=axis)

    low, high, sd = bootstrap([np.asarray(values, dtype=float)], stat, seed=seed,
                              n_resamples=n_resamples, confidence=confidence)
    return float(low[0]), float(high[0]), float(sd[0])


__all__ = ["CONFIDENCE", "BOOTSTRAP_RESAMPLES", "t_quantile", "describe", "mean_ci",
           "paired_difference", "risk_shares", "bootstrap", "risk_share_interval",
           "risk_share_difference_interval", "proportion", "expected_shortfall",
           "expected_shortfall_interval"]
