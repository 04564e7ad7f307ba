"""Load a results directory (the documented outputs) into one object the report draws from.

Everything except results.parquet is optional here: a missing file leaves its part of the
report saying so, rather than failing, because `abm report` is also used on partial or old
result directories.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from abm import catalogue
from abm.definitions import (CUMULATIVE_METRICS, DEFAULT_BASELINE, FINAL_YEAR_STEPS,
                             clip_interval)
from abm.stats import mean_ci, paired_difference
from abm.style import arrangement_order

RESULT_COLUMNS = ["experiment", "arrangement", "point", "replicate", "seed", "step", "metric",
                  "value"]


class ReportInputError(ValueError):
    """The results directory lacks what a report needs (message names the file and problem)."""


@dataclass
class ReportData:
    results_dir: Path
    results: pd.DataFrame                      # the headline points only (see `scope`)
    finance: pd.DataFrame | None
    summary: pd.DataFrame | None               # the headline points only
    manifest: dict[str, Any]
    networks: dict[str, nx.MultiDiGraph]
    sensitivity: pd.DataFrame | None
    arrangements: list[str]
    points: list[Any]
    base_point: Any
    notes: list[str] = field(default_factory=list)
    summary_all: pd.DataFrame | None = None     # every sweep point
    point_values: pd.DataFrame | None = None    # points.csv: point, <parameter>... (sweeps)
    baseline: str | None = DEFAULT_BASELINE     # paired differences are taken from this key
    labels: dict[str, str] = field(default_factory=dict)  # arrangement key -> label
    runs: pd.DataFrame | None = None            # runs.csv: per base run, C and each R_p
    risk_runs: pd.DataFrame | None = None       # risk_runs.csv: per paired risk-source run
    risk_incidence: pd.DataFrame | None = None  # risk_incidence.csv (base point only)
    tail_risk: pd.DataFrame | None = None       # tail_risk.csv
    #: which runs the headline findings, the summary table and the time series pool:
    #: "single" (no sweep), "defaults" (the sweep's points at the default parameters) or
    #: "all" (a sweep with no point at the defaults: every point, labelled as such)
    scope: str = "single"
    headline_points: list[Any] = field(default_factory=list)

    def label(self, key: str) -> str:
        """The arrangement's label: as the run recorded it, else the shipped file's."""
        return catalogue.label(key, self.labels)

    @property
    def metrics(self) -> set[str]:
        return set(self.results["metric"].unique())

    @property
    def config(self) -> dict[str, Any]:
        cfg = self.manifest.get("config")
        return cfg if isinstance(cfg, dict) else {}

    @property
    def n_replicates(self) -> int:
        """Runs per arrangement behind the headline figures (replicates, pooled over the
        headline points when there are several)."""
        return int(self.results.groupby("arrangement")["replicate"].nunique().max())

    @property
    def runs_word(self) -> str:
        """'2 replicates' or '16 runs (8 points at the defaults × 2 replicates)'."""
        n, k = self.n_replicates, len(self.headline_points)
        if self.scope == "defaults":
            return (f"{n} runs ({k} points at the defaults × {n // max(k, 1)} replicates)"
                    if k > 1 else f"{n} replicates at the defaults")
        if self.scope == "all":
            return f"{n} runs (all {k} sweep points × {n // max(k, 1)} replicates)"
        return f"{n} replicate{'s' if n != 1 else ''}"

    @property
    def scope_short(self) -> str:
        """A few words for each headline: 'at the defaults', 'all sweep points, not the
        defaults', or '' without a sweep."""
        return {"defaults": "at the defaults",
                "all": "all sweep points pooled, not the defaults"}.get(self.scope, "")

    @property
    def scope_text(self) -> str:
        """Where the headline values come from, for captions: '' without a sweep."""
        if self.scope == "defaults":
            return "at the default parameters"
        if self.scope == "all":
            return ("over all sweep points, not at the defaults (the design has no points at "
                    "the defaults)")
        return ""

    @property
    def n_steps(self) -> int:
        """Months simulated (the config's `months`; else the last step, step 0 being the
        initial state)."""
        months = self.config.get("months")
        if isinstance(months, (int, float)) and months > 0:
            return int(months)
        return int(self.results["step"].max())


