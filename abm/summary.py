"""Across-replicate statistics: summary.csv, runs.csv, points.csv, sensitivity.csv and, with risk
sources, risk_runs.csv, risk_incidence.csv; tail_risk.csv always.

Everything here works from the small per-task records (final-year values, each party's net
result, system cost), never from the full time series, so it is cheap for any sweep size.
All intervals come from abm.stats (the same path the report uses): 95% t-intervals over
replicates; differences from the experiment's baseline (`baseline:`, default `fragmented`) are
paired by replicate (common random numbers make the pairs share their noise).

The covariance shares (`risk_share.*` rows), share_p = -Cov(R_p, C) / Var(C), are the *share of
variation across the declared uncertainties*: pooled over every run of an arrangement (all sweep
points and replicates), with a paired bootstrap (scipy.stats.bootstrap) for intervals, and a
note saying how much of Var(C) is sampled baseline (the replicates' own populations and demand,
which allocations price in) rather than the swept parameters. Who bears a given risk is the
incidence of paired risk-source runs (abm.risk, risk_incidence.csv), not these shares.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from abm import risk, stats
from abm.definitions import DEFAULT_BASELINE, PARTIES
from abm.stats import describe, risk_shares  # noqa: F401  (re-exported: summary.describe, ...)

if TYPE_CHECKING:  # annotations only: abm.experiment imports this module, not the reverse
    from abm.experiment import Experiment

BASELINE = DEFAULT_BASELINE
BOOTSTRAP = stats.BOOTSTRAP_RESAMPLES
MIN_BOOTSTRAP_N = 5  # below this a resampled Var(C) is often 0 and intervals mislead
BASELINE_NOTE_SHARE = 0.5  # the note says Var(C) is mostly sampled baseline above this share
COVARIANCE_LABEL = "share of variation across the declared uncertainties"
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
    pooled = pooled_risk_shares(runs, arrangements, seed, baseline)
    for point in sorted(finals["point"].unique()):
        at = finals[finals["point"] == point].set_index(["arrangement", "replicate"]).sort_index()
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
            rows.extend({**r, "point": int(point)} for r in pooled[arr])
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def baseline_variance_share(cost: np.ndarray, points: np.ndarray) -> float:
    """Share of Var(C) that lies within sweep points (replicates' sampled baseline: their own
    populations and demand) rather than between them (the declared uncertainties); 1 without a
    sweep, NaN when C does not vary."""
    c = np.asarray(cost, float)
    total = float(((c - c.mean()) ** 2).sum())
    if not total > 0:
        return np.nan
    within = sum(float(((c[points == q] - c[points == q].mean()) ** 2).sum())
                 for q in np.unique(points))
    return within / total


def pooled_risk_shares(runs: pd.DataFrame, arrangements: list[str], seed: int,
                       baseline: str | None = None) -> dict:
    """risk_share.* rows per arrangement, pooled over every run (all sweep points and
    replicates): the share of variation in system cost across the declared uncertainties;
    bootstrap over runs, the difference from `baseline` paired by (point, replicate)."""
    cols = [f"result.{p}" for p in PARTIES]
    money = runs.set_index(["arrangement", "point", "replicate"]).sort_index()
    keys = sorted(set.intersection(*(set(money.loc[a].index) for a in arrangements)))
    n, n_points = len(keys), len({k[0] for k in keys})
    est, data, within = {}, {}, {}
    for arr in arrangements:
        m = money.loc[arr].loc[keys]
        c, r = m["system_cost"].to_numpy(float), m[cols].to_numpy(float)
        data[arr] = (c, r)
        est[arr] = stats.risk_shares(c, r) if n > 1 else np.full(len(PARTIES), np.nan)
        within[arr] = (baseline_variance_share(c, np.array([k[0] for k in keys]))
                       if n > 1 else np.nan)
    runs_word = (f"{n} runs ({n_points} sweep points × replicates)" if n_points > 1
                 else f"{n} replicates")
    out = {}
    for arr in arrangements:
        caveat = ""
        if np.isfinite(within[arr]) and within[arr] >= BASELINE_NOTE_SHARE:
            caveat = (f"; Var(C) is {within[arr]:.0%} sampled baseline (replicates' own "
                      "populations and demand, which allocations price in)"
                      + ("" if n_points > 1 else ": no uncertainties declared")
                      + ", so this is not who bears a given risk (see risk_incidence.csv)")
        note = ("undefined with 1 replicate" if n < 2 else
                "system cost does not vary across replicates" if np.isnan(est[arr]).all() else
                f"{COVARIANCE_LABEL}, pooled over {runs_word}; no interval with fewer than "
                f"{MIN_BOOTSTRAP_N} replicates: too few to read{caveat}" if n < MIN_BOOTSTRAP_N
                else f"{COVARIANCE_LABEL}, pooled over {runs_word}; bootstrap 95% "
                     f"interval{caveat}")
        k = arrangements.index(arr)
        boot = diff = None
        if n >= MIN_BOOTSTRAP_N and not np.isnan(est[arr]).all():
            boot = stats.risk_share_interval(*data[arr], seed=[seed, k, 0])
            if baseline is not None and arr != baseline:
                diff = stats.risk_share_difference_interval(*data[arr], *data[baseline],
                                                            seed=[seed, k, 1])
        rows = []
        for j, party in enumerate(PARTIES):
            row = {"arrangement": arr, "point": 0, "metric": f"risk_share.{party}",
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
            # Saltelli's estimators divide by the variance of the base samples A and B (the first and last
            # row of each group of D + 2): if those all give one value, the indices are undefined (SALib
            # would warn and report 0, i.e. "no sensitivity"), so the metric is left out like a constant one
            ab = y.reshape(-1, len(problem["names"]) + 2)[:, [0, -1]]
            if np.ptp(ab) <= np.finfo(float).eps:
                continue
            res = sobol.analyze(problem, y, calc_second_order=False, seed=seed)
            for j, name in enumerate(problem["names"]):
                rows.append({"arrangement": arr, "metric": metric, "parameter": name,
                             "S1": res["S1"][j], "S1_conf": res["S1_conf"][j],
                             "ST": res["ST"][j], "ST_conf": res["ST_conf"][j]})
    return pd.DataFrame(rows, columns=["arrangement", "metric", "parameter", "S1", "S1_conf",
                                       "ST", "ST_conf"])


def risk_runs_table(risk_metas: list[dict]) -> pd.DataFrame:
    """risk_runs.csv: per paired risk-source run, its ids, system cost and each party's result
    (model £, as runs.csv)."""
    cols = risk.RISK_RUN_IDS + ["system_cost"] + [f"result.{p}" for p in PARTIES]
    return pd.DataFrame([{**{k: m[k] for k in risk.RISK_RUN_IDS}, "system_cost": m["system_cost"],
                          **{f"result.{p}": m["party_results"][p] for p in PARTIES}}
                         for m in risk_metas], columns=cols)


def by_economy(metas: list[dict]) -> list[tuple[str | None, list[dict]]]:
    """The task records split by economy, in the order they first appear: [(None, metas)] for
    a single-economy experiment (its records carry no economy)."""
    names = list(dict.fromkeys(m.get("economy") for m in metas))
    return [(name, [m for m in metas if m.get("economy") == name]) for name in names] or [(None, [])]


def _with_economy(name: str | None, table: pd.DataFrame | None) -> pd.DataFrame | None:
    """`table` with an `economy` first column (unchanged for a single-economy experiment)."""
    if table is None or name is None:
        return table
    table = table.copy()
    table.insert(0, "economy", name)
    return table


def _stack(tables: list[pd.DataFrame | None]) -> pd.DataFrame | None:
    present = [t for t in tables if t is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else pd.concat(present, ignore_index=True)


def write_all(folder: Path, exp: "Experiment", points: list[dict], metas: list[dict],
              baseline: str | None = DEFAULT_BASELINE, risk_metas: list[dict] | None = None) -> None:
    """summary.csv, runs.csv, tail_risk.csv; for sweeps, points.csv and sensitivity.csv; with
    risk sources, risk_runs.csv and risk_incidence.csv. In a study across economies every table
    but points.csv gains an `economy` first column, and every statistic is computed within one
    economy (paired differences pair runs of the same economy, point and replicate)."""
    risk_metas = risk_metas or []
    parts: dict[str, list] = {k: [] for k in ("summary", "runs", "tail", "risk_runs", "incidence", "sens")}
    from abm.sampling import sampled_count
    n_sampled = sampled_count(exp.uncertainties, len(points))
    for name, group in by_economy(metas):
        finals, runs = tables(group)
        arrangements = list(dict.fromkeys(m["arrangement"] for m in group))
        parts["summary"].append(_with_economy(name, summarise(finals, runs, arrangements, exp.seed, baseline)))
        parts["runs"].append(_with_economy(name, runs))
        parts["tail"].append(_with_economy(name, risk.tail_risk(group, exp.months, exp.population_scale,
                                                                seed=exp.seed)))
        if exp.risk_sources:
            specs = risk.resolve(exp.risk_sources)
            risk_runs = risk_runs_table([m for m in risk_metas if m.get("economy") == name])
            parts["risk_runs"].append(_with_economy(name, risk_runs))
            parts["incidence"].append(_with_economy(name, risk.incidence(
                runs, risk_runs, specs, exp.months, exp.population_scale)))
        parts["sens"].append(_with_economy(name, sensitivity(finals[finals["point"] < n_sampled],
                                                             exp, n_sampled)))
    _stack(parts["summary"]).to_csv(folder / "summary.csv", index=False)
    _stack(parts["runs"]).to_csv(folder / "runs.csv", index=False)
    _stack(parts["tail"]).to_csv(folder / "tail_risk.csv", index=False)
    if exp.risk_sources:
        _stack(parts["risk_runs"]).to_csv(folder / "risk_runs.csv", index=False)
        _stack(parts["incidence"]).to_csv(folder / "risk_incidence.csv", index=False)
    if exp.uncertainties is not None:
        pd.DataFrame([{"point": i, **p} for i, p in enumerate(points)]).to_csv(
            folder / "points.csv", index=False)
    sens = _stack(parts["sens"])
    if sens is not None:
        sens.to_csv(folder / "sensitivity.csv", index=False)
