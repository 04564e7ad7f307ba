"""Across-replicate statistics: summary.csv, runs.csv, points.csv and sensitivity.csv.

Everything here works from the small per-task records (final-year values, each party's net
result, system cost), never from the full time series, so it is cheap for any sweep size.
All intervals come from abm.stats (the same path the report uses): 95% t-intervals over
replicates; differences from the experiment's baseline (`baseline:`, default `fragmented`) are
paired by replicate (common random numbers make the pairs share their noise). Risk shares follow
DOMAIN.md §4: share_p = -Cov(R_p, C) / Var(C), with a paired bootstrap (scipy.stats.bootstrap)
for intervals.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from abm import stats
from abm.definitions import DEFAULT_BASELINE, PARTIES
from abm.stats import describe, risk_shares  # noqa: F401  (re-exported: summary.describe, ...)

if TYPE_CHECKING:  # annotations only: abm.experiment imports this module, not the reverse
    from abm.experiment import Experiment

BASELINE = DEFAULT_BASELINE
BOOTSTRAP = stats.BOOTSTRAP_RESAMPLES
MIN_BOOTSTRAP_N = 5  # below this a resampled Var(C) is often 0 and intervals mislead
SUMMARY_COLUMNS = ["arrangement", "point", "metric", "mean", "sd", "ci_low", "ci_high", "n",
                   "diff_mean", "diff_ci_low", "diff_ci_high", "note"]


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
              seed: int, baseline: str | None = DEFAULT_BASELINE) -> pd.DataFrame:
    """One row per (arrangement, point, metric), including risk_share.* rows; diff_* columns
    are paired differences from `baseline` (NaN when it is None or not compared)."""
    if baseline not in arrangements:
        baseline = None
    metrics = _metric_order([c for c in finals.columns
                             if c not in ("arrangement", "point", "replicate", "seed")])
    rows = []
    for point in sorted(finals["point"].unique()):
        at = finals[finals["point"] == point].set_index(["arrangement", "replicate"]).sort_index()
        money = runs[runs["point"] == point].set_index(["arrangement", "replicate"]).sort_index()
        shares = _point_risk_shares(money, arrangements, int(point), seed + int(point), baseline)
        for arr in arrangements:
            base = at.loc[baseline] if baseline is not None and arr != baseline else None
            for metric in metrics:
                x = at.loc[arr, metric]
                row = {"arrangement": arr, "point": int(point), "metric": metric,
                       **stats.describe(x), "diff_mean": np.nan, "diff_ci_low": np.nan,
                       "diff_ci_high": np.nan, "note": ""}
                if base is not None:
                    paired = base[metric].reindex(x.index)  # same replicate, same seed
                    d = stats.paired_difference(x.to_numpy(), paired.to_numpy())
                    row.update(diff_mean=d["diff_mean"], diff_ci_low=d["diff_ci_low"],
                               diff_ci_high=d["diff_ci_high"])
                rows.append(row)
            rows.extend(shares[arr])
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _point_risk_shares(money: pd.DataFrame, arrangements: list[str], point: int,
                       seed: int, baseline: str | None = None) -> dict:
    """risk_share.* rows per arrangement at one point; bootstrap over replicates (the
    difference from `baseline` paired by replicate)."""
    cols = [f"result.{p}" for p in PARTIES]
    reps = sorted(set.intersection(*(set(money.loc[a].index) for a in arrangements)))
    n = len(reps)
    est, data = {}, {}
    for arr in arrangements:
        m = money.loc[arr].loc[reps]
        c, r = m["system_cost"].to_numpy(float), m[cols].to_numpy(float)
        data[arr] = (c, r)
        est[arr] = stats.risk_shares(c, r) if n > 1 else np.full(len(PARTIES), np.nan)
    out = {}
    for arr in arrangements:
        note = ("undefined with 1 replicate" if n < 2 else
                "system cost does not vary across replicates" if np.isnan(est[arr]).all() else
                f"no interval with fewer than {MIN_BOOTSTRAP_N} replicates" if n < MIN_BOOTSTRAP_N
                else "share of system-cost risk borne; bootstrap 95% interval")
        k = arrangements.index(arr)
        boot = diff = None
        if n >= MIN_BOOTSTRAP_N and not np.isnan(est[arr]).all():
            boot = stats.risk_share_interval(*data[arr], seed=[seed, k, 0])
            if baseline is not None and arr != baseline:
                diff = stats.risk_share_difference_interval(*data[arr], *data[baseline],
                                                            seed=[seed, k, 1])
        rows = []
        for j, party in enumerate(PARTIES):
            row = {"arrangement": arr, "point": point, "metric": f"risk_share.{party}",
                   "mean": est[arr][j], "sd": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                   "n": n, "diff_mean": np.nan, "diff_ci_low": np.nan, "diff_ci_high": np.nan,
                   "note": note}
            if boot is not None and not np.isnan(est[arr][j]):
                row["ci_low"], row["ci_high"], row["sd"] = (float(v[j]) for v in boot)
                if diff is not None:
                    row["diff_mean"] = est[arr][j] - est[baseline][j]
                    row["diff_ci_low"], row["diff_ci_high"] = float(diff[0][j]), float(diff[1][j])
            rows.append(row)
        out[arr] = rows
    return out


def sensitivity(finals: pd.DataFrame, exp: "Experiment", n_points: int) -> pd.DataFrame | None:
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
    for arr in list(dict.fromkeys(finals["arrangement"])):
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


def write_all(folder: Path, exp: "Experiment", points: list[dict], metas: list[dict],
              baseline: str | None = DEFAULT_BASELINE) -> None:
    """summary.csv, runs.csv and, for sweeps, points.csv and sensitivity.csv."""
    finals, runs = tables(metas)
    arrangements = list(dict.fromkeys(m["arrangement"] for m in metas))
    summarise(finals, runs, arrangements, exp.seed, baseline).to_csv(folder / "summary.csv",
                                                                      index=False)
    runs.to_csv(folder / "runs.csv", index=False)
    if exp.uncertainties is not None:
        pd.DataFrame([{"point": i, **p} for i, p in enumerate(points)]).to_csv(
            folder / "points.csv", index=False)
    sens = sensitivity(finals, exp, len(points))
    if sens is not None:
        sens.to_csv(folder / "sensitivity.csv", index=False)