def headline_points(points: list[Any], config: dict[str, Any],
                    point_table: pd.DataFrame | None) -> tuple[str, list[Any]]:
    """(scope, points) the headline findings pool: the single point without a sweep; the
    points at the default parameters when the design has them (`uncertainties.defaults`, the
    last points, or points.csv rows that change no parameter); else every point, scope "all"."""
    if len(points) <= 1:
        return "single", list(points)
    unc = config.get("uncertainties") if isinstance(config.get("uncertainties"), dict) else {}
    k = unc.get("defaults") if isinstance(unc, dict) else None
    chosen: list[Any] = []
    if isinstance(k, int) and 0 < k < len(points):
        chosen = list(points[-k:])
    elif point_table is not None and "point" in point_table.columns:
        params = [c for c in point_table.columns if c != "point"]
        if params:
            blank = point_table[params].isna().all(axis=1)
            at = {str(p) for p in point_table.loc[blank, "point"]}
            chosen = [p for p in points if str(p) in at]
    if chosen:
        return "defaults", chosen
    return "all", list(points)


def _pool_replicates(df: pd.DataFrame, ids: dict[tuple[str, int], int]) -> pd.DataFrame:
    """`df` with each (point, replicate) renumbered as one replicate of the pooled set (points
    at the same parameters are replicates with their own seeds; the pairing across
    arrangements, by (point, replicate), is kept)."""
    if "point" not in df.columns or "replicate" not in df.columns:
        return df
    df = df.copy()
    keys = list(zip(df["point"].astype(str), df["replicate"].astype(int)))
    df["replicate"] = [ids.get(k, -1) for k in keys]
    return df


def _choose_base_point(points: list[Any]) -> Any:
    """The base case of a sweep: point 0 / "base" when present, otherwise the first."""
    for candidate in (0, "0", "base", "baseline"):
        for p in points:
            if p == candidate or str(p) == str(candidate):
                return p
    return points[0]


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportInputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    return data if isinstance(data, dict) else {"manifest": data}


def _read_networks(folder: Path) -> dict[str, nx.MultiDiGraph]:
    nets: dict[str, nx.MultiDiGraph] = {}
    if not folder.is_dir():
        return nets
    for f in sorted(folder.glob("*.graphml")):
        g = nx.read_graphml(f, force_multigraph=True)
        if not g.is_directed():
            g = g.to_directed()
        nets[f.stem] = nx.MultiDiGraph(g)
    return nets


