"""Robustness of conclusions: does each headline comparison keep its sign across the assumption
register's plausible ranges? (robustness.csv)

An experiment with `uncertainties:` samples the assumptions' ranges (configs/parameters.yaml
`range`, the assumption register; `uncertainties_from_register` builds the block) and, with
`defaults: k`, adds k points at the default parameters after the sampled ones. For each
arrangement A other than the baseline B and each headline metric m:

- the paired difference d(p) = m(A, p) − m(B, p) at every point p (same point, same seed;
  the mean over replicates when a point has several), read from summary.csv's `diff_mean`;
- `sign_at_default`: the sign of the mean of d over the default points (with its t-interval,
  `default_ci_low`/`default_ci_high`, over those points, which differ only in their seeds);
- `share_sign_holds`: the share of sampled points whose sign of d equals `sign_at_default`
  (a difference of exactly zero has sign 0, e.g. no failures under either arrangement);
- where that share is below ROBUST_SHARE (0.9), the region of the assumption space responsible,
  by scenario discovery: PRIM (Friedman & Fisher 1999, "Bump hunting in high-dimensional data",
  Statistics and Computing 9:123-143) from the EMA Workbench (Kwakkel 2017, Environmental
  Modelling & Software 96:239-250; `ema_workbench.analysis.prim`) on the sampled points, with the
  cases of interest the points where the sign does not hold. `region` is the box's restricted
  dimensions, `region_coverage` the share of sign-failing points inside it and
  `region_density` the share of points inside it whose sign fails.

With one replicate per point the sign at a point includes that seed's noise, so a difference
that is small beside the noise shows as not robust: read `default_ci_*` beside the share.
"""
from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from abm import stats
from abm.definitions import DEFAULT_BASELINE

#: The headline comparisons (final-year values as summary.csv defines them).
HEADLINE_METRICS = ("emergency_admissions_per_1000", "cost_per_capita", "integrated_handoff_share",
                    "continuity_of_care", "transaction_cost_share", "provider_failures")
SHORT = {"emergency_admissions_per_1000": "emergency", "cost_per_capita": "cost",
         "integrated_handoff_share": "integration", "continuity_of_care": "continuity",
         "transaction_cost_share": "transaction", "provider_failures": "failures",
         "holder_side_share.activity": "holder bears activity risk"}
#: A conclusion is robust when its sign holds in at least this share of the assumption space.
ROBUST_SHARE = 0.9
#: Below this density the note says the sign fails across the space rather than in a region.
PRIM_DENSITY = 0.8
PRIM_MAX_DIMS = 3  # the region restricts at most this many assumptions (readable)
MIN_POINTS_FOR_PRIM = 10
FILE = "robustness.csv"
COLUMNS = ["comparison", "arrangement", "baseline", "metric", "sign_at_default", "default_diff",
           "default_ci_low", "default_ci_high", "n_default", "share_sign_holds", "n", "robust",
           "region", "region_coverage", "region_density", "region_mass", "note"]


# --------------------------------------------------------------------------- the design
def uncertainties_from_register(names: Iterable[str], method: str = "lhs", samples: int = 200,
                                defaults: int = 8, seed: int | None = None,
                                tree: dict | None = None) -> dict:
    """The `uncertainties:` block of an experiment sweeping the named assumptions over their
    register ranges (`range: [low, high]`; integer leaves get `integer: true`)."""
    from abm.params import SCALE_SUFFIX, default_parameters, flatten
    leaves = flatten(default_parameters() if tree is None else tree)
    params: dict[str, Any] = {}
    for name in names:
        if name.endswith(SCALE_SUFFIX):            # a mapping, swept by a multiplier on every entry
            leaf = leaves.get(name[:-len(SCALE_SUFFIX)])
            if leaf is None or "range_scale" not in leaf:
                raise ValueError(f"{name}: not a mapping parameter with a `range_scale` in the register")
            lo, hi = leaf["range_scale"]
            params[name] = {"low": float(lo), "high": float(hi)}
            continue
        leaf = leaves.get(name)
        if leaf is None or "range" not in leaf:
            raise ValueError(f"{name}: not a parameter with a scalar `range` in the register"
                             + (f" (a mapping: sweep {name}{SCALE_SUFFIX})" if leaf is not None
                                and "range_scale" in leaf else ""))
        lo, hi = leaf["range"]
        spec: dict[str, Any] = {"low": float(lo), "high": float(hi)}
        if isinstance(leaf["value"], int) and not isinstance(leaf["value"], bool):
            spec["integer"] = True
        params[name] = spec
    block: dict[str, Any] = {"method": method, "samples": samples, "defaults": defaults,
                             "parameters": params}
    if seed is not None:
        block["seed"] = seed
    return block


