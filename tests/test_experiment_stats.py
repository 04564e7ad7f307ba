"""Statistics behind summary.csv: intervals, paired differences, risk shares, seeds, sampling."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abm.experiment import PARTIES, Experiment, build_tasks, replicate_seed
from abm.sampling import sample_points
from abm.summary import describe, risk_shares, sensitivity, summarise

BASE = dict(name="s", arrangements=["fragmented", "icp_full"], replications=3, seed=5, months=12)


def test_describe_is_a_t_interval():
    d = describe([1.0, 2.0, 3.0, 4.0])
    half = 3.182446305284263 * np.std([1, 2, 3, 4], ddof=1) / 2
    assert d["n"] == 4 and d["mean"] == 2.5
    assert d["ci_low"] == pytest.approx(2.5 - half) and d["ci_high"] == pytest.approx(2.5 + half)
    one = describe([7.0])
    assert one["mean"] == 7.0 and np.isnan(one["sd"]) and np.isnan(one["ci_low"])


def test_risk_shares_sum_to_one_when_money_is_conserved():
    rng = np.random.default_rng(0)
    n = 40
    cost = 1000 + 50 * rng.standard_normal(n)
    noise = 10 * rng.standard_normal(n)
    funder = np.full(n, -1000.0)                   # pays a fixed allocation
    commissioner = 1000 - 0.3 * cost + noise        # bears 30% plus noise
    providers = -0.7 * cost - noise                 # the rest
    results = np.column_stack([funder, commissioner, np.zeros(n), providers, np.zeros(n)])
    assert np.allclose(results.sum(axis=1), -cost)  # conservation
    shares = risk_shares(cost, results)
    assert shares.sum() == pytest.approx(1.0, abs=1e-12)
    assert shares[0] == 0 and shares[2] == 0
    assert shares[1] == pytest.approx(0.3, abs=0.1) and shares[3] == pytest.approx(0.7, abs=0.1)


def test_risk_shares_detect_leaking_money_and_constant_cost():
    cost = np.array([1.0, 2.0, 3.0, 4.0])
    leaky = np.column_stack([np.zeros(4), -0.5 * cost, np.zeros(4), np.zeros(4), np.zeros(4)])
    assert risk_shares(cost, leaky).sum() == pytest.approx(0.5)
    assert np.isnan(risk_shares(np.ones(4), leaky)).all()


def test_bootstrap_shape_matches_single_estimate():
    rng = np.random.default_rng(1)
    cost = rng.normal(size=10)
    res = np.column_stack([-cost, np.zeros(10)])
    idx = rng.integers(0, 10, size=(7, 10))
    boot = risk_shares(cost[idx], res[idx])
    assert boot.shape == (7, 2) and np.allclose(boot[:, 0], 1.0)


def _tables(reps: int, shift: float):
    """fragmented: noisy metric; icp_full: the same noise plus `shift` (common random numbers)."""
    rng = np.random.default_rng(3)
    noise = 100 * rng.standard_normal(reps)
    finals, runs = [], []
    for arr, add in (("fragmented", 0.0), ("icp_full", shift)):
        for r in range(reps):
            finals.append({"arrangement": arr, "point": 0, "replicate": r, "seed": r,
                           "cost_per_capita": 1000 + noise[r] + add + (0.01 * r if add else 0)})
            cost = 1000 + noise[r]
            bearer = "commissioner" if arr == "fragmented" else "lead"
            runs.append({"arrangement": arr, "point": 0, "replicate": r, "seed": r,
                         "system_cost": cost, **{f"result.{p}": 0.0 for p in PARTIES},
                         "result.funder": -1000.0, f"result.{bearer}": 1000 - cost})
    return pd.DataFrame(finals), pd.DataFrame(runs)


def test_summary_pairs_replicates_for_differences():
    finals, runs = _tables(reps=8, shift=5.0)
    s = summarise(finals, runs, ["fragmented", "icp_full"], seed=1).set_index(["arrangement", "metric"])
    icp = s.loc[("icp_full", "cost_per_capita")]
    frag = s.loc[("fragmented", "cost_per_capita")]
    # the unpaired intervals overlap widely; the paired difference is tight around +5
    assert icp["ci_low"] < frag["mean"] < icp["ci_high"]
    assert 4.9 < icp["diff_ci_low"] < icp["diff_mean"] < icp["diff_ci_high"] < 5.1
    assert np.isnan(frag["diff_mean"])
    shares = s.xs("icp_full")["mean"].filter(like="risk_share")
    assert shares.sum() == pytest.approx(1.0)
    assert shares["risk_share.lead"] == pytest.approx(1.0)
    assert s.loc[("fragmented", "risk_share.commissioner"), "mean"] == pytest.approx(1.0)
    lead = s.loc[("icp_full", "risk_share.lead")]
    assert lead["diff_mean"] == pytest.approx(1.0) and lead["n"] == 8


def test_single_replicate_gives_nan_risk_shares_with_a_note():
    finals, runs = _tables(reps=1, shift=5.0)
    s = summarise(finals, runs, ["fragmented", "icp_full"], seed=1)
    rs = s[s["metric"].str.startswith("risk_share.")]
    assert len(rs) == 2 * len(PARTIES)
    assert rs["mean"].isna().all() and (rs["note"] == "undefined with 1 replicate").all()


def test_seeds_are_common_across_arrangements_and_distinct_across_replicates():
    exp = Experiment(**BASE)
    tasks = build_tasks(exp, [{}, {}])
    by = {}
    for t in tasks:
        by.setdefault((t["point"], t["replicate"]), set()).add(t["seed"])
    assert all(len(seeds) == 1 for seeds in by.values())           # CRN across arrangements
    assert len({next(iter(s)) for s in by.values()}) == len(by)    # distinct per (point, rep)
    assert replicate_seed(5, 0, 1) == replicate_seed(5, 0, 1) != replicate_seed(6, 0, 1)
    assert len(tasks) == 2 * 2 * 3 and len({t["key"] for t in tasks}) == len(tasks)


def _unc(method, **kw):
    params = kw.pop("parameters", {"a.x": {"low": 0.0, "high": 1.0}, "b.y": {"low": 10, "high": 20}})
    return Experiment(**BASE, uncertainties={"method": method, "parameters": params, **kw}).uncertainties


def test_grid_is_the_cartesian_product_in_declared_order():
    unc = _unc("grid", parameters={"a.x": {"values": [1, 2]}, "b.y": {"low": 0.0, "high": 1.0, "levels": 3}})
    pts = sample_points(unc, seed=0)
    assert pts == [{"a.x": 1, "b.y": 0.0}, {"a.x": 1, "b.y": 0.5}, {"a.x": 1, "b.y": 1.0},
                   {"a.x": 2, "b.y": 0.0}, {"a.x": 2, "b.y": 0.5}, {"a.x": 2, "b.y": 1.0}]


def test_latin_hypercube_fills_each_stratum_once_and_is_reproducible():
    unc = _unc("lhs", samples=10)
    pts = sample_points(unc, seed=4)
    assert pts == sample_points(unc, seed=4) and pts != sample_points(unc, seed=5)
    x = np.array([p["a.x"] for p in pts])
    assert sorted(np.floor(x * 10).astype(int)) == list(range(10))
    assert all(10 <= p["b.y"] <= 20 for p in pts)


def test_sobol_design_size_and_indices_from_results():
    unc = _unc("sobol", samples=64)
    pts = sample_points(unc, seed=0)
    assert len(pts) == 64 * (2 + 2)
    exp = Experiment(**{**BASE, "arrangements": ["icp_full"], "replications": 1},
                     uncertainties=unc.model_dump())
    finals = pd.DataFrame([{"arrangement": "icp_full", "point": i, "replicate": 0, "seed": 0,
                            "m": 5 * p["a.x"] + 0.01 * p["b.y"], "flat": 1.0}
                           for i, p in enumerate(pts)])
    sens = sensitivity(finals, exp, len(pts)).set_index("parameter")
    assert set(sens["metric"]) == {"m"}                      # constant outputs are skipped
    assert sens.loc["a.x", "S1"] > 0.9 and sens.loc["b.y", "ST"] < 0.05


def test_sobol_leaves_out_a_metric_whose_base_samples_are_all_equal():
    """A metric that moves only at cross points (A with one column from B) and not across the base samples
    A and B: Saltelli's indices divide by the base samples' variance, 0 here, so they are undefined. The
    metric is left out (not reported as 0, "no sensitivity") and SALib's console warning never fires."""
    import warnings
    unc = _unc("sobol", samples=8)
    pts = sample_points(unc, seed=0)
    exp = Experiment(**{**BASE, "arrangements": ["icp_full"], "replications": 1}, uncertainties=unc.model_dump())
    d = 2 + 2                                                           # rows per sample: A, AB_x, AB_y, B
    finals = pd.DataFrame([{"arrangement": "icp_full", "point": i, "replicate": 0, "seed": 0,
                            "cross": float(i % d == 1 and i < d * 3), "m": p["a.x"]} for i, p in enumerate(pts)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sens = sensitivity(finals, exp, len(pts))
    assert set(sens["metric"]) == {"m"}


def test_config_errors_from_workers_survive_pickling():
    import pickle
    from abm.experiment import TaskConfigError
    err = TaskConfigError("must sum to 1", file="a.yaml", field="x.y", value=0.5, allowed="1")
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err) and back.field == "x.y" and back.file == "a.yaml"
    assert str(back.with_file("b.yaml")) == str(err)                  # file kept, not doubled


def test_few_replicates_give_shares_without_intervals():
    finals, runs = _tables(reps=3, shift=5.0)
    s = summarise(finals, runs, ["fragmented", "icp_full"], seed=1)
    rs = s[s["metric"].str.startswith("risk_share.")]
    assert rs["mean"].notna().all() and rs["ci_low"].isna().all()
    assert rs["note"].str.contains("fewer than 5").all()