def load(results_dir: Path | str) -> ReportData:
    """Read every input file of a results directory; only results.parquet is required."""
    d = Path(results_dir)
    rpath = d / "results.parquet"
    if not rpath.exists():
        raise ReportInputError(f"{rpath}: missing (a results directory holds results.parquet, "
                               "written by `abm run`)")
    results = pd.read_parquet(rpath)
    missing = [c for c in ("arrangement", "replicate", "step", "metric", "value")
               if c not in results.columns]
    if missing:
        raise ReportInputError(f"{rpath}: missing columns {', '.join(missing)}; expected "
                               f"{', '.join(RESULT_COLUMNS)}")
    if results.empty:
        raise ReportInputError(f"{rpath}: has no rows")
    if "point" not in results.columns:
        results["point"] = 0
    results["arrangement"] = results["arrangement"].astype(str)
    results["metric"] = results["metric"].astype(str)
    results["value"] = pd.to_numeric(results["value"], errors="coerce")

    points = sorted(results["point"].unique().tolist(), key=lambda p: (str(type(p)), p))
    manifest = _read_manifest(d / "manifest.json")
    cfg = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
    ppath = d / "points.csv"
    point_table = pd.read_csv(ppath) if ppath.exists() else None
    scope, chosen = headline_points(points, cfg, point_table)
    base = chosen[0] if scope == "defaults" else _choose_base_point(points)
    at = {str(p) for p in chosen}
    pooled = len(chosen) > 1
    ids: dict[tuple[str, int], int] = {}
    if pooled:
        pairs = results.loc[results["point"].astype(str).isin(at), ["point", "replicate"]]
        pairs = sorted(set(zip(pairs["point"].astype(str), pairs["replicate"].astype(int))),
                       key=lambda k: (points.index(next(p for p in points if str(p) == k[0])),
                                      k[1]))
        ids = {k: i for i, k in enumerate(pairs)}
    notes: list[str] = []
    results = results[results["point"].astype(str).isin(at)].reset_index(drop=True)
    if pooled:
        results = _pool_replicates(results, ids)

    finance = None
    fpath = d / "finance.parquet"
    if fpath.exists():
        finance = pd.read_parquet(fpath)
        if "point" in finance.columns:
            finance = finance[finance["point"].astype(str).isin(at)]
            if pooled:
                finance = _pool_replicates(finance, ids)
        finance = finance.reset_index(drop=True)
        if "arrangement" in finance.columns:
            finance["arrangement"] = finance["arrangement"].astype(str)

    summary = summary_all = None
    spath = d / "summary.csv"
    if spath.exists():
        summary = summary_all = pd.read_csv(spath)
        if "arrangement" in summary_all.columns:
            summary_all["arrangement"] = summary_all["arrangement"].astype(str)
        if "point" in summary.columns and len(summary):
            if pooled:  # per-point rows cannot be pooled: the table recomputes them from the
                # runs; the covariance shares, pooled over every run already, are kept
                keep = (summary["point"].astype(str) == str(chosen[0])) & summary[
                    "metric"].astype(str).str.startswith("risk_share.")
                summary = summary[keep]
            else:
                same = summary["point"].astype(str) == str(base)
                summary = summary[same] if same.any() else summary
        summary = summary.reset_index(drop=True)
        if "arrangement" in summary.columns:
            summary["arrangement"] = summary["arrangement"].astype(str)

    sensitivity = None
    for name in ("sensitivity.csv", "sensitivity.parquet"):
        p = d / name
        if p.exists():
            sensitivity = pd.read_csv(p) if p.suffix == ".csv" else pd.read_parquet(p)
            if sensitivity.empty:
                sensitivity = None
            break

    point_values = point_table
    if point_values is not None and ("point" not in point_values.columns
                                     or len(point_values) < 2):
        point_values = None
    has_risk = (d / "risk_runs.csv").is_file() or (d / "risk_incidence.csv").is_file()
    if len(points) > 1:
        n_rep = int(results.groupby("arrangement")["replicate"].nunique().max())
        if scope == "defaults":
            notes.append(
                f"The experiment has {len(points)} sweep points, {len(chosen)} of them at the "
                "default parameters (uncertainties.defaults). The headline findings, the "
                "final-year table, the time series and the GP figures are at the defaults: "
                + (f"those {len(chosen)} points pooled, {n_rep} runs per arrangement. "
                   if pooled else f"point {chosen[0]}, {n_rep} replicates. ")
                + (f"The incidence of the risk sources is shown at point {base}. "
                   if has_risk else "")
                + "The Sensitivity section uses every sampled point.")
        else:
            notes.append(
                f"The experiment has {len(points)} sweep points and none at the default "
                "parameters (add `defaults:` under `uncertainties` for headlines at the "
                "defaults). The headline findings, the final-year table, the time series and "
                f"the GP figures therefore pool all {len(points)} points, {n_rep} runs per "
                "arrangement: their intervals include the variation of the swept parameters "
                "as well as chance, and they are not results at the defaults.")
            if has_risk and point_values is not None:
                row = point_values[point_values["point"].astype(str) == str(base)]
                vals = ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}"
                                 for k, v in row.iloc[0].items() if k != "point") if len(row) else ""
                notes.append(f"The incidence of the risk sources is shown at sweep point {base}"
                             + (f" ({vals})." if vals else "."))

    networks = _read_networks(d / "networks")
    runs, risk_runs, incidence, tail = (_read_csv(d / f) for f in (
        "runs.csv", "risk_runs.csv", "risk_incidence.csv", "tail_risk.csv"))
    if incidence is not None and "point" in incidence.columns:
        same = incidence["point"].astype(str) == str(base)
        incidence = incidence[same].reset_index(drop=True) if same.any() else incidence

    recorded = [a for a in manifest.get("arrangements") or [] if isinstance(a, dict)
                and "key" in a]
    declared = [str(a["key"]) for a in recorded]
    if not declared and isinstance(manifest.get("config"), dict):
        declared = [catalogue.key_of(a) if not catalogue.is_path(a) or Path(a).is_file()
                    else Path(a).stem for a in manifest["config"].get("arrangements") or []]
    present = results["arrangement"].unique().tolist()
    keys = [k for k in declared if k in present] + [k for k in present if k not in declared]
    arrangements = arrangement_order(keys)
    labels = {str(a["key"]): str(a["label"]) for a in recorded if a.get("label")}
    baseline = _baseline(manifest, arrangements)

    return ReportData(results_dir=d, results=results, finance=finance, summary=summary,
                      manifest=manifest, networks=networks, sensitivity=sensitivity,
                      arrangements=arrangements, points=points, base_point=base, notes=notes,
                      summary_all=summary_all, point_values=point_values, baseline=baseline,
                      labels=labels, runs=runs, risk_runs=risk_runs, risk_incidence=incidence,
                      tail_risk=tail, scope=scope, headline_points=chosen)


