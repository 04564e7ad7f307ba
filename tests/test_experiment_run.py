"""Running experiments: outputs, determinism across engines, streaming parts and --resume.

Most tests use a tiny stand-in model (tests/experiment_fake_model.py) so they are fast; the
engine-equivalence test at the end uses the real ContractingModel.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from abm.errors import ConfigError
from abm.experiment import STOP_AFTER_ENV, run_experiment

FAKE = "experiment_fake_model:FakeModel"
TESTS = str(Path(__file__).resolve().parent)
CONFIG = {"name": "t", "arrangements": ["fragmented", "alliance", "icp_full"], "replications": 4,
          "seed": 11, "months": 15, "population_scale": 0.1}
OUTPUT_FILES = ["finance.parquet", "manifest.json", "networks", "results.parquet", "runs.csv",
                "summary.csv", "tail_risk.csv"]


def _run(out, workers=1, config=CONFIG, **kw):
    return run_experiment(dict(config), out=out, workers=workers, model=FAKE, **kw)


def _same_outputs(a: Path, b: Path) -> None:
    for name in ("results.parquet", "finance.parquet"):
        assert pq.read_table(a / name).equals(pq.read_table(b / name)), name
    for name in ("summary.csv", "runs.csv", "tail_risk.csv", "risk_runs.csv",
                 "risk_incidence.csv"):
        assert (a / name).is_file() == (b / name).is_file(), name
        if (a / name).is_file():
            assert (a / name).read_text() == (b / name).read_text(), name
    for g in (a / "networks").iterdir():
        assert g.read_bytes() == (b / "networks" / g.name).read_bytes()


def test_outputs_have_the_interface_layout(tmp_path):
    out = _run(tmp_path / "o")
    assert out == (tmp_path / "o").resolve()
    assert sorted(p.name for p in out.iterdir()) == OUTPUT_FILES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]          # no temp dir left
    res = pq.read_table(out / "results.parquet").to_pandas()
    assert list(res.columns) == ["experiment", "arrangement", "point", "replicate", "seed", "step",
                                 "metric", "value"]
    assert len(res) == 3 * 4 * (15 + 1) * 3                             # tasks × steps × metrics
    assert sorted(res["step"].unique()) == list(range(16))
    assert set(res["experiment"]) == {"t"}
    fin = pq.read_table(out / "finance.parquet").to_pandas()
    need = ["arrangement", "point", "replicate", "year", "org_id", "org_kind", "party", "income",
            "cost", "surplus", "reserves"]
    assert set(need) <= set(fin.columns)
    s = pd.read_csv(out / "summary.csv")
    assert list(s.columns)[:8] == ["arrangement", "point", "metric", "mean", "sd", "ci_low",
                                   "ci_high", "n"]
    assert {"diff_mean", "diff_ci_low", "diff_ci_high"} <= set(s.columns)
    assert sorted(p.name for p in (out / "networks").iterdir()) == [
        "alliance.graphml", "fragmented.graphml", "icp_full.graphml"]
    m = json.loads((out / "manifest.json").read_text())
    for key in ("config", "config_sha256", "versions", "seeds", "engine", "workers",
                "wall_seconds", "started", "finished"):
        assert key in m, key
    assert set(m["versions"]) >= {"abm", "mesa", "python"}
    assert len(m["seeds"]) == 4 and m["config"]["months"] == 15


def test_final_year_value_is_mean_of_last_12_steps_or_last_for_cumulative(tmp_path):
    out = _run(tmp_path / "o")
    res = pq.read_table(out / "results.parquet").to_pandas()
    s = pd.read_csv(out / "summary.csv").set_index(["arrangement", "metric"])
    one = res[res["arrangement"] == "alliance"]
    per_rep = one[(one["metric"] == "cost_per_capita") & (one["step"] > 3)].groupby("replicate")["value"].mean()
    assert s.loc[("alliance", "cost_per_capita"), "mean"] == pytest.approx(per_rep.mean())
    last = one[(one["metric"] == "provider_failures") & (one["step"] == 15)]["value"]
    assert s.loc[("alliance", "provider_failures"), "mean"] == pytest.approx(last.mean())


def test_common_random_numbers_and_risk_shares_in_summary(tmp_path):
    out = _run(tmp_path / "o")
    res = pq.read_table(out / "results.parquet").to_pandas()
    seeds = res.groupby(["replicate", "arrangement"])["seed"].first().unstack()
    assert (seeds.nunique(axis=1) == 1).all() and seeds["fragmented"].is_unique
    # same seed, same demand: the fake's cost is identical across arrangements
    cost = res[res["metric"] == "cost_per_capita"].pivot_table(
        index=["replicate", "step"], columns="arrangement", values="value")
    assert (cost["alliance"] == cost["fragmented"]).all()
    s = pd.read_csv(out / "summary.csv")
    rs = s[s["metric"].str.startswith("risk_share.")]
    assert rs.groupby("arrangement")["mean"].sum().round(9).eq(1.0).all()
    frag = rs[rs["arrangement"] == "fragmented"].set_index("metric")["mean"]
    assert frag["risk_share.commissioner"] == pytest.approx(1.0)


def test_one_worker_and_two_workers_give_identical_outputs(tmp_path):
    a = _run(tmp_path / "a", workers=1)
    b = _run(tmp_path / "b", workers=2)
    _same_outputs(a, b)
    assert json.loads((b / "manifest.json").read_text())["workers"] == 2


def test_interrupted_run_resumes_to_identical_outputs(tmp_path):
    full = _run(tmp_path / "full")
    out = tmp_path / "cut"
    code = (f"import sys; sys.path.insert(0, {TESTS!r}); from abm.experiment import run_experiment; "
            f"run_experiment({CONFIG!r}, out={str(out)!r}, workers=2, model={FAKE!r})")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, STOP_AFTER_ENV: "5"},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 75, proc.stderr
    partial = tmp_path / ".cut.partial"
    assert not out.exists() and len(list((partial / "parts").glob("*.json"))) == 5
    with pytest.raises(ConfigError, match="--resume"):                 # plain re-run refuses
        _run(out)
    with pytest.raises(ConfigError, match="differs"):                  # other config refuses
        run_experiment({**CONFIG, "seed": 12}, workers=1, resume=out, model=FAKE)
    done = []
    resumed = run_experiment(None, workers=1, resume=out, model=FAKE,
                             progress=lambda d, t: done.append((d, t)))
    assert resumed == out.resolve() and not partial.exists()
    assert done[0] == (5, 12) and done[-1] == (12, 12)                  # only 7 tasks were run
    _same_outputs(full, resumed)
    assert json.loads((resumed / "manifest.json").read_text())["resumed_tasks"] == 5


def test_resume_needs_an_interrupted_run(tmp_path):
    out = _run(tmp_path / "o")
    with pytest.raises(ConfigError, match="no interrupted run"):
        run_experiment(None, resume=out, model=FAKE)


def test_rerun_replaces_results_only_with_overwrite_and_never_a_foreign_folder(tmp_path):
    out = _run(tmp_path / "o")
    (out / "stale.txt").write_text("x")
    with pytest.raises(ConfigError, match="finished results are already stored"):
        _run(tmp_path / "o", config={**CONFIG, "replications": 2})
    assert (out / "stale.txt").exists()                       # nothing touched without --overwrite
    _run(tmp_path / "o", config={**CONFIG, "replications": 2}, overwrite=True)
    assert not (out / "stale.txt").exists()
    assert json.loads((out / "manifest.json").read_text())["config"]["replications"] == 2
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    with pytest.raises(ConfigError, match="not an abm results directory"):
        _run(foreign)
    assert (foreign / "thesis.tex").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "o"]


def test_sweep_points_get_their_overrides_and_a_points_table(tmp_path):
    cfg = {**CONFIG, "arrangements": ["fragmented"], "replications": 2,
           "uncertainties": {"method": "grid", "parameters": {
               "prevention.budget_share": {"values": [0.0, 0.5]}}}}
    out = _run(tmp_path / "o", config=cfg)
    pts = pd.read_csv(out / "points.csv")
    assert pts.to_dict("list") == {"point": [0, 1], "prevention.budget_share": [0.0, 0.5]}
    s = pd.read_csv(out / "summary.csv")
    cost = s[s["metric"] == "cost_per_capita"].set_index("point")["mean"]
    assert cost[1] == pytest.approx(cost[0] * 0.5, rel=0.2)          # the fake halves cost at 0.5


def test_model_rejecting_input_during_run_leaves_nothing(tmp_path, monkeypatch):
    import experiment_fake_model as fake
    original = fake.FakeModel.step

    def boom(self):
        if self.arrangement == "icp_full":
            raise ConfigError("bad shares", field="x")
        original(self)
    monkeypatch.setattr(fake.FakeModel, "step", boom)
    with pytest.raises(ConfigError, match="bad shares"):
        _run(tmp_path / "o")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- real model
REAL = {"name": "real", "arrangements": ["fragmented", "icp_full"], "replications": 2, "seed": 3,
        "months": 4, "population_scale": 0.02}


@pytest.fixture(scope="module")
def real_model():
    pytest.importorskip("abm.model", reason="abm.model not landed yet")


def test_engines_give_identical_results_local1_local2_dask(tmp_path, real_model):
    a = run_experiment(REAL, out=tmp_path / "l1", workers=1)
    b = run_experiment(REAL, out=tmp_path / "l2", workers=2)
    c = run_experiment(REAL, out=tmp_path / "dk", engine="dask", workers=2)
    _same_outputs(a, b)
    _same_outputs(a, c)
    assert json.loads((c / "manifest.json").read_text())["engine"] == "dask"


def test_real_model_risk_shares_sum_to_one(tmp_path, real_model):
    out = run_experiment({**REAL, "replications": 4, "months": 13}, out=tmp_path / "o", workers=2)
    s = pd.read_csv(out / "summary.csv")
    rs = s[s["metric"].str.startswith("risk_share.")]
    sums = rs.groupby("arrangement")["mean"].sum()
    assert sums.to_numpy() == pytest.approx(1.0, abs=1e-6), sums
    runs = pd.read_csv(out / "runs.csv")
    money = runs.filter(like="result.").sum(axis=1) + runs["system_cost"]
    assert money.abs().max() < 1e-6 * runs["system_cost"].abs().max()


def test_overrides_never_leak_into_the_baseline(tmp_path, real_model):
    base = {**REAL, "arrangements": ["fragmented"], "replications": 1, "months": 2}
    a = run_experiment(base, out=tmp_path / "a", workers=1)
    r = run_experiment({**base, "overrides": {"prevention.budget_share": 0.2,
                                              "demand.frailty_sd": 1.5}},
                       out=tmp_path / "r", workers=1)
    b = run_experiment(base, out=tmp_path / "b", workers=1)
    _same_outputs(a, b)
    assert not pq.read_table(a / "results.parquet").equals(pq.read_table(r / "results.parquet"))


def test_dask_says_so_when_every_worker_has_gone(monkeypatch):
    """When the last Dask worker dies the run stops with a clear error instead of waiting forever."""
    import time as _time
    from distributed import LocalCluster
    from abm import engines
    monkeypatch.setenv("ABM_DASK_NO_WORKER_SECONDS", "3")
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        specs = [{"key": f"t{i}", "sleep": 0.5} for i in range(6)]
        gen = engines.execute(_sleepy, specs, engine="dask", workers=1, scheduler=cluster.scheduler_address)
        next(gen)                                     # one task done: the worker is alive
        cluster.scale(0)                              # then every worker goes
        start = _time.monotonic()
        with pytest.raises(RuntimeError, match="every Dask worker has gone"):
            for _ in gen:
                pass
        assert _time.monotonic() - start < 120
    finally:
        cluster.close()


def _sleepy(spec):
    import time as _time
    _time.sleep(spec["sleep"])
    return {"key": spec["key"]}


def test_a_live_run_locks_its_output(tmp_path):
    """A second run into the folder of a live one is refused, naming the live run's PID and host; a
    lock left by a process that has gone does not block."""
    import os
    import socket
    from abm import store
    target = (tmp_path / "o").resolve()
    run = store.RunStore.create(target, {}, "fp", source="x", source_sha256=None, started="now")
    lock = json.loads((run.partial / store.LOCK_FILE).read_text())
    assert lock["pid"] == os.getpid() and lock["host"] == socket.gethostname()
    # pretend the live run is another process on this host (our parent is alive)
    (run.partial / store.LOCK_FILE).write_text(json.dumps({**lock, "pid": os.getppid()}))
    with pytest.raises(ConfigError, match=f"another run is writing this output \\(PID {os.getppid()}"):
        store.RunStore.create(target, {}, "fp", source="x", source_sha256=None, started="now")
    with pytest.raises(ConfigError, match="another run is writing"):
        store.locate_resume(target)
    # a dead PID is a stale lock: the folder is an interrupted run that can be resumed
    (run.partial / store.LOCK_FILE).write_text(json.dumps({**lock, "pid": 2 ** 22 + 12345}))
    with pytest.raises(ConfigError, match="interrupted run"):
        store.RunStore.create(target, {}, "fp", source="x", source_sha256=None, started="now")
    assert store.locate_resume(target).partial == run.partial
