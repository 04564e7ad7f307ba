"""Across-replicate statistics: summary.csv, runs.csv, points.csv and sensitivity.csv.

Everything here works from the small per-task records (final-year values, each party's net
result, system cost), never from the full time series, so it is cheap for any sweep size.
Intervals are 95% t-intervals over replicates; differences from `fragmented` are paired by
replicate (common random numbers make the pairs share their noise). Risk shares follow
DOMAIN.md §4: share_p = -Cov(R_p, C) / Var(C), with a paired bootstrap for intervals.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from abm.experiment import PARTIES, Experiment

BASELINE = "fragmented"
BOOTSTRAP = 2000
MIN_BOOTSTRAP_N = 5  # below this a resampled Var(C) is often 0 and intervals mislead
SUMMARY_COLUMNS = ["arrangement", "point", "metric", "mean", "sd", "ci_low", "ci_high", "n",
                   "diff_mean", "diff_ci_low", "diff_ci_high", "note"]


def describe(values) -> dict:
    """mean, sd, 95% t-interval and n of the finite values (NaN where undefined)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return {"mean": np.nan, "sd": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n": 0}
    mean = float(x.mean())
    if n == 1:
        return {"mean": mean, "sd": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n": 1}
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / np.sqrt(n)
    return {"mean": mean, "sd": sd, "ci_low": mean - half, "ci_high": mean + half, "n": n}


def risk_shares(cost, results) -> np.ndarray:
    """-Cov(R_p, C)/Var(C) for each column of `results` (shape n×P, or B×n×P for a bootstrap)."""
    c = np.asarray(cost, dtype=float)
    r = np.asarray(results, dtype=float)
    dc = c - c.mean(axis=-1, keepdims=True)
    dr = r - r.mean(axis=-2, keepdims=True)
    var = (dc * dc).mean(axis=-1)
    cov = (dr * dc[..., None]).mean(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = -cov / var[..., None]
    return np.where((var > 0)[..., None], out + 0.0, np.nan)  # +0.0: no "-0.0" in CSVs


def tables(metas: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(finals, runs): per task, the final-year metric values and the money per party."""
    ids = ["arrangement", "point", "replicate", "seed"]
    finals = pd.DataFrame([{**{k: m[k] for k in ids}, **m["final"]} for m in metas])
    runs = pd.DataFrame([{**{k: m[k] for k in ids}, "system_cost": m["system_cost"],
                          **{f"result.{p}": m["party_results"][p] for p in PARTIES}}
                         for m in metas])
    return finals, runs


def _metric_order(columns) -> list[str]:
    try:
        from abm.metrics import METRIC_NAMES
    except ImportError:
        METRIC_NAMES = ()
    known = [m for m in METRIC_NAMES if m in columns]
    return known + [c for c in columns if c not in known]


def summarise(finals: pd.DataFrame, runs: pd.DataFrame, arrangements: list[str],
              seed: int) -> pd.DataFrame:
    """One row per (arrangement, point, metric), including risk_share.* rows."""
    metrics = _metric_order([c for c in finals.columns
                             if c not in ("arrangement", "point", "replicate", "seed")])
    rows = []
    for point in sorted(finals["point"].unique()):
        at = finals[finals["point"] == point].set_index(["arrangement", "replicate"]).sort_index()
        money = runs[runs["point"] == point].set_index(["arrangement", "replicate"]).sort_index()
        shares = _point_risk_shares(money, arrangements, int(point), seed + int(point))
        for arr in arrangements:
            base = at.loc[BASELINE] if BASELINE in arrangements and arr != BASELINE else None
            for metric in metrics:
                x = at.loc[arr, metric]
                row = {"arrangement": arr, "point": int(point), "metric": metric, **describe(x),
                       "diff_mean": np.nan, "diff_ci_low": np.nan, "diff_ci_high": np.nan,
                       "note": ""}
                if base is not None:
                    d = describe((x - base[metric]).to_numpy())
                    row.update(diff_mean=d["mean"], diff_ci_low=d["ci_low"], diff_ci_high=d["ci_high"])
                rows.append(row)
            rows.extend(shares[arr])
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _point_risk_shares(money: pd.DataFrame, arrangements: list[str], point: int,
                       seed: int) -> dict:
    """risk_share.* rows per arrangement at one point; paired bootstrap over replicates."""
    cols = [f"result.{p}" for p in PARTIES]
    reps = sorted(set.intersection(*(set(money.loc[a].index) for a in arrangements)))
    n = len(reps)
    idx = np.random.default_rng(seed).integers(0, n, size=(BOOTSTRAP, n)) if n > 1 else None
    est, boot = {}, {}
    for arr in arrangements:
        m = money.loc[arr].loc[reps]
        c, r = m["system_cost"].to_numpy(float), m[cols].to_numpy(float)
        est[arr] = risk_shares(c, r) if n > 1 else np.full(len(PARTIES), np.nan)
        boot[arr] = risk_shares(c[idx], r[idx]) if n > 1 else None
    out = {}
    for arr in arrangements:
        note = ("undefined with 1 replicate" if n < 2 else
                "system cost does not vary across replicates" if np.isnan(est[arr]).all() else
                f"no interval with fewer than {MIN_BOOTSTRAP_N} replicates" if n < MIN_BOOTSTRAP_N
                else "share of system-cost risk borne; bootstrap 95% interval")
        rows = []
        for j, party in enumerate(PARTIES):
            row = {"arrangement": arr, "point": point, "metric": f"risk_share.{party}",
                   "mean": est[arr][j], "sd": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                   "n": n, "diff_mean": np.nan, "diff_ci_low": np.nan, "diff_ci_high": np.nan,
                   "note": note}
            if n >= MIN_BOOTSTRAP_N and not np.isnan(est[arr][j]):
                b = boot[arr][:, j]
                row["sd"] = float(np.nanstd(b, ddof=1))
                row["ci_low"], row["ci_high"] = _percentiles(b)
                if BASELINE in arrangements and arr != BASELINE:
                    row["diff_mean"] = est[arr][j] - est[BASELINE][j]
                    row["diff_ci_low"], row["diff_ci_high"] = _percentiles(b - boot[BASELINE][:, j])
            rows.append(row)
        out[arr] = rows
    return out


def _percentiles(b: np.ndarray) -> tuple[float, float]:
    b = b[np.isfinite(b)]
    if len(b) == 0:
        return np.nan, np.nan
    lo, hi = np.percentile(b, [2.5, 97.5])
    return float(lo), float(hi)


def sensitivity(finals: pd.DataFrame, exp: Experiment, n_points: int) -> pd.DataFrame | None:
    """Sobol first-order and total indices (SALib) of each arrangement's mean final-year value."""
    unc = exp.uncertainties
    if unc is None or unc.method != "sobol":
        return None
    from SALib.analyze import sobol
    from abm.sampling import salib_problem
    problem = salib_problem(unc.parameters)
    seed = exp.seed if unc.seed is None else unc.seed
    rows = []
    metrics = [c for c in finals.columns if c not in ("arrangement", "point", "replicate", "seed")]
    for arr in exp.arrangements:
        means = finals[finals["arrangement"] == arr].groupby("point")[metrics].mean()
        means = means.reindex(range(n_points))
        for metric in _metric_order(metrics):
            y = means[metric].to_numpy(float)
            if not np.isfinite(y).all() or np.ptp(y) == 0:
                continue
            res = sobol.analyze(problem, y, calc_second_order=False, seed=seed)
            for j, name in enumerate(problem["names"]):
                rows.append({"arrangement": arr, "metric": metric, "parameter": name,
                             "S1": res["S1"][j], "S1_conf": res["S1_conf"][j],
                             "ST": res["ST"][j], "ST_conf": res["ST_conf"][j]})
    return pd.DataFrame(rows, columns=["arrangement", "metric", "parameter", "S1", "S1_conf",
                                       "ST", "ST_conf"])


def write_all(folder: Path, exp: Experiment, points: list[dict], metas: list[dict]) -> None:
    finals, runs = tables(metas)
    summarise(finals, runs, exp.arrangements, exp.seed).to_csv(folder / "summary.csv", index=False)
    runs.to_csv(folder / "runs.csv", index=False)
    if exp.uncertainties is not None:
        pd.DataFrame([{"point": i, **p} for i, p in enumerate(points)]).to_csv(
            folder / "points.csv", index=False)
    sens = sensitivity(finals, exp, len(points))
    if sens is not None:
        sens.to_csv(folder / "sensitivity.csv", index=False)
