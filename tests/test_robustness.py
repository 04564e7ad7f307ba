"""Robustness of conclusions (abm.robustness): the share computation, PRIM on a synthetic table
whose answer is known, the experiment file against the register, and robustness.csv from a
stored run (the fake model, so no timing and no real simulation)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from abm import robustness as rb
from abm.experiment import load_experiment
from abm.params import default_parameters, flatten
from abm.sampling import sample_points, sampled_count

ROOT = Path(__file__).resolve().parent.parent


def test_sign_treats_tiny_and_zero_differences_as_zero():
    assert list(rb.sign([2.0, -0.5, 0.0, 1e-15])) == [1.0, -1.0, 0.0, 0.0]


def test_share_sign_holds_counts_matching_signs():
    share, n = rb.share_sign_holds([1.0, 2.0, -1.0, 0.0, np.nan], 1.0)
    assert (share, n) == (0.5, 4)
    assert rb.share_sign_holds([0.0, 0.0, 1.0], 0.0) == (pytest.approx(2 / 3), 3)
    assert np.isnan(rb.share_sign_holds([1.0], np.nan)[0])


def _synthetic(n=300, seed=3):
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"a.x1": rng.uniform(0, 1, n), "a.x2": rng.uniform(0, 1, n),
                      "a.x3": rng.uniform(0, 1, n)})
    # the advantage (negative) turns into a disadvantage only where x1 > 0.7
    diff = np.where(x["a.x1"] > 0.7, 1.0, -1.0) * rng.uniform(0.5, 1.5, n)
    return x, diff


def test_prim_finds_the_region_where_the_sign_flips():
    x, diff = _synthetic()
    reg = rb.find_region(x, rb.sign(diff) != -1.0)
    assert reg["region"].startswith("a.x1 >= ")
    assert " and " not in reg["region"]                   # only x1 is restricted
    lo = float(reg["region"].split(">= ")[1])
    assert 0.65 <= lo <= 0.75
    assert reg["coverage"] >= 0.9 and reg["density"] >= 0.9
    assert reg["mass"] == pytest.approx(0.3, abs=0.06)


def test_prim_has_nothing_to_find_when_the_sign_always_holds():
    x, _ = _synthetic()
    assert rb.find_region(x, np.zeros(len(x), bool))["region"] == ""


def test_table_shares_and_regions_on_a_known_answer():
    x, diff = _synthetic()
    n = len(x)
    points = pd.concat([pd.DataFrame({"point": range(n)}), x], axis=1)
    points = pd.concat([points, pd.DataFrame({"point": [n, n + 1, n + 2]})], ignore_index=True)
    diffs = pd.DataFrame({"arrangement": "icp_full", "point": range(n), "metric": "m",
                          "diff_mean": diff})
    at_default = pd.DataFrame({"arrangement": "icp_full", "point": [n, n + 1, n + 2],
                               "metric": "m", "diff_mean": [-1.0, -0.8, -1.2]})
    steady = pd.DataFrame({"arrangement": "icp_full", "point": range(n + 3), "metric": "k",
                           "diff_mean": 2.0})
    base = pd.DataFrame({"arrangement": "fragmented", "point": range(n + 3), "metric": "m",
                         "diff_mean": np.nan})
    t = rb.robustness_table(pd.concat([diffs, at_default, steady, base]), points,
                            [n, n + 1, n + 2], "fragmented", metrics=["m", "k"])
    assert list(t["arrangement"]) == ["icp_full", "icp_full"]
    m, k = t.iloc[0], t.iloc[1]
    assert m["comparison"] == "icp_full vs fragmented: m"
    assert m["sign_at_default"] == -1.0 and m["n"] == n and m["n_default"] == 3
    assert m["share_sign_holds"] == pytest.approx(np.mean(x["a.x1"] <= 0.7))
    assert not m["robust"] and m["region"].startswith("a.x1 >= ")
    assert m["region_coverage"] >= 0.9 and m["region_density"] >= 0.9
    assert k["share_sign_holds"] == 1.0 and k["robust"] and k["region"] == ""
    assert "2 of 2" not in rb.summary_line(t) and "icp_full: k +" in rb.summary_line(t)


def test_experiment_file_sweeps_register_ranges_with_default_points():
    exp, _ = load_experiment(ROOT / "experiments" / "robustness.yaml")
    unc = exp.uncertainties
    assert unc is not None and unc.defaults >= 3 and unc.method in ("lhs", "sobol")
    assert 10 <= len(unc.parameters) <= 30 and exp.replications == 1
    assert exp.population_scale <= 0.1 and exp.months <= 120
    assert {"fragmented", "alliance", "prime_provider", "icp_partial", "icp_full"} <= set(exp.arrangements)
    leaves = flatten(default_parameters())
    for name, spec in unc.parameters.items():
        scaled = name.endswith("@scale")
        leaf = leaves[name.removesuffix("@scale")]
        # an assumption, or a sourced value whose size the evidence only bounds: a range with its reason
        key = "range_scale" if scaled else "range"
        assert key in leaf and leaf.get("range_why"), name
        assert [spec.low, spec.high] == [float(v) for v in leaf[key]], name
    # every mapping in the register is swept too, by its multiplier
    assert {n for n in unc.parameters if n.endswith("@scale")} == {
        f"{n}@scale" for n, leaf in leaves.items() if "range_scale" in leaf}
    block = rb.uncertainties_from_register(list(unc.parameters), samples=unc.samples,
                                           defaults=unc.defaults, seed=unc.seed)
    assert block["parameters"] == {n: {k: v for k, v in p.model_dump().items()
                                       if k in ("low", "high") or (k == "integer" and v)}
                                   for n, p in unc.parameters.items()}


def test_default_points_follow_the_sampled_ones():
    exp, _ = load_experiment({"name": "t", "arrangements": ["fragmented"], "replications": 1,
                              "seed": 1, "months": 2, "uncertainties": rb.uncertainties_from_register(
                                  ["trust.initial", "failure.termination_years"], samples=5,
                                  defaults=2)})
    pts = sample_points(exp.uncertainties, exp.seed)
    assert len(pts) == 7 and pts[-2:] == [{}, {}] and sampled_count(exp.uncertainties, 7) == 5
    assert all(isinstance(p["failure.termination_years"], int) for p in pts[:5])
    with pytest.raises(ValueError, match="@scale"):
        rb.uncertainties_from_register(["costs.fixed_cost_share"])  # a mapping: range_scale
    assert rb.uncertainties_from_register(["costs.fixed_cost_share@scale"])["parameters"] == {
        "costs.fixed_cost_share@scale": {"low": 0.7, "high": 1.3}}


def test_a_mapping_is_swept_by_a_multiplier_capped_at_its_bounds():
    from abm import ContractingModel
    from abm.errors import ConfigError
    base = ContractingModel("fragmented", rng=1, population_scale=0.02).p
    m = ContractingModel("fragmented", rng=1, population_scale=0.02,
                         **{"participation.autonomy_cost@scale": 1.3, "costs.fixed_cost_share@scale": 1.5}).p
    assert m["participation"]["autonomy_cost"] == {k: pytest.approx(v * 1.3)
                                                   for k, v in base["participation"]["autonomy_cost"].items()}
    fixed = m["costs"]["fixed_cost_share"]
    assert max(fixed.values()) <= 1.0 and fixed["social_care"] == pytest.approx(base["costs"]["fixed_cost_share"]["social_care"] * 1.5)
    with pytest.raises(ConfigError, match="mapping"):
        ContractingModel("fragmented", rng=1, population_scale=0.02, **{"trust.initial@scale": 1.1})
    with pytest.raises(ConfigError, match=">= 0"):
        ContractingModel("fragmented", rng=1, population_scale=0.02, **{"funding.reserve_share@scale": -1})


def test_runner_writes_robustness_csv(tmp_path):
    from abm.experiment import run_experiment
    cfg = {"name": "rob", "arrangements": ["fragmented", "icp_full"], "replications": 1,
           "seed": 7, "months": 3,
           "uncertainties": {"method": "lhs", "samples": 12, "defaults": 3,
                             "parameters": {"prevention.budget_share": {"low": 0.01, "high": 0.04}}}}
    out = run_experiment(cfg, out=tmp_path / "rob", workers=1,
                         model="experiment_fake_model:FakeModel")
    t = pd.read_csv(out / rb.FILE)
    assert set(rb.COLUMNS) <= set(t.columns)
    assert (t["arrangement"] == "icp_full").all() and (t["n"] == 12).all()
    assert (t["n_default"] == 3).all()
    again = rb.from_folder(out)
    assert list(again["comparison"]) == list(t["comparison"])
    assert np.allclose(again["share_sign_holds"], t["share_sign_holds"], equal_nan=True)


def test_report_section_and_terminal_line(tmp_path):
    from types import SimpleNamespace
    from abm.report import _robustness_html
    x, diff = _synthetic(60)
    n = len(x)
    points = pd.concat([pd.concat([pd.DataFrame({"point": range(n)}), x], axis=1),
                        pd.DataFrame({"point": [n, n + 1]})], ignore_index=True)
    diffs = pd.DataFrame({"arrangement": "icp_full", "point": range(n + 2),
                          "metric": "cost_per_capita", "diff_mean": list(diff) + [-1.0, -1.0]})
    rb.robustness_table(diffs, points, [n, n + 1], "fragmented").to_csv(tmp_path / rb.FILE,
                                                                         index=False)
    html = _robustness_html(SimpleNamespace(results_dir=tmp_path))
    assert "Robustness of conclusions" in html and "not robust" in html and "a.x1 &gt;=" in html
    assert _robustness_html(SimpleNamespace(results_dir=tmp_path / "none")) == ""
    assert rb.summary_line(pd.read_csv(tmp_path / rb.FILE)).endswith("none")


def test_risk_side_rows_say_whether_the_holder_side_keeps_most_of_an_activity_change():
    """The holder side's share (lead + providers) of an upward activity change, per point: at the
    defaults it is above one half for the ICP and below for the status quo; the share of sampled
    points on the same side of one half, and PRIM where it fails (here: a high x)."""
    rng = np.random.default_rng(3)
    x = rng.random(60)
    points = pd.DataFrame({"point": np.arange(64), "a.x": np.r_[x, [0.5] * 4]})
    rows = []
    for p in range(64):
        xv = points.loc[p, "a.x"]
        icp = 0.8 if p >= 60 else (0.3 if xv > 0.8 else 0.75)      # fails only where x > 0.8
        for arr, lead in (("icp_full", icp), ("fragmented", 0.0)):
            provs = 0.1 if arr == "icp_full" else 0.05
            for party, share in (("lead", lead), ("providers", provs), ("commissioner", 1 - lead - provs)):
                rows.append({"arrangement": arr, "point": p, "source": "activity", "direction": "up",
                             "party": party, "share": share})
    t = rb.risk_side_table(pd.DataFrame(rows), points, range(60, 64)).set_index("arrangement")
    icp, frag = t.loc["icp_full"], t.loc["fragmented"]
    assert icp["sign_at_default"] == 1.0 and icp["default_diff"] == pytest.approx(0.9)
    assert icp["share_sign_holds"] == pytest.approx(np.mean(x <= 0.8)) and not icp["robust"]
    assert "a.x >=" in icp["region"] and "holder side" in icp["comparison"]
    assert frag["sign_at_default"] == -1.0 and frag["share_sign_holds"] == 1.0 and frag["robust"]
    assert "commissioner side" in frag["comparison"]


def test_a_difference_the_defaults_do_not_separate_is_inconclusive_never_robust():
    """Never name a winner the intervals do not separate: runs at the defaults straddling zero give
    no sign, a note saying so, no PRIM box, and never count as robust, even where every sampled point
    is near zero; a difference that is exactly zero at every default run stays a robust "no difference"."""
    x, _ = _synthetic()
    n = len(x)
    points = pd.concat([pd.DataFrame({"point": range(n)}), x], axis=1)
    points = pd.concat([points, pd.DataFrame({"point": [n, n + 1, n + 2, n + 3]})], ignore_index=True)
    rng = np.random.default_rng(1)
    rows = [pd.DataFrame({"arrangement": "icp_full", "point": range(n), "metric": "m",
                          "diff_mean": rng.normal(0.0, 0.1, n)}),
            pd.DataFrame({"arrangement": "icp_full", "point": range(n, n + 4), "metric": "m",
                          "diff_mean": [0.3, -0.2, 0.25, -0.1]}),
            pd.DataFrame({"arrangement": "icp_full", "point": range(n + 4), "metric": "z",
                          "diff_mean": 0.0})]
    t = rb.robustness_table(pd.concat(rows), points, range(n, n + 4), "fragmented", metrics=["m", "z"])
    m, z = t.iloc[0], t.iloc[1]
    assert m["sign_at_default"] == 0.0 and m["default_ci_low"] < 0 < m["default_ci_high"]
    assert rb.INCONCLUSIVE in m["note"] and not m["robust"] and not m["region"]
    assert m["share_sign_holds"] > 0.9                        # sampled points are within noise of 0
    assert z["sign_at_default"] == 0.0 and z["robust"] and rb.INCONCLUSIVE not in str(z["note"])
    assert "1 inconclusive" in rb.summary_line(t)


def test_when_the_sign_mostly_fails_the_note_names_where_it_holds():
    """A conclusion that fails in most of the space is better described by the box where it holds
    (PRIM on the complement) than by a box around nearly everything."""
    rng = np.random.default_rng(5)
    n = 300
    x = pd.DataFrame({"a.x1": rng.uniform(0, 1, n), "a.x2": rng.uniform(0, 1, n)})
    diff = np.where(x["a.x1"] < 0.3, -1.0, 1.0) * rng.uniform(0.5, 1.5, n)   # holds only where x1 < 0.3
    points = pd.concat([pd.concat([pd.DataFrame({"point": range(n)}), x], axis=1),
                        pd.DataFrame({"point": [n, n + 1, n + 2]})], ignore_index=True)
    rows = pd.concat([pd.DataFrame({"arrangement": "icp_full", "point": range(n), "metric": "m", "diff_mean": diff}),
                      pd.DataFrame({"arrangement": "icp_full", "point": [n, n + 1, n + 2], "metric": "m",
                                    "diff_mean": [-1.0, -0.9, -1.1]})])
    m = rb.robustness_table(rows, points, [n, n + 1, n + 2], "fragmented", metrics=["m"]).iloc[0]
    assert m["share_sign_holds"] == pytest.approx(np.mean(x["a.x1"] < 0.3))
    assert "where it holds: a.x1 <= " in m["note"]
    hi = float(m["note"].split("a.x1 <= ")[1].split()[0])
    assert 0.25 <= hi <= 0.35