def _read_csv(path: Path) -> pd.DataFrame | None:
    """An optional CSV (None when absent or empty); arrangement keys as text."""
    if not path.is_file():
        return None
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return None
    if "arrangement" in df.columns:
        df["arrangement"] = df["arrangement"].astype(str)
    if "note" in df.columns:
        df["note"] = df["note"].astype(object).where(df["note"].notna(), "").astype(str)
    return df


def _baseline(manifest: dict[str, Any], arrangements: list[str]) -> str | None:
    """The baseline the run recorded (manifest `baseline`, or its config's), else `fragmented`
    when it is among the results; None when there is none to compare with."""
    cfg = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
    if "baseline" in manifest:
        chosen = manifest["baseline"]
    else:
        chosen = cfg.get("baseline") or DEFAULT_BASELINE
    return str(chosen) if chosen is not None and str(chosen) in arrangements else None


# --------------------------------------------------------------------------- statistics helpers
# Intervals come from abm.stats, the path summary.csv uses too (mean_ci is re-exported here).

def final_values(results: pd.DataFrame) -> pd.DataFrame:
    """Each (arrangement, replicate, metric)'s final-year value, defined as abm.experiment
    does: the last step for cumulative metrics, else the mean of the last 12 monthly steps
    (step 0, the initial state, excluded)."""
    cumulative, k = CUMULATIVE_METRICS, FINAL_YEAR_STEPS
    r = results
    if r["step"].nunique() > 1:
        r = r[r["step"] > r["step"].min()]
    keys = ["arrangement", "replicate", "metric"]
    r = r.sort_values(keys + ["step"])
    last = r.groupby(keys, sort=False).tail(1).set_index(keys)
    tail = r.groupby(keys, sort=False).tail(k).groupby(keys)["value"].mean()
    out = last.copy()
    is_cum = out.index.get_level_values("metric").isin(list(cumulative))
    out["value"] = np.where(is_cum, out["value"], tail.reindex(out.index).to_numpy())
    cols = [c for c in ("seed", "value") if c in out.columns]
    return out[cols].reset_index()


_BASELINE_OF_DATA = object()


def headline_table(data: ReportData, baseline: str | None | object = _BASELINE_OF_DATA
                   ) -> pd.DataFrame:
    """Per (arrangement, metric): mean, ci_low, ci_high, n, diff_mean, diff_ci_low, diff_ci_high.

    Taken from summary.csv when it has the rows; metrics summary.csv lacks are computed here
    from results.parquet (final-year value over replicates; differences from the run's
    baseline, `data.baseline` unless given, paired by replicate, which share a seed under
    common random numbers).
    """
    if baseline is _BASELINE_OF_DATA:
        baseline = data.baseline
    rows: list[dict[str, Any]] = []
    have: set[tuple[str, str]] = set()
    s = data.summary
    if s is not None and {"arrangement", "metric", "mean"} <= set(s.columns):
        for rec in s.to_dict("records"):
            r = {k: rec.get(k, math.nan) for k in ("arrangement", "metric", "mean", "sd",
                                                     "ci_low", "ci_high", "n", "diff_mean",
                                                     "diff_ci_low", "diff_ci_high")}
            r["arrangement"] = str(r["arrangement"])
            rows.append(r)
            have.add((r["arrangement"], str(r["metric"])))

    fin = final_values(data.results)
    # pooled points are renumbered replicates (pairs keep their (point, replicate)); else the seed
    key = ("seed" if "seed" in fin.columns and len(data.headline_points) <= 1 else "replicate")
    base = fin[fin["arrangement"] == baseline].set_index(["metric", key])["value"]
    for (arr, metric), grp in fin.groupby(["arrangement", "metric"]):
        if (arr, metric) in have:
            continue
        m, lo, hi, n = mean_ci(grp["value"])
        sd = float(grp["value"].std(ddof=1)) if n > 1 else math.nan
        r = dict(arrangement=arr, metric=metric, mean=m, sd=sd, ci_low=lo, ci_high=hi, n=n,
                 diff_mean=math.nan, diff_ci_low=math.nan, diff_ci_high=math.nan)
        if arr != baseline and len(base):
            b = base.reindex(pd.MultiIndex.from_arrays([[metric] * len(grp), grp[key]]))
            d = paired_difference(grp["value"].to_numpy(), b.to_numpy())
            r.update(diff_mean=d["diff_mean"], diff_ci_low=d["diff_ci_low"],
                     diff_ci_high=d["diff_ci_high"])
        elif arr == baseline:
            r.update(diff_mean=0.0, diff_ci_low=0.0, diff_ci_high=0.0)
        rows.append(r)
    out = pd.DataFrame(rows)
    for c in ("mean", "sd", "ci_low", "ci_high", "n", "diff_mean", "diff_ci_low",
              "diff_ci_high"):
        out[c] = pd.to_numeric(out[c], errors="coerce")
    if len(out):  # a t-interval never reaches outside what the metric can take
        ends = [clip_interval(str(m), lo, hi) for m, lo, hi in
                zip(out["metric"], out["ci_low"], out["ci_high"])]
        out["ci_low"] = [e[0] for e in ends]
        out["ci_high"] = [e[1] for e in ends]
    return out