INCONCLUSIVE = "inconclusive at the defaults"

# --------------------------------------------------------------------------- signs and shares
def sign(x, tol: float = 1e-12) -> np.ndarray:
    """-1, 0 or 1; |x| at most tol (relative to 1) counts as 0; NaN stays NaN."""
    a = np.asarray(x, dtype=float)
    out = np.sign(a)
    out[np.abs(a) <= tol] = 0.0
    return out


def share_sign_holds(diffs, sign_default: float) -> tuple[float, int]:
    """(share of finite diffs whose sign equals sign_default, how many were finite)."""
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    if not len(d) or not np.isfinite(sign_default):
        return np.nan, int(len(d))
    return float(np.mean(sign(d) == sign_default)), int(len(d))


# --------------------------------------------------------------------------- PRIM
def _fmt(x: float) -> str:
    return f"{x:.3g}"


def find_region(x: pd.DataFrame, y, max_dims: int = PRIM_MAX_DIMS) -> dict:
    """Scenario discovery with PRIM (ema_workbench): the box in `x` (sampled assumptions) where
    the boolean `y` (cases of interest) concentrates. Returns region (text), coverage, density,
    mass. The box is the one on the peeling-and-pasting trajectory with the best balance of
    coverage and density (their harmonic mean; the trade-off of Bryant & Lempert 2010,
    Technological Forecasting and Social Change 77:34-49), then simplified to at most
    `max_dims` restricted assumptions by dropping, one at a time, the restriction whose removal
    costs that balance least; coverage, density and mass are those of the simplified box."""
    y = np.asarray(y, dtype=bool)
    empty = {"region": "", "coverage": np.nan, "density": np.nan, "mass": np.nan}
    if y.sum() == 0 or y.all() or len(y) < MIN_POINTS_FOR_PRIM:
        return empty
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ema_workbench.analysis import prim
    logging.getLogger("EMA").setLevel(logging.WARNING)
    x = x.reset_index(drop=True).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = prim.Prim(x, y.astype(int), peel_alpha=0.05, paste_alpha=0.05, mass_min=0.05)
        box = p.find_box()
    if box is None:
        return empty
    traj = box.peeling_trajectory.reset_index(drop=True)
    init = p.box_init
    cand = traj[traj["res_dim"] >= 1]
    if cand.empty:
        return empty
    c, d = cand["coverage"].astype(float), cand["density"].astype(float)
    i = int((2 * c * d / (c + d)).idxmax())
    lims = box.box_lims[i]
    limits = {}
    for col in x.columns:
        lo, hi = float(lims.loc[0, col]), float(lims.loc[1, col])
        lo0, hi0 = float(init.loc[0, col]), float(init.loc[1, col])
        if lo > lo0 or hi < hi0:
            limits[col] = (lo if lo > lo0 else None, hi if hi < hi0 else None)
    limits = _simplify(x, y, limits, max_dims)
    stats_ = _box_stats(x, y, limits)
    parts = []
    for col, (lo, hi) in limits.items():
        if lo is not None and hi is not None:
            parts.append(f"{_fmt(lo)} <= {col} <= {_fmt(hi)}")
        elif lo is not None:
            parts.append(f"{col} >= {_fmt(lo)}")
        else:
            parts.append(f"{col} <= {_fmt(hi)}")
    return {"region": " and ".join(parts), **stats_}


