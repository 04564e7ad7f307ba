"""Who bears which risk (issue 14): risk sources as paired runs, their incidence −ΔRₚ/ΔC with
intervals, tail risk, and the covariance shares pooled across sweep points.

Most tests use the stand-in model (tests/experiment_fake_model.py, money conserved by
construction); the engine test and the behaviour test at the end use the real model."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from abm import risk, stats
from abm.definitions import PARTIES
from abm.errors import ConfigError
from abm.experiment import (STOP_AFTER_ENV, build_risk_tasks, build_tasks, load_experiment,
                            run_experiment)
from abm.summary import baseline_variance_share, pooled_risk_shares

FAKE = "experiment_fake_model:FakeModel"
TESTS = str(Path(__file__).resolve().parent)
CONFIG = {"name": "r", "arrangements": ["fragmented", "icp_full"], "replications": 4, "seed": 3,
          "months": 26, "population_scale": 0.1,
          "risk_sources": ["activity", {"source": "unit_cost", "size": 0.05}, "quality",
                           "population", "demography"],
          "risk_replications": 3}


def _run(out, config=CONFIG, workers=1, **kw):
    return run_experiment(dict(config), out=out, workers=workers, model=FAKE, **kw)


@pytest.fixture(scope="module")
def fake_out(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("risk") / "o")


# --------------------------------------------------------------------------- incidence
def test_shares_of_each_source_sum_to_one(fake_out):
    inc = pd.read_csv(fake_out / "risk_incidence.csv")
    assert list(inc.columns) == risk.INCIDENCE_COLUMNS
    defined = inc[inc["share"].notna()]
    sums = defined.groupby(["arrangement", "point", "source", "direction"])["share"].sum()
    assert len(sums) == 2 * 2 * 2 + 2 * 2        # activity, unit_cost: up/down; demography: up
    assert sums.to_numpy() == pytest.approx(1.0, abs=1e-9)
    assert (defined["n"] == 3).all()             # risk_replications, paired with replicates 0-2


def test_who_bears_activity_under_tariff_and_capitation(fake_out):
    inc = pd.read_csv(fake_out / "risk_incidence.csv").set_index(
        ["arrangement", "source", "direction", "party"])
    assert inc.loc[("fragmented", "activity", "up", "commissioner"), "share"] == pytest.approx(1)
    assert inc.loc[("icp_full", "activity", "up", "lead"), "share"] == pytest.approx(1)
    # the population grows: allocations follow it, the funder pays (0.98 of it reaches the lead)
    assert inc.loc[("icp_full", "population", "up", "funder"), "share"] > 0.5
    row = inc.loc[("icp_full", "activity", "up", "lead")]
    assert row["ci_low"] <= row["share"] <= row["ci_high"] and row["delta_cost"] > 0


def test_a_party_with_no_money_at_stake_has_share_zero(fake_out):
    inc = pd.read_csv(fake_out / "risk_incidence.csv")
    defined = inc[inc["share"].notna()]
    lead = defined[(defined["arrangement"] == "fragmented") & (defined["party"] == "lead")]
    practices = defined[defined["party"] == "gp_practices"]
    assert len(lead) and (lead["share"] == 0).all() and (lead["ci_high"] == 0).all()
    assert len(practices) and (practices["share"] == 0).all()


def test_a_source_that_changes_nothing_is_undefined_not_divided_by_zero(fake_out):
    inc = pd.read_csv(fake_out / "risk_incidence.csv")
    q = inc[(inc["source"] == "quality") & (inc["direction"] == "up")]
    assert len(q) == 2 * len(PARTIES)
    assert q["share"].isna().all() and q["ci_low"].isna().all() and (q["n"] == 0).all()
    assert (q["delta_cost"] == 0).all()
    assert q["note"].str.startswith("undefined: the source changed system cost by nothing").all()
    # a direction the model cannot represent is undefined with its reason, and never run
    down = inc[(inc["source"] == "demography") & (inc["direction"] == "down")]
    assert down["share"].isna().all() and down["note"].str.contains("up an age band only").all()
    runs = pd.read_csv(fake_out / "risk_runs.csv")
    assert not ((runs["source"] == "demography") & (runs["direction"] == "down")).any()


def test_incidence_function_guards_zero_change_without_warnings():
    base = pd.DataFrame([{"arrangement": "a", "point": 0, "replicate": r, "seed": r,
                          "system_cost": 100.0, **{f"result.{p}": 0.0 for p in PARTIES},
                          "result.funder": -100.0} for r in range(3)])
    pert = base.assign(source="activity", direction="up")
    pert.loc[0, ["system_cost", "result.commissioner"]] = [110.0, -10.0]   # one replicate moves
    specs = risk.resolve(["activity"])
    with np.errstate(all="raise"):
        inc = risk.incidence(base, pert, specs, 24, 1.0).set_index(["direction", "party"])
    com = inc.loc[("up", "commissioner")]
    assert com["share"] == 1.0 and com["n"] == 1 and "2 of 3 replicates left out" in com["note"]
    assert np.isnan(com["ci_low"])                                         # no interval at n = 1


def test_a_share_beyond_one_is_kept_and_explained():
    """A shock that alters a decision can move one party's result by more than the system's cost (the
    holder loses 15 on a rise of 10, the commissioner gains 5): shares 1.5 and -0.5, still summing to 1,
    each with a note; a share inside 0-1 gets none."""
    base = pd.DataFrame([{"arrangement": "a", "point": 0, "replicate": r, "seed": r,
                          "system_cost": 100.0, **{f"result.{p}": 0.0 for p in PARTIES},
                          "result.funder": -100.0} for r in range(3)])
    pert = base.assign(source="activity", direction="up")
    pert[["system_cost", "result.lead", "result.commissioner", "result.funder"]] = [110.0, -15.0, 5.0, -100.0]
    inc = risk.incidence(base, pert, risk.resolve(["activity"]), 24, 1.0).set_index(["direction", "party"])
    up = inc.loc["up"]
    assert up.loc["lead", "share"] == 1.5 and up.loc["commissioner", "share"] == -0.5
    assert abs(up["share"].sum() - 1.0) < 1e-12
    assert up.loc["lead", "note"] == risk.BEYOND and risk.BEYOND in up.loc["commissioner", "note"]
    assert up.loc["funder", "note"] == ""


def test_population_and_demography_need_a_year_start_within_the_horizon(tmp_path):
    out = _run(tmp_path / "short", {**CONFIG, "months": 12})
    inc = pd.read_csv(out / "risk_incidence.csv")
    pop = inc[inc["source"].isin(["population", "demography"])]
    assert pop["share"].isna().all()
    assert pop["note"].str.contains("year starts").any()
    runs = pd.read_csv(out / "risk_runs.csv")
    assert not runs["source"].isin(["population", "demography"]).any()   # not run at all


def test_paired_runs_share_the_base_seeds():
    exp, _ = load_experiment(dict(CONFIG))
    base = {(t["arrangement"], t["point"], t["replicate"]): t["seed"]
            for t in build_tasks(exp, [{}], FAKE)}
    tasks = build_risk_tasks(exp, [{}], FAKE)
    assert tasks and all(t["seed"] == base[(t["arrangement"], t["point"], t["replicate"])]
                         for t in tasks)
    assert {t["replicate"] for t in tasks} == {0, 1, 2}
    assert len({t["key"] for t in tasks}) == len(tasks)
    act = next(t for t in tasks if t["source"] == "activity" and t["direction"] == "down")
    assert act["shocks"][-1] == {"kind": "demand_surge", "month": 2, "size": -0.03}
    pop = next(t for t in tasks if t["source"] == "population")
    assert pop["shocks"][-1]["month"] == 13


def test_risk_runs_resume_to_identical_outputs(tmp_path):
    cmd = [sys.executable, "-c", "import json, sys; sys.path.insert(0, sys.argv[1]); "
           "from abm.experiment import run_experiment; "
           f"run_experiment(json.loads(sys.argv[2]), out=sys.argv[3], workers=1, model={FAKE!r})",
           TESTS, json.dumps(CONFIG), str(tmp_path / "cut")]
    env = {**__import__("os").environ, STOP_AFTER_ENV: "13"}
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 75
    resumed = run_experiment(None, resume=tmp_path / "cut", workers=1, model=FAKE)
    whole = _run(tmp_path / "whole")
    for name in ("risk_incidence.csv", "risk_runs.csv", "tail_risk.csv", "summary.csv"):
        assert (resumed / name).read_text() == (whole / name).read_text(), name


# --------------------------------------------------------------------------- tail risk
def test_tail_risk_failure_probability_and_expected_shortfall(fake_out):
    t = pd.read_csv(fake_out / "tail_risk.csv")
    assert list(t.columns) == risk.TAIL_COLUMNS
    t = t.set_index(["arrangement", "party", "measure"])
    no_holder = t.loc[("fragmented", "lead", "failure_probability")]
    assert np.isnan(no_holder["value"]) and "no holder" in no_holder["note"]
    held = t.loc[("icp_full", "lead", "failure_probability")]
    assert 0 <= held["ci_low"] <= held["value"] <= held["ci_high"] <= 1 and held["n"] == 4
    runs = pd.read_csv(fake_out / "runs.csv")
    lead = runs.loc[runs["arrangement"] == "icp_full", "result.lead"] / 0.1 / (26 / 12)
    es = t.loc[("icp_full", "lead", "expected_shortfall_5")]
    assert es["value"] == pytest.approx(lead.min())            # 4 runs: the worst run
    assert "worst run" in es["note"] and np.isnan(es["ci_low"])


def test_failures_count_only_within_the_term():
    metas = [{"arrangement": "x", "holder": "h", "term_months": 24,
              "party_results": dict.fromkeys(PARTIES, 0.0),
              "failures": [{"month": m, "org": "h", "party": "lead"}]} for m in (3, 30)]
    t = risk.tail_risk(metas, 120, 1.0).set_index(["party", "measure"])
    assert t.loc[("lead", "failure_probability"), "value"] == 0.5


def test_expected_shortfall_weights_the_boundary_run():
    x = np.arange(30.0)                          # 5% of 30 runs is 1.5 runs
    assert stats.expected_shortfall(x) == pytest.approx((0 + 0.5 * 1) / 1.5)
    assert stats.expected_shortfall(np.arange(40.0)) == pytest.approx(0.5)


# --------------------------------------------------------------------------- covariance shares
def _sweep_runs(points: int, reps: int, between: float, within: float, seed: int = 1):
    rng = np.random.default_rng(seed)
    rows = []
    for arr, bearer in (("fragmented", "commissioner"), ("icp_full", "lead")):
        for p in range(points):
            level = between * p
            for r in range(reps):
                c = 1000 + level + within * rng.standard_normal()
                rows.append({"arrangement": arr, "point": p, "replicate": r, "seed": r,
                             "system_cost": c, **{f"result.{q}": 0.0 for q in PARTIES},
                             # the funder pays for the declared (between-point) part, the bearer
                             # for the replicate noise
                             "result.funder": -1000 - level, f"result.{bearer}": 1000 + level - c})
    return pd.DataFrame(rows)


def test_covariance_shares_pool_across_sweep_points():
    runs = _sweep_runs(points=6, reps=2, between=50.0, within=1.0)
    out = pooled_risk_shares(runs, ["fragmented", "icp_full"], seed=2, baseline="fragmented")
    rows = pd.DataFrame(out["icp_full"]).set_index("metric")
    assert (rows["n"] == 12).all()                            # 6 points × 2 replicates
    assert rows.loc["risk_share.funder", "mean"] > 0.95       # the swept parameter dominates
    assert rows["mean"].sum() == pytest.approx(1.0)
    assert np.isfinite(rows["ci_low"]).all()                  # from 5 runs: an interval
    assert "pooled over 12 runs (6 sweep points" in rows["note"].iloc[0]
    assert "sampled baseline" not in rows["note"].iloc[0]
    # at one point with 2 replicates alone the share is noise; pooled it is not
    assert baseline_variance_share(runs.loc[runs.arrangement == "icp_full", "system_cost"]
                                   .to_numpy(), runs.loc[runs.arrangement == "icp_full", "point"]
                                   .to_numpy()) < 0.01


def test_summary_repeats_pooled_shares_at_every_point_with_a_baseline_note(tmp_path):
    grid = {**CONFIG, "risk_sources": [], "replications": 2,
            "uncertainties": {"method": "grid", "parameters": {
                "prevention.budget_share": {"values": [0.01, 0.02, 0.03]}}}}
    out = _run(tmp_path / "g", grid)
    s = pd.read_csv(out / "summary.csv")
    rs = s[s["metric"].str.startswith("risk_share.")]
    per_point = rs.pivot_table(index=["arrangement", "metric"], columns="point", values="mean")
    assert per_point.shape[1] == 3
    assert np.allclose(per_point.to_numpy(), per_point[[0]].to_numpy())  # one pooled value
    assert (rs["n"] == 6).all()
    assert rs["note"].str.contains("share of variation across the declared uncertainties").all()
    runs = pd.read_csv(out / "runs.csv")
    for arr, g in runs.groupby("arrangement"):
        within = baseline_variance_share(g["system_cost"].to_numpy(), g["point"].to_numpy())
        noted = rs.loc[rs["arrangement"] == arr, "note"].str.contains("sampled baseline")
        assert 0 < within < 1 and (noted == (within >= 0.5)).all()


def test_too_few_runs_say_so():
    runs = _sweep_runs(points=1, reps=2, between=0.0, within=5.0)
    rows = pd.DataFrame(pooled_risk_shares(runs, ["fragmented", "icp_full"], seed=0)["icp_full"])
    assert rows["ci_low"].isna().all()
    assert rows["note"].str.contains("too few to read").all()
    assert rows["note"].str.contains("no uncertainties declared").all()


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize("entry, field, words", [
    ("activty", "risk_sources[0].source", ["did you mean 'activity'", "allowed: activity"]),
    ({"source": "usage_mix", "sise": 0.1}, "risk_sources[0].sise", ["unknown key", "size"]),
    ({"source": "activity", "size": 0}, "risk_sources[0].size", ["positive", "> 0"]),
    ({"source": "activity", "size": "big"}, "risk_sources[0].size", ["positive"]),
    ({"source": "quality", "size": 1.5}, "risk_sources[0].size", ["<= 1"]),
    ({"source": "activity", "service": "elective"}, "risk_sources[0].service",
     ["only usage_mix"]),
    ({"source": "usage_mix", "service": ["elective", "dentistry"]}, "risk_sources[0].service",
     ["unknown service", "gp_f2f"]),
    ({"size": 0.1}, "risk_sources[0].source", ["required field missing"]),
    (3, "risk_sources[0]", ["a name or a mapping"]),
    ({"source": "population", "month": 0}, "risk_sources[0].month", ["whole month"]),
])
def test_risk_source_errors_name_file_field_and_allowed_values(tmp_path, entry, field, words):
    f = tmp_path / "exp.yaml"
    f.write_text(json.dumps({**CONFIG, "risk_sources": [entry]}))   # JSON is YAML
    with pytest.raises(ConfigError) as err:
        load_experiment(f)
    msg = str(err.value)
    assert msg.startswith(f"{f}: field '{field}'") and "\n" not in msg, msg
    for w in words:
        assert w in msg, msg


def test_duplicate_source_and_bad_risk_replications(tmp_path):
    with pytest.raises(ConfigError, match="listed twice"):
        load_experiment({**CONFIG, "risk_sources": ["activity", {"source": "activity"}]})
    with pytest.raises(ConfigError, match="risk_replications"):
        load_experiment({**CONFIG, "risk_replications": 0})


def test_cli_validate_exits_2_with_one_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: b\narrangements: [fragmented]\nreplications: 1\nseed: 1\nmonths: 12\n"
                 "risk_sources: [populaton]\n")
    proc = subprocess.run([sys.executable, "-m", "abm.cli", "validate", str(f)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "risk_sources[0].source" in proc.stderr
    assert "did you mean 'population'" in proc.stderr


# --------------------------------------------------------------------------- real model
REAL = {"name": "real-risk", "arrangements": ["fragmented", "icp_full"], "replications": 2,
        "seed": 3, "months": 14, "population_scale": 0.02,
        "risk_sources": ["activity", "population"]}


@pytest.fixture(scope="module")
def real_model():
    pytest.importorskip("abm.model", reason="abm.model not landed yet")


def test_local_pool_and_dask_give_identical_risk_outputs(tmp_path, real_model):
    a = run_experiment(REAL, out=tmp_path / "l2", workers=2)
    b = run_experiment(REAL, out=tmp_path / "dk", engine="dask", workers=2)
    for name in ("risk_incidence.csv", "risk_runs.csv", "tail_risk.csv", "summary.csv",
                 "runs.csv"):
        assert (a / name).read_text() == (b / name).read_text(), name
    m = json.loads((b / "manifest.json").read_text())
    assert m["risk_tasks"] == 2 * 2 * 2 * 2 and m["base_tasks"] == 4
    assert [s["source"] for s in m["risk_sources"]] == ["activity", "population"]
    inc = pd.read_csv(a / "risk_incidence.csv")
    sums = inc[inc["share"].notna()].groupby(["arrangement", "source", "direction"])["share"].sum()
    assert len(sums) == 8 and sums.to_numpy() == pytest.approx(1.0, abs=1e-6)


def _paired_shares(arrangement, source, seed=20240401, months=30, scale=0.03):
    from abm import ContractingModel

    def money(shocks):
        m = ContractingModel(arrangement, rng=seed, population_scale=scale, shocks=shocks)
        m.run(months)
        res = dict.fromkeys(PARTIES, 0.0)
        for row in m.finance_records(include_partial=True):
            res[row["party"]] += row["surplus"]
        return m.system_cost_total(), res

    c0, r0 = money([])
    spec = risk.resolve([source])[0]
    c1, r1 = money([risk.shock(spec, "up")])
    return {p: -(r1[p] - r0[p]) / (c1 - c0) for p in PARTIES}


@pytest.mark.parametrize("arrangement", ["icp_full", "icp_partial"])
def test_real_icp_bears_activity_and_commissioner_bears_population(real_model, arrangement):
    """The sources' allocation under an ICP contract: activity change on the ICP side, population
    size on the commissioner side (through yearly allocations)."""
    act = _paired_shares(arrangement, "activity")
    assert act["lead"] + act["providers"] >= 0.5, act
    pop = _paired_shares(arrangement, "population")
    assert pop["funder"] + pop["commissioner"] >= 0.5, pop


def test_real_fragmented_commissioner_bears_activity(real_model):
    act = _paired_shares("fragmented", "activity")
    assert act["funder"] + act["commissioner"] >= 0.5, act


def test_expected_shortfall_gets_a_bootstrap_interval_from_20_runs():
    rng = np.random.default_rng(4)
    metas = [{"arrangement": "x", "holder": None, "term_months": 12, "failures": [],
              "party_results": {**dict.fromkeys(PARTIES, 0.0), "lead": float(v)}}
             for v in rng.normal(0, 1e6, 25)]
    t = risk.tail_risk(metas, 12, 0.5, seed=1).set_index(["party", "measure"])
    es = t.loc[("lead", "expected_shortfall_5")]
    x = np.array([m["party_results"]["lead"] for m in metas]) / 0.5
    assert es["value"] == pytest.approx(stats.expected_shortfall(x))
    assert es["ci_low"] <= es["value"] <= es["ci_high"] and "bootstrap" in es["note"]
    assert t.loc[("lead", "mean_result"), "value"] == pytest.approx(x.mean())


def test_a_source_may_be_run_in_one_direction_only():
    """`directions: [up]` runs the upward shock only; the downward rows say they were not run; a
    direction the source lacks is refused with the allowed ones."""
    exp, _ = load_experiment({**CONFIG, "risk_sources": [{"source": "activity", "directions": ["up"]}]})
    tasks = build_risk_tasks(exp, [{}], FAKE)
    assert tasks and {t["direction"] for t in tasks} == {"up"}
    both, _ = load_experiment({**CONFIG, "risk_sources": ["activity"]})
    assert len(build_risk_tasks(both, [{}], FAKE)) == 2 * len(tasks)
    spec = risk.resolve([{"source": "activity", "directions": ["up"]}])[0]
    assert "not run" in risk._undefined_note(spec, "down", 24)
    for bad in (["sideways"], [], "up", ["up", "up"]):
        with pytest.raises(ConfigError, match="directions"):
            load_experiment({**CONFIG, "risk_sources": [{"source": "activity", "directions": bad}]})