def quantile_bands(results: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Median and 10th/90th percentiles across replicates per (arrangement, metric, step)."""
    sub = results[results["metric"].isin(metrics)]
    if sub["step"].nunique() > 1:
        sub = sub[sub["step"] > sub["step"].min()]  # step 0 is the initial state, not a month
    if sub.empty:
        return pd.DataFrame(columns=["arrangement", "metric", "step", "q10", "median", "q90"])
    g = sub.groupby(["arrangement", "metric", "step"])["value"]
    out = pd.DataFrame({"q10": g.quantile(0.1), "median": g.median(), "q90": g.quantile(0.9)})
    return out.reset_index()


def sweep_tornado(data: ReportData, metrics: list[str], max_params: int = 12) -> pd.DataFrame:
    """Tornado rows (arrangement, metric, parameter, low, high, base) for any sweep design.

    For each parameter, `low` is the mean over sweep points in the lowest third of that
    parameter's values and `high` the mean over the highest third (the extreme levels of a
    3-level grid exactly); `base` is the mean over all points. Per-point values are the
    replicate means of summary.csv. Taken as-is instead when sensitivity.csv has low/high.
    """
    s = data.sensitivity
    if s is not None and {"parameter", "metric", "low", "high"} <= set(s.columns):
        t = s[pd.to_numeric(s["low"], errors="coerce").notna()
              & pd.to_numeric(s["high"], errors="coerce").notna()].copy()
        if len(t):
            t["low"] = pd.to_numeric(t["low"], errors="coerce")
            t["high"] = pd.to_numeric(t["high"], errors="coerce")
            t["base"] = pd.to_numeric(t["base"], errors="coerce") if "base" in t else np.nan
            t["base"] = t["base"].fillna((t["low"] + t["high"]) / 2)
            if "arrangement" not in t.columns:
                t["arrangement"] = "all"
            return t[["arrangement", "metric", "parameter", "low", "high", "base"]]
    pv, sa = data.point_values, data.summary_all
    if pv is None or sa is None or "point" not in sa.columns:
        return pd.DataFrame(columns=["arrangement", "metric", "parameter", "low", "high", "base"])
    params = [c for c in pv.columns if c != "point"
              and pd.to_numeric(pv[c], errors="coerce").notna().all() and pv[c].nunique() > 1]
    params = params[:max_params]
    sub = sa[sa["metric"].isin(metrics)][["arrangement", "point", "metric", "mean"]]
    merged = sub.merge(pv, on="point", how="inner")
    rows = []
    for p in params:
        x = pd.to_numeric(merged[p], errors="coerce")
        lo_cut, hi_cut = x.quantile(1 / 3), x.quantile(2 / 3)
        for (arr, metric), g in merged.groupby(["arrangement", "metric"]):
            xg = pd.to_numeric(g[p], errors="coerce")
            low = g.loc[xg <= lo_cut, "mean"].mean()
            high = g.loc[xg >= hi_cut, "mean"].mean()
            rows.append(dict(arrangement=arr, metric=metric, parameter=p, low=low, high=high,
                             base=g["mean"].mean()))
    out = pd.DataFrame(rows, columns=["arrangement", "metric", "parameter", "low", "high", "base"])
    return out.dropna(subset=["low", "high"])