def _in_box(x: pd.DataFrame, limits: dict) -> np.ndarray:
    inside = np.ones(len(x), bool)
    for col, (lo, hi) in limits.items():
        v = x[col].to_numpy(float)
        if lo is not None:
            inside &= v >= lo
        if hi is not None:
            inside &= v <= hi
    return inside


def _box_stats(x: pd.DataFrame, y: np.ndarray, limits: dict) -> dict:
    inside = _in_box(x, limits)
    k = int(inside.sum())
    return {"coverage": float((y & inside).sum() / max(y.sum(), 1)),
            "density": float((y & inside).sum() / k) if k else np.nan,
            "mass": float(k / len(y))}


def _f1(st: dict) -> float:
    c, d = st["coverage"], st["density"]
    return 0.0 if not (c + d) > 0 or not np.isfinite(d) else 2 * c * d / (c + d)


def _simplify(x: pd.DataFrame, y: np.ndarray, limits: dict, max_dims: int) -> dict:
    """Drop restricted dimensions one at a time, each time the one whose removal keeps the
    best balance of coverage and density, until at most `max_dims` remain (a readable box)."""
    limits = dict(limits)
    while len(limits) > max_dims:
        best = max(limits, key=lambda col: _f1(_box_stats(
            x, y, {k: v for k, v in limits.items() if k != col})))
        del limits[best]
    return limits


# --------------------------------------------------------------------------- the table
def robustness_table(diffs: pd.DataFrame, points: pd.DataFrame, default_points: Iterable[int],
                     baseline: str, metrics: Iterable[str] = HEADLINE_METRICS) -> pd.DataFrame:
    """robustness.csv rows from `diffs` (columns arrangement, point, metric, diff_mean: the
    paired difference from `baseline` at each point) and `points` (one row per sampled point,
    column `point` plus the swept assumptions); `default_points` are the points at the
    defaults."""
    default_points = set(int(p) for p in default_points)
    sampled, x = _sampled(points, default_points)
    rows = []
    arrangements = [a for a in dict.fromkeys(diffs["arrangement"]) if a != baseline]
    for arr in arrangements:
        for metric in metrics:
            d = diffs[(diffs["arrangement"] == arr) & (diffs["metric"] == metric)]
            if d.empty:
                continue
            d = d.groupby("point")["diff_mean"].mean()
            rows.append(_conclusion(f"{arr} vs {baseline}: {metric}", arr, baseline, metric, d,
                                    default_points, sampled, x))
    return pd.DataFrame(rows, columns=COLUMNS)


def _sampled(points: pd.DataFrame, default_points: set[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sampled points (not at the defaults) and their numeric assumption values."""
    sampled = points[~points["point"].isin(default_points)].set_index("point").sort_index()
    return sampled, sampled.select_dtypes("number")


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _conclusion(comparison: str, arr: str, baseline: str, metric: str, by_point: pd.Series,
                default_points: set[int], sampled: pd.DataFrame, x: pd.DataFrame,
                pivot: float = 0.0, note: str = "") -> dict:
    """One robustness.csv row: the sign of (value − pivot) at the defaults, the share of sampled points
    where it holds and, where that share is below ROBUST_SHARE, the PRIM region responsible."""
    at_default = by_point[by_point.index.isin(default_points)].dropna().to_numpy(float)
    desc = stats.describe(at_default) if len(at_default) else {
        "mean": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n": 0}
    s0 = float(sign([desc["mean"] - pivot])[0]) if np.isfinite(desc["mean"]) else np.nan
    sweep = by_point.reindex(sampled.index).to_numpy(float) - pivot
    inconclusive = bool(s0 != 0 and len(at_default) > 1 and desc["ci_low"] <= pivot <= desc["ci_high"])
    if inconclusive:
        # the defaults do not separate it from the pivot, so no sign is claimed there and the row is
        # never robust; the share says where sampled points, too, sit within one run's noise (the
        # spread of the runs at the defaults) of the pivot
        s0 = 0.0
        band = 1.96 * float(np.std(at_default, ddof=1))
        sweep = np.where(np.abs(sweep) <= band, 0.0, sweep)
        note = _join(note, f"{INCONCLUSIVE}: the 95% interval at the defaults includes {pivot:g}; the "
                     f"share is of points within one run's noise (±{band:.3g}) of it")
    share, n = share_sign_holds(sweep, s0)
    row = {"comparison": comparison, "arrangement": arr, "baseline": baseline, "metric": metric,
           "sign_at_default": s0, "default_diff": desc["mean"], "default_ci_low": desc["ci_low"],
           "default_ci_high": desc["ci_high"], "n_default": int(len(at_default)),
           "share_sign_holds": share, "n": n,
           "robust": bool(np.isfinite(share) and share >= ROBUST_SHARE and not inconclusive),
           "region": "", "region_coverage": np.nan, "region_density": np.nan,
           "region_mass": np.nan, "note": note}
    if not len(at_default):
        row["note"] = "no points at the defaults (uncertainties.defaults): no sign to hold"
    elif np.isfinite(share) and share < ROBUST_SHARE and not inconclusive:
        ok = np.isfinite(sweep)
        holds = sign(sweep[ok]) == s0
        reg = find_region(x[ok], ~holds)
        row.update(region=reg["region"], region_coverage=reg["coverage"],
                   region_density=reg["density"], region_mass=reg["mass"])
        if share < 0.5:
            # failing is the rule: the box where the sign holds says more than one around most of the space
            held = find_region(x[ok], holds)
            if held["region"]:
                note = row["note"] = _join(note, f"the sign holds in under half the space; where it holds: "
                                           f"{held['region']} (coverage {held['coverage']:.0%}, density "
                                           f"{held['density']:.0%})")
        if not reg["region"]:
            row["note"] = _join(note, "no region found (too few points or no box)")
        elif reg["density"] < PRIM_DENSITY:
            row["note"] = _join(note, f"no box reaches density {PRIM_DENSITY}: the sign fails across the "
                                "space (often noise around a small difference)")
    return row


def from_folder(folder: str | Path, baseline: str | None = None) -> pd.DataFrame | None:
    """robustness.csv's rows from a stored run (summary.csv, points.csv, manifest.json); None
    when the run has no sweep or no points at the defaults."""
    folder = Path(folder)
    man_path = folder / "manifest.json"
    config = json.loads(man_path.read_text()).get("config", {}) if man_path.is_file() else {}
    if baseline is None:
        baseline = (json.loads(man_path.read_text()).get("baseline") if man_path.is_file()
                    else None) or DEFAULT_BASELINE
    return _table(folder, config.get("uncertainties"), baseline)


def _table(folder: Path, unc: dict | None, baseline: str | None) -> pd.DataFrame | None:
    if not unc or not unc.get("defaults") or baseline is None:
        return None
    if not (folder / "summary.csv").is_file() or not (folder / "points.csv").is_file():
        return None
    summary = pd.read_csv(folder / "summary.csv")
    points = pd.read_csv(folder / "points.csv")
    n_points = int(points["point"].max()) + 1
    default_points = range(n_points - int(unc["defaults"]), n_points)
    diffs = summary[summary["metric"].isin(HEADLINE_METRICS)]
    inc_path = folder / "risk_incidence.csv"
    inc = pd.read_csv(inc_path) if inc_path.is_file() else None

    def both(d: pd.DataFrame, i: pd.DataFrame | None) -> pd.DataFrame:
        t = robustness_table(d, points, default_points, baseline)
        if i is None:
            return t
        return pd.concat([t, risk_side_table(i, points, default_points)], ignore_index=True)

    if "economy" not in diffs.columns:
        return both(diffs, inc)
    tables = []   # a study across economies: each economy's conclusions on its own
    for name in dict.fromkeys(diffs["economy"]):
        t = both(diffs[diffs["economy"] == name], None if inc is None else inc[inc["economy"] == name])
        t.insert(0, "economy", name)
        tables.append(t)
    return pd.concat(tables, ignore_index=True)


#: The risk conclusion: does the holder side (lead and providers) bear most of an activity change?
RISK_SIDE_SOURCE = "activity"
RISK_SIDE_METRIC = "holder_side_share.activity"


def risk_side_table(incidence: pd.DataFrame, points: pd.DataFrame,
                    default_points: Iterable[int]) -> pd.DataFrame:
    """Rows for each arrangement: the holder side's (lead + providers) share of the cost of an
    upward activity change (risk_incidence.csv, paired runs at each point), and whether it stays on
    the same side of one half as at the defaults: the conclusion "the holder side (e.g. the ICP)
    bears most of the activity risk" (or "the commissioner side does"). `default_diff` is the
    share at the defaults; the sign is that of share − 0.5."""
    default_points = set(int(p) for p in default_points)
    sampled, x = _sampled(points, default_points)
    up = incidence[(incidence["source"] == RISK_SIDE_SOURCE) & (incidence["direction"] == "up")
                   & incidence["party"].isin(("lead", "providers"))]
    rows = []
    for arr in dict.fromkeys(up["arrangement"]):
        by_point = up[up["arrangement"] == arr].groupby("point")["share"].sum(min_count=2)
        if not by_point[by_point.index.isin(default_points)].notna().any():
            continue
        row = _conclusion("", arr, "", RISK_SIDE_METRIC, by_point, default_points, sampled, x, pivot=0.5,
                          note="default_diff is the holder side's share at the defaults; the sign is of "
                               "share - 0.5")
        side = "holder side" if row["sign_at_default"] > 0 else "commissioner side"
        row["comparison"] = f"{arr}: the {side} bears most of an activity change"
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def write(folder: str | Path, exp, points=None, metas=None,
          baseline: str | None = DEFAULT_BASELINE) -> Path | None:
    """Write robustness.csv beside summary.csv and points.csv (called by the runner for sweeps
    with points at the defaults)."""
    folder = Path(folder)
    unc = exp.uncertainties.model_dump(mode="json") if exp.uncertainties is not None else None
    table = _table(folder, unc, baseline)
    if table is None:
        return None
    table.to_csv(folder / FILE, index=False)
    return folder / FILE


def summary_line(table: pd.DataFrame) -> str:
    """One line for the terminal: which conclusions are robust."""
    if table is None or table.empty:
        return ""
    robust = table[table["robust"].astype(bool)]
    if robust.empty:
        return f"Robust conclusions (sign holds in ≥{ROBUST_SHARE:.0%} of the assumption space): none"
    by_arr: dict[str, list[str]] = {}
    for r in robust.itertuples():
        mark = "+" if r.sign_at_default > 0 else "-" if r.sign_at_default < 0 else "="
        by_arr.setdefault(r.arrangement, []).append(f"{SHORT.get(r.metric, r.metric)} {mark}")
    notes = table["note"] if "note" in table.columns else pd.Series("", index=table.index)
    n_open = int(notes.astype(str).str.contains(INCONCLUSIVE, regex=False).sum())
    open_ = f"; {n_open} inconclusive at the defaults" if n_open else ""
    return (f"Robust conclusions (sign vs baseline holds in ≥{ROBUST_SHARE:.0%} of the assumption "
            f"space), {len(robust)} of {len(table)}{open_}: "
            + "; ".join(f"{a}: {', '.join(v)}" for a, v in by_arr.items()) + f" (see {FILE})")
